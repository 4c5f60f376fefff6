package mesh

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// Refusal is why no endpoint was selected. Failed refusals (bad input) show
// as FAILED, the others as PENDING: an endpoint may still come.
type Refusal struct {
	Failed bool
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// Candidate is an endpoint that may serve a connection, with the weight of
// the best route that reaches it.
type Candidate struct {
	Endpoint *vppmeshv1.NetworkServiceEndpoint
	Weight   uint32
}

// SelectInput is everything a selection depends on.
type SelectInput struct {
	Service    *vppmeshv1.NetworkService // nil: unknown service
	Connection *vppmeshv1.Connection
	// Endpoints are all registered endpoints, any order.
	Endpoints []*vppmeshv1.NetworkServiceEndpoint
	// Load counts the connections each endpoint serves now (by name).
	Load map[string]int
	// Node is the agent's label: endpoints there come before remote ones.
	Node string
	// Remote tells whether remote endpoints can be wired (this node has a
	// VXLAN underlay); when false they are skipped with a reason, NoRemote
	// (a default one when empty).
	Remote   bool
	NoRemote string
	// Unreachable names the remote nodes that cannot be wired, with why
	// (no underlay, no agent): their endpoints are skipped.
	Unreachable map[string]string
	// Avoid lists endpoints not to use for this connection (its link
	// stayed down on them).
	Avoid map[string]bool
}

// Selector reports whether labels contain every entry of sel.
func Selector(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Candidates returns the endpoints the service's first matching match
// allows for the connection, sorted by name, or why there are none.
func Candidates(in SelectInput) ([]Candidate, *Refusal) {
	svc, conn := in.Service, in.Connection
	if svc == nil {
		return nil, &Refusal{Failed: true, Reason: fmt.Sprintf("unknown network service %q", conn.GetNetworkService())}
	}
	var serving []*vppmeshv1.NetworkServiceEndpoint
	for _, ep := range in.Endpoints {
		if ValidateEndpoint(ep) == nil && slices.Contains(ep.GetNetworkServices(), svc.GetName()) {
			serving = append(serving, ep)
		}
	}
	sort.Slice(serving, func(i, j int) bool { return serving[i].GetName() < serving[j].GetName() })
	var match *vppmeshv1.ServiceMatch
	if len(svc.GetMatches()) > 0 {
		for _, m := range svc.GetMatches() {
			if Selector(m.GetSourceSelector(), conn.GetLabels()) {
				match = m
				break
			}
		}
		if match == nil {
			return nil, &Refusal{Failed: true, Reason: fmt.Sprintf("no match of service %q selects the connection's labels %s", svc.GetName(), fmtLabels(conn.GetLabels()))}
		}
	}
	if len(serving) == 0 {
		return nil, &Refusal{Reason: fmt.Sprintf("no endpoint serves %q", svc.GetName())}
	}
	var out []Candidate
	for _, ep := range serving {
		var w uint32
		reached := false
		if match == nil || len(match.GetRoutes()) == 0 {
			w, reached = 1, true
		}
		if match != nil {
			for _, r := range match.GetRoutes() {
				if Selector(r.GetDestinationSelector(), ep.GetLabels()) {
					reached = true
					w = max(w, max(r.GetWeight(), 1))
				}
			}
		}
		if reached {
			out = append(out, Candidate{Endpoint: ep, Weight: w})
		}
	}
	if len(out) == 0 {
		return nil, &Refusal{Reason: fmt.Sprintf("no endpoint of %q matches the routes for labels %s", svc.GetName(), fmtLabels(conn.GetLabels()))}
	}
	return out, nil
}

// Usable filters candidates down to the ones that can be wired now: not
// avoided and, without the VXLAN leg, on the agent's node.
func Usable(in SelectInput, cands []Candidate) ([]Candidate, *Refusal) {
	var out []Candidate
	var avoided, remote, unreachable []string
	for _, c := range cands {
		name, node := c.Endpoint.GetName(), c.Endpoint.GetNode()
		switch {
		case in.Avoid[name]:
			avoided = append(avoided, name)
		case node != in.Node && !in.Remote:
			remote = append(remote, name+"@"+node)
		case node != in.Node && in.Unreachable[node] != "":
			unreachable = append(unreachable, fmt.Sprintf("%s@%s: node %s: %s", name, node, node, in.Unreachable[node]))
		default:
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	var why []string
	if len(remote) > 0 {
		reason := in.NoRemote
		if reason == "" {
			reason = "cross-node connections need a VXLAN underlay on this node"
		}
		why = append(why, fmt.Sprintf("remote endpoints skipped (%s): %s", strings.Join(remote, ", "), reason))
	}
	if len(unreachable) > 0 {
		why = append(why, fmt.Sprintf("unreachable remote endpoints skipped (%s)", strings.Join(unreachable, "; ")))
	}
	if len(avoided) > 0 {
		why = append(why, fmt.Sprintf("endpoints whose link stayed down skipped (%s)", strings.Join(avoided, ", ")))
	}
	return nil, &Refusal{Reason: "no usable endpoint: " + strings.Join(why, "; ")}
}

// Select picks the endpoint for a connection: candidates of the first
// matching match, same-node before remote, then the lowest load per weight
// (connections divided by the route's weight), then the name. It is
// deterministic.
func Select(in SelectInput) (*vppmeshv1.NetworkServiceEndpoint, *Refusal) {
	cands, ref := Candidates(in)
	if ref != nil {
		return nil, ref
	}
	usable, ref := Usable(in, cands)
	if ref != nil {
		return nil, ref
	}
	best := usable[0]
	for _, c := range usable[1:] {
		if better(in, c, best) {
			best = c
		}
	}
	return best.Endpoint, nil
}

// better reports whether a should be chosen over b.
func better(in SelectInput, a, b Candidate) bool {
	al, bl := a.Endpoint.GetNode() == in.Node, b.Endpoint.GetNode() == in.Node
	if al != bl {
		return al
	}
	// load(a)/w(a) < load(b)/w(b), without division.
	la := uint64(in.Load[a.Endpoint.GetName()]) * uint64(b.Weight)
	lb := uint64(in.Load[b.Endpoint.GetName()]) * uint64(a.Weight)
	if la != lb {
		return la < lb
	}
	if a.Weight != b.Weight {
		return a.Weight > b.Weight
	}
	return a.Endpoint.GetName() < b.Endpoint.GetName()
}

// Keeps reports whether a connection decided for endpoint name may stay
// there: the endpoint is still a usable candidate. Keeping a working
// decision is what makes untouched connections never flap.
func Keeps(in SelectInput, name string) bool {
	cands, ref := Candidates(in)
	if ref != nil {
		return false
	}
	usable, ref := Usable(in, cands)
	if ref != nil {
		return false
	}
	for _, c := range usable {
		if c.Endpoint.GetName() == name {
			return true
		}
	}
	return false
}

func fmtLabels(l map[string]string) string {
	if len(l) == 0 {
		return "{}"
	}
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return "{" + strings.Join(parts, ",") + "}"
}
