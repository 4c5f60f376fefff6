package mesh

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

func ep(name, node string, labels map[string]string, svcs ...string) *vppmeshv1.NetworkServiceEndpoint {
	return &vppmeshv1.NetworkServiceEndpoint{Name: name, Node: node, Labels: labels, NetworkServices: svcs,
		Link: &vppmeshv1.NetworkServiceEndpoint_Memif{Memif: &ifmodel.MemifLink{SocketFilename: "/run/" + name + ".sock"}}}
}

func conn(id, svc string, labels map[string]string) *vppmeshv1.Connection {
	return &vppmeshv1.Connection{Id: id, NetworkService: svc, Labels: labels, Node: "n1",
		Link: &vppmeshv1.Connection_Memif{Memif: &ifmodel.MemifLink{SocketFilename: "/run/" + id + ".sock"}}}
}

func TestSelectByLabelsAndWeights(t *testing.T) {
	svc := &vppmeshv1.NetworkService{Name: "fw", Matches: []*vppmeshv1.ServiceMatch{
		{SourceSelector: map[string]string{"tenant": "blue"}, Routes: []*vppmeshv1.ServiceRoute{
			{DestinationSelector: map[string]string{"color": "blue"}, Weight: 3},
			{DestinationSelector: map[string]string{"color": "green"}, Weight: 1},
		}},
		{SourceSelector: map[string]string{"tenant": "red"}, Routes: []*vppmeshv1.ServiceRoute{
			{DestinationSelector: map[string]string{"color": "nonexistent"}},
		}},
		{SourceSelector: map[string]string{"tenant": "any"}},
	}}
	eps := []*vppmeshv1.NetworkServiceEndpoint{
		ep("b1", "n1", map[string]string{"color": "blue"}, "fw"),
		ep("g1", "n1", map[string]string{"color": "green"}, "fw"),
		ep("x1", "n1", map[string]string{"color": "blue"}, "other"),
		ep("r1", "n2", map[string]string{"color": "blue"}, "fw"),
	}
	in := func(labels map[string]string, load map[string]int) SelectInput {
		return SelectInput{Service: svc, Connection: conn("c", "fw", labels), Endpoints: eps, Load: load, Node: "n1"}
	}
	cases := []struct {
		name   string
		in     SelectInput
		want   string
		failed bool
		reason string
	}{
		{name: "blue goes to blue first", in: in(map[string]string{"tenant": "blue"}, nil), want: "b1"},
		// b1 has weight 3: with 3 connections its load per weight (1) equals
		// g1's with 1 (1); the heavier route wins the tie.
		{name: "weights share", in: in(map[string]string{"tenant": "blue"}, map[string]int{"b1": 3, "g1": 1}), want: "b1"},
		{name: "weights overflow to green", in: in(map[string]string{"tenant": "blue"}, map[string]int{"b1": 4, "g1": 1}), want: "g1"},
		{name: "no source match", in: in(map[string]string{"tenant": "yellow"}, nil), failed: true, reason: "no match of service"},
		{name: "routes match nothing", in: in(map[string]string{"tenant": "red"}, nil), reason: "matches the routes"},
		{name: "no routes: any endpoint of the service, local first", in: in(map[string]string{"tenant": "any"}, map[string]int{"b1": 5, "g1": 5}), want: "b1"},
		{name: "unknown service", in: SelectInput{Connection: conn("c", "nope", nil), Endpoints: eps, Node: "n1"}, failed: true, reason: "unknown network service"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ref := Select(c.in)
			switch {
			case c.want != "" && (ref != nil || got.GetName() != c.want):
				t.Fatalf("got %v (%v), want %s", got.GetName(), ref, c.want)
			case c.want == "" && ref == nil:
				t.Fatalf("got %s, want a refusal", got.GetName())
			case c.want == "" && (ref.Failed != c.failed || !strings.Contains(ref.Reason, c.reason)):
				t.Fatalf("refusal %+v, want failed=%v with %q", ref, c.failed, c.reason)
			}
		})
	}
}

