package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/mesh/naming"
)

// reportSched is a scheduler that applies everything at once: each
// committed connection value and its four derived values are reported
// CONFIGURED to the watcher, a removed one REMOVED.
type reportSched struct {
	mu      sync.Mutex
	desired map[string]*vppmeshv1.CrossConnect
	w       kvscheduler.Watcher
}

func (f *reportSched) Commit(_ context.Context, txn kvscheduler.Txn) (kvscheduler.TxnRecord, error) {
	f.mu.Lock()
	if txn.Kind == kvscheduler.TxnFullResync {
		f.desired = map[string]*vppmeshv1.CrossConnect{}
	}
	var changed []kvscheduler.ValueStatus
	for _, kv := range txn.Values {
		v, ok := kv.Value.(*vppmeshv1.CrossConnect)
		state := kvscheduler.StateConfigured
		if kv.Value == nil {
			delete(f.desired, kv.Key)
			state = kvscheduler.StateRemoved
		} else if ok {
			f.desired[kv.Key] = v
		}
		changed = append(changed, kvscheduler.ValueStatus{Key: kv.Key, State: state})
		for _, d := range []string{"if-a", "if-b", "xc-ab", "xc-ba"} {
			// A derived key has one parent, as in the scheduler.
			changed = append(changed, kvscheduler.ValueStatus{Key: kv.Key + "/" + d, Derived: true, Parent: kv.Key, State: state})
		}
	}
	w := f.w
	f.mu.Unlock()
	if w != nil && len(changed) > 0 {
		w(changed)
	}
	return kvscheduler.TxnRecord{}, nil
}

func (f *reportSched) Watch(w kvscheduler.Watcher) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.w = w
	return func() {}
}

func (f *reportSched) get(key string) *vppmeshv1.CrossConnect {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.desired[key]
}

func linkUp(m *Controller, name string, up bool) {
	st := ifmodel.InterfaceState_DOWN
	if up {
		st = ifmodel.InterfaceState_UP
	}
	m.OnInterfaceState(&ifmodel.InterfaceState{Name: name, OperStatus: st})
}

func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getStatus(t *testing.T, cli *clientv3.Client, id string) (*vppmeshv1.ConnectionStatus, int64) {
	t.Helper()
	resp, err := cli.Get(context.Background(), models.MeshKey(models.MeshStatus, id))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0
	}
	_, v, err := models.UnmarshalMesh(string(resp.Kvs[0].Key), resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return v.(*vppmeshv1.ConnectionStatus), resp.Kvs[0].ModRevision
}

func countPrefix(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// A client on n1 and the only endpoint on n2: without underlays the
// endpoint is skipped with the reason; with them the client's agent renders
// client memif ↔ VXLAN towards n2 and n2's agent VXLAN towards n1 ↔ the
// endpoint's memif (its secret from the registration), each connection on a
// VNI of its own; the status turns UP from n2's side report. A new local
// endpoint moves nothing; the remote endpoint's removal moves both
// connections to it, and n2's renderings, side reports and the VNIs go.
func TestCrossNodeConnection(t *testing.T) {
	cli, scheds, ctrls, start, stops := twoControllers(t)
	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s"}`)
	put(t, cli, models.MeshEndpointPrefix+"ep2", `{"name":"ep2","network_services":["s"],"node":"n2","memif":{"socket_filename":"/run/ep2.sock","secret":"s3cret"}}`)
	for _, id := range []string{"c1", "c2"} {
		put(t, cli, models.MeshConnectionPrefix+id, fmt.Sprintf(`{"id":%q,"network_service":"s","node":"n1","memif":{"socket_filename":"/run/%s.sock"}}`, id, id))
	}
	waitFor(t, "c1 pending for want of an underlay", func() error {
		st, _ := getStatus(t, cli, "c1")
		if st.GetState() != vppmeshv1.ConnectionStatus_PENDING || !strings.Contains(st.GetError(), "ep2@n2") || !strings.Contains(st.GetError(), "no VXLAN underlay") {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	put(t, cli, models.MeshNodePrefix+"n1", `{"name":"n1","vxlan_address":"198.51.100.1","vxlan_uplink":"up0"}`)
	put(t, cli, models.MeshNodePrefix+"n2", `{"name":"n2","vxlan_address":"198.51.100.2","vxlan_uplink":"up1"}`)

	vnis := map[uint32]string{}
	for _, id := range []string{"c1", "c2"} {
		var st *vppmeshv1.ConnectionStatus
		waitFor(t, id+" decided for ep2 and rendered on both nodes", func() error {
			st, _ = getStatus(t, cli, id)
			if st.GetEndpoint() != "ep2" || st.GetEndpointNode() != "n2" || st.GetVxlan() == nil {
				return fmt.Errorf("status %v", st)
			}
			if scheds["n1"].get(RenderKey(id)) == nil || scheds["n2"].get(RenderKey(id)) == nil {
				return fmt.Errorf("not rendered on both nodes")
			}
			return nil
		})
		x := st.GetVxlan()
		if x.GetVni() < VNIMin || x.GetClientAddress() != "198.51.100.1" || x.GetEndpointAddress() != "198.51.100.2" {
			t.Fatalf("%s: vxlan %v", id, x)
		}
		if other, dup := vnis[x.GetVni()]; dup {
			t.Fatalf("%s and %s share VNI %d", id, other, x.GetVni())
		}
		vnis[x.GetVni()] = id
		mid := st.GetEndpointLink().GetMemif().GetId()
		wantA := &vppmeshv1.CrossConnect{Name: "mesh-" + id,
			A: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{SocketFilename: "/run/" + id + ".sock", Master: true}}},
			B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Vxlan{Vxlan: &vppmeshv1.VxlanEnd{Remote: "198.51.100.2", Vni: x.GetVni(), Uplink: "up0"}}}}
		if got := scheds["n1"].get(RenderKey(id)); !proto.Equal(got, wantA) {
			t.Fatalf("%s on n1: %v, want %v", id, got, wantA)
		}
		wantB := &vppmeshv1.CrossConnect{Name: "mesh-" + id,
			A: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Vxlan{Vxlan: &vppmeshv1.VxlanEnd{Remote: "198.51.100.1", Vni: x.GetVni(), Uplink: "up1"}}},
			B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{SocketFilename: "/run/ep2.sock", Id: mid, Master: true, Secret: "s3cret"}}}}
		if got := scheds["n2"].get(RenderKey(id)); !proto.Equal(got, wantB) {
			t.Fatalf("%s on n2: %v, want %v", id, got, wantB)
		}
		if st.GetState() == vppmeshv1.ConnectionStatus_UP {
			t.Fatalf("%s UP before any link is", id)
		}
		clientIf, epIf := InterfaceNames(id)
		linkUp(ctrls["n1"], clientIf, true)
		linkUp(ctrls["n2"], epIf, true)
	}
	for _, id := range []string{"c1", "c2"} {
		waitFor(t, id+" UP", func() error {
			st, _ := getStatus(t, cli, id)
			if st.GetState() != vppmeshv1.ConnectionStatus_UP || !st.GetEndpointLink().GetUp() || !st.GetClientLink().GetUp() {
				return fmt.Errorf("status %v", st)
			}
			return nil
		})
	}
	// The endpoint's link goes down on n2: the connection says so.
	_, epIf := InterfaceNames("c1")
	linkUp(ctrls["n2"], epIf, false)
	waitFor(t, "c1 DOWN", func() error {
		st, _ := getStatus(t, cli, "c1")
		if st.GetState() != vppmeshv1.ConnectionStatus_DOWN || st.GetEndpointLink().GetUp() {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	linkUp(ctrls["n2"], epIf, true)
	waitFor(t, "c1 UP again", func() error {
		if st, _ := getStatus(t, cli, "c1"); st.GetState() != vppmeshv1.ConnectionStatus_UP || st.GetEndpoint() != "ep2" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	// Either agent restarting (VPP unchanged, so no link event comes)
	// rewrites nothing and renders the same.
	for _, node := range []string{"n2", "n1"} {
		resp, err := cli.Get(context.Background(), models.MeshRoot, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		rendered := map[string]*vppmeshv1.CrossConnect{}
		for _, id := range []string{"c1", "c2"} {
			rendered[id] = scheds[node].get(RenderKey(id))
		}
		stops[node]()
		start(node)
		waitFor(t, node+" renders the same after its restart", func() error {
			for id, v := range rendered {
				if got := scheds[node].get(RenderKey(id)); !proto.Equal(got, v) {
					return fmt.Errorf("%s: %v, was %v", id, got, v)
				}
			}
			return nil
		})
		time.Sleep(300 * time.Millisecond)
		after, err := cli.Get(context.Background(), models.MeshRoot, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		changed := map[string]bool{}
		keys := func(r *clientv3.GetResponse) map[string]bool {
			out := map[string]bool{}
			for _, kv := range r.Kvs {
				if !strings.HasPrefix(string(kv.Key), models.MeshAgentPrefix) {
					out[string(kv.Key)] = true
				}
			}
			return out
		}
		was, now := keys(resp), keys(after)
		for _, kv := range after.Kvs {
			if kv.ModRevision > resp.Header.Revision && !strings.HasPrefix(string(kv.Key), models.MeshAgentPrefix) {
				changed[string(kv.Key)] = true
			}
		}
		for k := range was {
			if !now[k] {
				changed[k+" (deleted)"] = true
			}
		}
		if len(changed) > 0 {
			t.Fatalf("%s's restart rewrote %v", node, sortedKeys(changed))
		}
	}
	if n := countPrefix(t, cli, models.MeshAllocPrefix+"vni/"); n != 2 {
		t.Fatalf("%d VNI allocations, want 2", n)
	}
	if n := countPrefix(t, cli, models.MeshSidePrefix); n != 2 {
		t.Fatalf("%d side reports, want 2", n)
	}

	// A local endpoint moves nothing.
	_, rev := getStatus(t, cli, "c2")
	put(t, cli, models.MeshEndpointPrefix+"ep1", `{"name":"ep1","network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/ep1.sock"}}`)
	time.Sleep(300 * time.Millisecond)
	if st, rev2 := getStatus(t, cli, "c2"); rev2 != rev || st.GetEndpoint() != "ep2" {
		t.Fatalf("a new local endpoint touched c2: revision %d → %d, %v", rev, rev2, st)
	}

	// The remote endpoint goes: both move to the local one.
	if _, err := cli.Delete(context.Background(), models.MeshEndpointPrefix+"ep2"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2"} {
		waitFor(t, id+" healed to ep1", func() error {
			st, _ := getStatus(t, cli, id)
			if st.GetEndpoint() != "ep1" || st.GetVxlan() != nil || st.GetHeals() != 1 {
				return fmt.Errorf("status %v", st)
			}
			if v := scheds["n1"].get(RenderKey(id)); v.GetB().GetMemif().GetSocketFilename() != "/run/ep1.sock" {
				return fmt.Errorf("n1 renders %v", v)
			}
			if v := scheds["n2"].get(RenderKey(id)); v != nil {
				return fmt.Errorf("n2 still renders %v", v)
			}
			return nil
		})
	}
	waitFor(t, "side reports and VNIs released", func() error {
		if n, m := countPrefix(t, cli, models.MeshSidePrefix), countPrefix(t, cli, models.MeshAllocPrefix+"vni/"); n != 0 || m != 0 {
			return fmt.Errorf("%d side reports, %d VNIs", n, m)
		}
		return nil
	})
}

func TestValidateNode(t *testing.T) {
	for _, c := range []struct {
		n    *vppmeshv1.MeshNode
		want string // "" valid
	}{
		{&vppmeshv1.MeshNode{Name: "a", VxlanAddress: "198.51.100.1", VxlanUplink: "up0"}, ""},
		{&vppmeshv1.MeshNode{VxlanAddress: "198.51.100.1", VxlanUplink: "up0"}, "node name is empty"},
		{&vppmeshv1.MeshNode{Name: "a", VxlanAddress: "198.51.100.x", VxlanUplink: "up0"}, "is not an IP address"},
		{&vppmeshv1.MeshNode{Name: "a", VxlanAddress: "2001:db8::1", VxlanUplink: "up0"}, "not an IPv4 unicast address"},
		{&vppmeshv1.MeshNode{Name: "a", VxlanAddress: "224.0.0.1", VxlanUplink: "up0"}, "not an IPv4 unicast address"},
		{&vppmeshv1.MeshNode{Name: "a", VxlanAddress: "198.51.100.1"}, "vxlan_uplink is empty"},
		{&vppmeshv1.MeshNode{Name: "a", VxlanAddress: "198.51.100.1", VxlanUplink: strings.Repeat("u", 64)}, "longer than 63"},
	} {
		err := ValidateNode(c.n)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.n, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: error %v, want %q", c.n, err, c.want)
		}
	}
	// An invalid underlay is named in the reason a remote endpoint is skipped.
	c := newCache()
	c.apply(slogDiscard(), models.MeshNodePrefix+"n2", []byte(`{"name":"n2","vxlan_address":"198.51.100.2"}`), 1, false)
	if why := c.reach("n2"); !strings.Contains(why, "invalid") || !strings.Contains(why, "vxlan_uplink is empty") {
		t.Fatalf("reach: %q", why)
	}
	if why := c.reach("n3"); !strings.Contains(why, "no VXLAN underlay (/vppmesh/v1/node/n3)") {
		t.Fatalf("reach: %q", why)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// twoControllers runs the controllers of nodes n1 and n2 on one etcd, each
// with a reportSched; start (re)starts one, stops[node] stops it.
func twoControllers(t *testing.T) (*clientv3.Client, map[string]*reportSched, map[string]*Controller, func(string), map[string]func()) {
	cli := startEtcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	scheds := map[string]*reportSched{}
	ctrls := map[string]*Controller{}
	stops := map[string]func(){}
	var wg sync.WaitGroup
	start := func(node string) {
		f := &reportSched{desired: map[string]*vppmeshv1.CrossConnect{}}
		m, err := New(Options{Client: cli, Label: node, Scheduler: f})
		if err != nil {
			t.Fatal(err)
		}
		scheds[node], ctrls[node] = f, m
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan struct{})
		wg.Go(func() {
			if _, err := m.WrapScheduler(f).Commit(cctx, kvscheduler.Txn{Kind: kvscheduler.TxnFullResync}); err != nil && cctx.Err() == nil {
				t.Error(err)
			}
		})
		wg.Go(func() { _ = m.Run(cctx); close(done) })
		stops[node] = func() { ccancel(); <-done }
	}
	start("n1")
	start("n2")
	t.Cleanup(func() { cancel(); wg.Wait() })
	return cli, scheds, ctrls, start, stops
}

// A connection healed from one remote endpoint to another on the same node
// keeps its VNI; the endpoint node re-renders its side on the new endpoint.
func TestCrossNodeHealKeepsVNI(t *testing.T) {
	cli, scheds, _, _, _ := twoControllers(t)
	put(t, cli, models.MeshNodePrefix+"n1", `{"name":"n1","vxlan_address":"198.51.100.1","vxlan_uplink":"up0"}`)
	put(t, cli, models.MeshNodePrefix+"n2", `{"name":"n2","vxlan_address":"198.51.100.2","vxlan_uplink":"up1"}`)
	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s"}`)
	put(t, cli, models.MeshEndpointPrefix+"x", `{"name":"x","network_services":["s"],"node":"n2","memif":{"socket_filename":"/run/x.sock"}}`)
	put(t, cli, models.MeshConnectionPrefix+"c1", `{"id":"c1","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c1.sock"}}`)
	var vni uint32
	waitFor(t, "c1 on x", func() error {
		st, _ := getStatus(t, cli, "c1")
		if st.GetEndpoint() != "x" || st.GetVxlan().GetVni() == 0 || scheds["n2"].get(RenderKey("c1")) == nil {
			return fmt.Errorf("status %v", st)
		}
		vni = st.GetVxlan().GetVni()
		return nil
	})
	put(t, cli, models.MeshEndpointPrefix+"y", `{"name":"y","network_services":["s"],"node":"n2","memif":{"socket_filename":"/run/y.sock"}}`)
	if _, err := cli.Delete(context.Background(), models.MeshEndpointPrefix+"x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c1 healed to y on the same VNI", func() error {
		st, _ := getStatus(t, cli, "c1")
		if st.GetEndpoint() != "y" || st.GetVxlan().GetVni() != vni || st.GetHeals() != 1 {
			return fmt.Errorf("status %v (VNI was %d)", st, vni)
		}
		if v := scheds["n2"].get(RenderKey("c1")); v.GetB().GetMemif().GetSocketFilename() != "/run/y.sock" || v.GetA().GetVxlan().GetVni() != vni {
			return fmt.Errorf("n2 renders %v", v)
		}
		return nil
	})
	// The new endpoint link has the other name on n2 ("-c"), so n2 creates
	// it without first deleting the old one (make before break), and the
	// VXLAN leg (the same VNI and peer) keeps its name and stays.
	st, _ := getStatus(t, cli, "c1")
	v := scheds["n2"].get(RenderKey("c1"))
	if a, b := naming.Names(v); st.GetEndpointLink().GetInterface() != "mesh-c1-c" || b != "mesh-c1-c" || a != "mesh-c1-a" {
		t.Fatalf("after the move: status names %q, n2 renders %q/%q; want mesh-c1-c and the VXLAN leg as mesh-c1-a",
			st.GetEndpointLink().GetInterface(), a, b)
	}
	if v := scheds["n1"].get(RenderKey("c1")); v.GetName() != "mesh-c1" {
		t.Fatalf("n1's rendering renamed to %q: its VXLAN leg would be recreated", v.GetName())
	}
	if n := countPrefix(t, cli, models.MeshAllocPrefix+"vni/"); n != 1 {
		t.Fatalf("%d VNI allocations, want 1", n)
	}
}