func TestSelectRemoteSkippedWithReason(t *testing.T) {
	svc := &vppmeshv1.NetworkService{Name: "fw"}
	eps := []*vppmeshv1.NetworkServiceEndpoint{ep("far", "n2", nil, "fw")}
	_, ref := Select(SelectInput{Service: svc, Connection: conn("c", "fw", nil), Endpoints: eps, Node: "n1"})
	if ref == nil || ref.Failed || !strings.Contains(ref.Reason, "VXLAN") || !strings.Contains(ref.Reason, "far@n2") {
		t.Fatalf("refusal %+v, want PENDING naming far@n2 and the VXLAN leg", ref)
	}
	got, ref := Select(SelectInput{Service: svc, Connection: conn("c", "fw", nil), Endpoints: eps, Node: "n1", Remote: true})
	if ref != nil || got.GetName() != "far" {
		t.Fatalf("with the VXLAN leg: %v %v", got, ref)
	}
	// A remote node that cannot be reached is skipped, with its reason.
	_, ref = Select(SelectInput{Service: svc, Connection: conn("c", "fw", nil), Endpoints: eps, Node: "n1", Remote: true,
		Unreachable: map[string]string{"n2": "no agent serves it"}})
	if ref == nil || ref.Failed || !strings.Contains(ref.Reason, "far@n2: node n2: no agent serves it") {
		t.Fatalf("unreachable node: %+v", ref)
	}
	// Avoided endpoints are skipped, and said so.
	_, ref = Select(SelectInput{Service: svc, Connection: conn("c", "fw", nil), Endpoints: []*vppmeshv1.NetworkServiceEndpoint{ep("e", "n1", nil, "fw")},
		Node: "n1", Avoid: map[string]bool{"e": true}})
	if ref == nil || !strings.Contains(ref.Reason, "link stayed down") {
		t.Fatalf("avoided: %+v", ref)
	}
}

// reference is a brute-force selector written from the rules: candidates
// of the first matching match; local before remote; lowest
// connections/weight; then heavier weight; then name.
func reference(in SelectInput) string {
	svc := in.Service
	var match *vppmeshv1.ServiceMatch
	for _, m := range svc.GetMatches() {
		if Selector(m.GetSourceSelector(), in.Connection.GetLabels()) {
			match = m
			break
		}
	}
	if len(svc.GetMatches()) > 0 && match == nil {
		return ""
	}
	best, bestW, bestLocal := "", 0.0, false
	var bestLoad float64
	for _, e := range in.Endpoints {
		serves := false
		for _, s := range e.GetNetworkServices() {
			serves = serves || s == svc.GetName()
		}
		remote := e.GetNode() != in.Node
		if !serves || in.Avoid[e.GetName()] || (remote && (!in.Remote || in.Unreachable[e.GetNode()] != "")) {
			continue
		}
		w := 0.0
		if match == nil || len(match.GetRoutes()) == 0 {
			w = 1
		} else {
			for _, r := range match.GetRoutes() {
				if Selector(r.GetDestinationSelector(), e.GetLabels()) {
					w = max(w, float64(max(r.GetWeight(), 1)))
				}
			}
		}
		if w == 0 {
			continue
		}
		local := e.GetNode() == in.Node
		load := float64(in.Load[e.GetName()]) / w
		better := best == "" || (local && !bestLocal) ||
			(local == bestLocal && (load < bestLoad || (load == bestLoad && (w > bestW || (w == bestW && e.GetName() < best)))))
		if better {
			best, bestW, bestLocal, bestLoad = e.GetName(), w, local, load
		}
	}
	return best
}

func TestSelectRandomizedAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	colors := []string{"red", "green", "blue"}
	pick := func() map[string]string {
		m := map[string]string{}
		if r.IntN(3) > 0 {
			m["color"] = colors[r.IntN(len(colors))]
		}
		if r.IntN(2) == 0 {
			m["zone"] = fmt.Sprint(r.IntN(2))
		}
		return m
	}
	for iter := 0; iter < 3000; iter++ {
		svc := &vppmeshv1.NetworkService{Name: "s"}
		for i := r.IntN(3); i > 0; i-- {
			m := &vppmeshv1.ServiceMatch{SourceSelector: pick()}
			for j := r.IntN(3); j > 0; j-- {
				m.Routes = append(m.Routes, &vppmeshv1.ServiceRoute{DestinationSelector: pick(), Weight: uint32(r.IntN(4))})
			}
			svc.Matches = append(svc.Matches, m)
		}
		var eps []*vppmeshv1.NetworkServiceEndpoint
		load := map[string]int{}
		avoid := map[string]bool{}
		for i := r.IntN(6); i > 0; i-- {
			name := fmt.Sprintf("e%d", i)
			svcs := []string{"s"}
			if r.IntN(5) == 0 {
				svcs = []string{"t"}
			}
			eps = append(eps, ep(name, fmt.Sprintf("n%d", 1+r.IntN(2)), pick(), svcs...))
			load[name] = r.IntN(5)
			avoid[name] = r.IntN(8) == 0
		}
		r.Shuffle(len(eps), func(i, j int) { eps[i], eps[j] = eps[j], eps[i] })
		in := SelectInput{Service: svc, Connection: conn("c", "s", pick()), Endpoints: eps, Load: load, Node: "n1", Remote: r.IntN(2) == 0, Avoid: avoid}
		if r.IntN(3) == 0 {
			in.Unreachable = map[string]string{"n2": "no VXLAN underlay"}
		}
		got, ref := Select(in)
		want := reference(in)
		if got.GetName() != want {
			t.Fatalf("iteration %d: Select = %q (%v), reference = %q\ninput: %v", iter, got.GetName(), ref, want, in)
		}
		if want != "" && !Keeps(in, want) {
			t.Fatalf("iteration %d: the selected endpoint %s is not kept", iter, want)
		}
	}
}

func TestIPPool(t *testing.T) {
	p, err := ParsePool("198.51.100.0/29")
	if err != nil {
		t.Fatal(err)
	}
	if PoolSize(p) != 4 {
		t.Fatalf("a /29 holds %d /31s, want 4", PoolSize(p))
	}
	used := map[netip.Addr]bool{}
	var got []string
	for {
		c, e, ok := NextPair(p, used)
		if !ok {
			break
		}
		if e != c.Next() || !InPool(p, c) || InPool(p, e) {
			t.Fatalf("pair %s/%s", c, e)
		}
		used[c] = true
		got = append(got, c.String())
	}
	if strings.Join(got, ",") != "198.51.100.0,198.51.100.2,198.51.100.4,198.51.100.6" {
		t.Fatalf("pairs: %v", got)
	}
	delete(used, netip.MustParseAddr("198.51.100.4"))
	if c, _, _ := NextPair(p, used); c.String() != "198.51.100.4" {
		t.Fatalf("the freed pair is not reused first: %s", c)
	}
	for _, bad := range []string{"", "2001:db8::/64", "198.51.100.1/32", "nonsense"} {
		if _, err := ParsePool(bad); err == nil {
			t.Errorf("pool %q accepted", bad)
		}
	}
	if p, _ := ParsePool("198.51.100.77/24"); p.String() != "198.51.100.0/24" {
		t.Errorf("pool not masked: %s", p)
	}
}

func TestIPPoolRandomizedNoDuplicates(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p, _ := ParsePool("203.0.113.0/26")
	used := map[netip.Addr]bool{}
	for i := 0; i < 5000; i++ {
		if len(used) > 0 && r.IntN(3) == 0 {
			for a := range used {
				delete(used, a)
				break
			}
			continue
		}
		c, _, ok := NextPair(p, used)
		if !ok {
			if uint64(len(used)) != PoolSize(p) {
				t.Fatalf("exhausted with %d of %d used", len(used), PoolSize(p))
			}
			continue
		}
		if used[c] || !InPool(p, c) {
			t.Fatalf("allocated %s twice or outside the pool", c)
		}
		used[c] = true
	}
}

func TestValidNames(t *testing.T) {
	for _, ok := range []string{"a", "c-1.x_y", strings.Repeat("a", MaxIDLen)} {
		if err := ValidName("id", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "a/b", "a b", strings.Repeat("a", MaxIDLen+1), "ü"} {
		if err := ValidName("id", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
