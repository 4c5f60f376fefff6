package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	vmemif "github.com/vppmesh/vppmesh/test/vppsim/memif"
)

func (e *env) meshPut(key, val string, opts ...clientv3.OpOption) {
	e.t.Helper()
	if _, err := e.etcd.Put(context.Background(), key, val, opts...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) meshDel(key string) {
	e.t.Helper()
	if _, err := e.etcd.Delete(context.Background(), key); err != nil {
		e.t.Fatal(err)
	}
}

// connStatus reads a connection's status from etcd.
func (e *env) connStatus(id string) (*vppmeshv1.ConnectionStatus, bool) {
	resp, err := e.etcd.Get(context.Background(), models.MeshStatusPrefix+id)
	if err != nil || len(resp.Kvs) == 0 {
		return nil, false
	}
	_, v, err := models.UnmarshalMesh(string(resp.Kvs[0].Key), resp.Kvs[0].Value)
	if err != nil {
		e.t.Fatalf("status of %s: %v", id, err)
	}
	return v.(*vppmeshv1.ConnectionStatus), true
}

func (e *env) waitConn(id, what string, cond func(*vppmeshv1.ConnectionStatus) bool) *vppmeshv1.ConnectionStatus {
	e.t.Helper()
	var last *vppmeshv1.ConnectionStatus
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := e.connStatus(id)
		if ok && cond(st) {
			return st
		}
		last = st
		if time.Now().After(deadline) {
			var ifs []string
			for _, i := range e.vppIfs() {
				if strings.HasPrefix(i.Tag, "mesh-") {
					ifs = append(ifs, fmt.Sprintf("%s(%s admin=%v link=%v %s)", i.Tag, i.Name, i.AdminUp, i.LinkUp, i.L2))
				}
			}
			e.t.Fatalf("connection %s: timed out waiting for %s; last status: %v; VPP: %v", id, what, last, ifs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitConnState(id string, state vppmeshv1.ConnectionStatus_State) *vppmeshv1.ConnectionStatus {
	e.t.Helper()
	return e.waitConn(id, state.String(), func(st *vppmeshv1.ConnectionStatus) bool { return st.GetState() == state })
}

// lease grants an etcd lease an endpoint lives under.
func (e *env) lease(ttl int64) clientv3.LeaseID {
	e.t.Helper()
	l, err := e.etcd.Grant(context.Background(), ttl)
	if err != nil {
		e.t.Fatal(err)
	}
	return l.ID
}

func endpointJSON(name, svc, node, sock string, labels string) string {
	return fmt.Sprintf(`{"name":%q,"network_services":[%q],"labels":%s,"node":%q,"memif":{"socket_filename":%q}}`, name, svc, labels, node, sock)
}

func connectionJSON(id, svc, node, sock string, labels string) string {
	return fmt.Sprintf(`{"id":%q,"network_service":%q,"labels":%s,"node":%q,"memif":{"socket_filename":%q,"id":0}}`, id, svc, labels, node, sock)
}

// slave opens the CNF side of a memif on VPP's socket.
func slave(t *testing.T, sock string, id uint32) *vmemif.Interface {
	t.Helper()
	i, err := vmemif.NewSlave(sock, vmemif.Config{ID: id, RetryInterval: 50 * time.Millisecond, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = i.Close() })
	return i
}

// sendReceive sends n frames into from and expects them all out of to.
func sendReceive(t *testing.T, from, to *vmemif.Interface, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, i := range []*vmemif.Interface{from, to} {
		if err := i.WaitUp(ctx); err != nil {
			t.Fatalf("memif link: %v", err)
		}
	}
	frame := make([]byte, 64)
	copy(frame, []byte{0x02, 0xfe, 0, 0, 0, 2, 0x02, 0xfe, 0, 0, 0, 1, 0x08, 0x00})
	got := 0
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sent := 0
	for got < n {
		if sent < n {
			k, err := from.TxQueues()[0].TxBurst([][]byte{frame})
			if err != nil {
				t.Fatalf("tx: %v", err)
			}
			sent += k
		}
		k, err := to.RxQueues()[0].RxBurst(bufs)
		if err != nil {
			t.Fatalf("rx: %v", err)
		}
		got += k
		if k == 0 {
			if ctx.Err() != nil {
				t.Fatalf("received %d of %d frames (sent %d)", got, n, sent)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// A client asks for a service: the agent selects an endpoint by labels,
// wires client and endpoint memifs with an xconnect, packets flow; the
// endpoint's lease ends and the connection heals to another endpoint; the
// connection's deletion removes the wiring, the status and the allocations.
func TestMeshSelectWireHeal(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := func(n string) string { return filepath.Join(e.dir, n+".sock") }
		e.meshPut(models.MeshServicePrefix+"fw", `{"name":"fw","matches":[
			{"source_selector":{"tenant":"blue"},"routes":[{"destination_selector":{"color":"blue"}}]},
			{"routes":[{"destination_selector":{"color":"red"}}]}]}`)
		l1 := e.lease(30)
		e.meshPut(models.MeshEndpointPrefix+"ep1", endpointJSON("ep1", "fw", label, sock("ep1"), `{"color":"blue"}`), clientv3.WithLease(l1))
		e.meshPut(models.MeshEndpointPrefix+"ep2", endpointJSON("ep2", "fw", label, sock("ep2"), `{"color":"red"}`))
		e.meshPut(models.MeshConnectionPrefix+"c1", connectionJSON("c1", "fw", label, sock("c1"), `{"tenant":"blue"}`))
		e.meshPut(models.MeshConnectionPrefix+"c2", connectionJSON("c2", "fw", label, sock("c2"), `{"tenant":"green"}`))

		st := e.waitConn("c1", "a decision", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() != "" })
		if st.GetEndpoint() != "ep1" {
			t.Fatalf("c1 (tenant=blue) went to %s, want ep1 (color=blue)", st.GetEndpoint())
		}
		st2 := e.waitConn("c2", "a decision", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() != "" })
		if st2.GetEndpoint() != "ep2" {
			t.Fatalf("c2 (tenant=green) went to %s, want ep2 (the catch-all match's red route)", st2.GetEndpoint())
		}
		// Links down (no CNF yet): rendered, DOWN.
		e.waitConnState("c1", vppmeshv1.ConnectionStatus_DOWN)
		if _, ok := e.vppIf("mesh-c1-a"); !ok {
			t.Fatal("client interface mesh-c1-a not in VPP")
		}
		b, ok := e.vppIf("mesh-c1-b")
		if !ok || b.L2 != "xconnect "+mustIf(t, e, "mesh-c1-a") {
			t.Fatalf("endpoint interface not xconnected to the client's: %+v", b)
		}

		client := slave(t, sock("c1"), 0)
		ep := slave(t, sock("ep1"), st.GetEndpointLink().GetMemif().GetId())
		up := e.waitConnState("c1", vppmeshv1.ConnectionStatus_UP)
		if !up.GetClientLink().GetUp() || !up.GetEndpointLink().GetUp() {
			t.Fatalf("UP with a link down: %v", up)
		}
		sendReceive(t, client, ep, 100)
		sendReceive(t, ep, client, 100)
		// A second blue endpoint, then ep1's lease ends: c1 moves to ep3.
		e.meshPut(models.MeshEndpointPrefix+"ep3", endpointJSON("ep3", "fw", label, sock("ep3"), `{"color":"blue"}`))
		if _, err := e.etcd.Revoke(context.Background(), l1); err != nil {
			t.Fatal(err)
		}
		healed := e.waitConn("c1", "moved to ep3", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() == "ep3" })
		if healed.GetHeals() != 1 {
			t.Fatalf("heals = %d after one heal", healed.GetHeals())
		}
		ep3 := slave(t, sock("ep3"), healed.GetEndpointLink().GetMemif().GetId())
		e.waitConnState("c1", vppmeshv1.ConnectionStatus_UP)
		sendReceive(t, client, ep3, 100)
		if got, _ := e.connStatus("c2"); got.GetEndpoint() != "ep2" || got.GetHeals() != 0 {
			t.Fatalf("c2 was touched by c1's heal: %v", got)
		}

		// ep3 goes too: nothing blue is left, c1 goes PENDING with a reason.
		e.meshDel(models.MeshEndpointPrefix + "ep3")
		p := e.waitConnState("c1", vppmeshv1.ConnectionStatus_PENDING)
		if p.GetEndpoint() != "" || !strings.Contains(p.GetError(), "no endpoint") {
			t.Fatalf("pending status: %v", p)
		}
		e.eventually("c1's interfaces removed", func() bool {
			_, a := e.vppIf("mesh-c1-a")
			return !a
		})
		// An endpoint registers: it comes back by itself.
		e.meshPut(models.MeshEndpointPrefix+"ep4", endpointJSON("ep4", "fw", label, sock("ep4"), `{"color":"blue"}`))
		back := e.waitConn("c1", "on ep4", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() == "ep4" })
		slave(t, sock("ep4"), back.GetEndpointLink().GetMemif().GetId())
		e.waitConnState("c1", vppmeshv1.ConnectionStatus_UP)

		// The client's connection is deleted: wiring, status and allocations go.
		e.meshDel(models.MeshConnectionPrefix + "c1")
		e.eventually("c1's status removed", func() bool { _, ok := e.connStatus("c1"); return !ok })
		e.eventually("c1's interfaces removed", func() bool {
			_, a := e.vppIf("mesh-c1-a")
			_, b := e.vppIf("mesh-c1-b")
			return !a && !b
		})
		resp, err := e.etcd.Get(context.Background(), models.MeshAllocPrefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if string(kv.Value) == "c1" {
				t.Fatalf("allocation %s still held by the deleted c1", kv.Key)
			}
		}
		if _, ok := e.vppIf("mesh-c2-a"); !ok {
			t.Fatal("c2's wiring went with c1's")
		}
	})
}

func mustIf(t *testing.T, e *env, tag string) string {
	t.Helper()
	i, ok := e.vppIf(tag)
	if !ok {
		t.Fatalf("interface %s not in VPP", tag)
	}
	return i.Name
}

// Bad input gets a status with the reason and affects nothing else.
func TestMeshBadInputIsolated(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := func(n string) string { return filepath.Join(e.dir, n+".sock") }
		e.meshPut(models.MeshServicePrefix+"fw", `{"name":"fw","matches":[{"source_selector":{"app":"web"}}]}`)
		e.meshPut(models.MeshEndpointPrefix+"ep1", endpointJSON("ep1", "fw", label, sock("ep1"), `{}`))
		e.meshPut(models.MeshConnectionPrefix+"good", connectionJSON("good", "fw", label, sock("good"), `{"app":"web"}`))
		e.meshPut(models.MeshConnectionPrefix+"nosvc", connectionJSON("nosvc", "nope", label, sock("x1"), `{"app":"web"}`))
		e.meshPut(models.MeshConnectionPrefix+"nomatch", connectionJSON("nomatch", "fw", label, sock("x2"), `{"app":"db"}`))
		e.meshPut(models.MeshConnectionPrefix+"garbage", `{"id":"garbage","network_service":`)
		e.meshPut(models.MeshConnectionPrefix+"wrongid", connectionJSON("other", "fw", label, sock("x3"), `{}`))
		e.meshPut(models.MeshConnectionPrefix+"nonode", connectionJSON("nonode", "fw", "vpp-nowhere", sock("x4"), `{"app":"web"}`))
		e.meshPut(models.MeshConnectionPrefix+"nolink", `{"id":"nolink","network_service":"fw","node":"`+label+`"}`)

		for id, want := range map[string]string{
			"nosvc":   `unknown network service "nope"`,
			"nomatch": "no match of service",
			"garbage": "invalid connection value",
			"wrongid": "key does not match value",
			"nonode":  `no agent serves node "vpp-nowhere"`,
			"nolink":  "needs a memif or vhost_user link",
		} {
			st := e.waitConnState(id, vppmeshv1.ConnectionStatus_FAILED)
			if !strings.Contains(st.GetError(), want) {
				t.Errorf("%s: error %q, want it to say %q", id, st.GetError(), want)
			}
			if st.GetEndpoint() != "" {
				t.Errorf("%s: failed connection got endpoint %s", id, st.GetEndpoint())
			}
		}
		good := e.waitConn("good", "a decision", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() == "ep1" })
		if good.GetError() != "" && good.GetState() == vppmeshv1.ConnectionStatus_FAILED {
			t.Fatalf("good connection failed: %v", good)
		}
		// Only the good connection is wired.
		var meshIfs []string
		for _, i := range e.vppIfs() {
			if strings.HasPrefix(i.Tag, "mesh-") {
				meshIfs = append(meshIfs, i.Tag)
			}
		}
		if len(meshIfs) != 2 {
			t.Fatalf("mesh interfaces in VPP: %v, want only good's two", meshIfs)
		}
		// Fixing a value heals it; deleting a bad one removes its status.
		e.meshPut(models.MeshConnectionPrefix+"garbage", connectionJSON("garbage", "fw", label, sock("g"), `{"app":"web"}`))
		e.waitConn("garbage", "fixed", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() == "ep1" })
		e.waitConnState("garbage", vppmeshv1.ConnectionStatus_DOWN)
		e.meshDel(models.MeshConnectionPrefix + "nonode")
		e.eventually("nonode's status removed", func() bool { _, ok := e.connStatus("nonode"); return !ok })
	})
}

// IP payload: each connection gets its own /31 of the pool, recorded in
// etcd; an exhausted pool leaves the next PENDING until one is released.
func TestMeshIPPool(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := func(n string) string { return filepath.Join(e.dir, n+".sock") }
		e.meshPut(models.MeshServicePrefix+"sec", `{"name":"sec","payload":"IP","ip_pool":"198.51.100.0/30"}`)
		e.meshPut(models.MeshEndpointPrefix+"ep1", endpointJSON("ep1", "sec", label, sock("ep1"), `{}`))
		for _, id := range []string{"c1", "c2"} {
			e.meshPut(models.MeshConnectionPrefix+id, connectionJSON(id, "sec", label, sock(id), `{}`))
		}
		got := map[string]string{}
		for _, id := range []string{"c1", "c2"} {
			st := e.waitConn(id, "an address", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetIpContext().GetClientIp() != "" })
			got[st.GetIpContext().GetClientIp()] = id
			if id == "c1" && st.GetEndpointLink().GetMemif().GetId() == 0 {
				// c1 and c2 share ep1's socket: their memif ids differ.
				if s2, _ := e.connStatus("c2"); s2.GetEndpointLink().GetMemif().GetId() == 0 && s2.GetEndpoint() != "" {
					t.Fatal("c1 and c2 got the same memif id on ep1's socket")
				}
			}
		}
		if len(got) != 2 || got["198.51.100.0/31"] == "" || got["198.51.100.2/31"] == "" {
			t.Fatalf("addresses: %v, want 198.51.100.0/31 and 198.51.100.2/31", got)
		}
		e.meshPut(models.MeshConnectionPrefix+"c3", connectionJSON("c3", "sec", label, sock("c3"), `{}`))
		st := e.waitConnState("c3", vppmeshv1.ConnectionStatus_PENDING)
		e.waitConn("c3", "exhausted", func(s *vppmeshv1.ConnectionStatus) bool { return strings.Contains(s.GetError(), "exhausted") })
		_ = st
		freed := got["198.51.100.2/31"]
		e.meshDel(models.MeshConnectionPrefix + freed)
		c3 := e.waitConn("c3", "the freed /31", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetIpContext().GetClientIp() != "" })
		if c3.GetIpContext().GetClientIp() != "198.51.100.2/31" || c3.GetIpContext().GetEndpointIp() != "198.51.100.3/31" {
			t.Fatalf("c3's context %v, want the freed 198.51.100.2/31 pair", c3.GetIpContext())
		}
		e.waitConnState("c3", vppmeshv1.ConnectionStatus_DOWN) // wired before the test ends
		resp, err := e.etcd.Get(context.Background(), models.MeshAllocPrefix+"ip/sec/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 2 {
			t.Fatalf("ip allocations: %d keys, want 2", len(resp.Kvs))
		}
	})
}

// An agent restart changes nothing: no VPP write, same decisions, and the
// statuses stay UP.
func TestMeshAgentRestartNoChange(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := func(n string) string { return filepath.Join(e.dir, n+".sock") }
		e.meshPut(models.MeshServicePrefix+"fw", `{"name":"fw","payload":"IP","ip_pool":"203.0.113.0/24"}`)
		for _, ep := range []string{"ep1", "ep2"} {
			e.meshPut(models.MeshEndpointPrefix+ep, endpointJSON(ep, "fw", label, sock(ep), `{}`))
		}
		var ifs []*vmemif.Interface
		before := map[string]*vppmeshv1.ConnectionStatus{}
		for i := 0; i < 4; i++ {
			id := fmt.Sprintf("c%d", i)
			e.meshPut(models.MeshConnectionPrefix+id, connectionJSON(id, "fw", label, sock(id), `{}`))
			st := e.waitConn(id, "a decision", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() != "" })
			ifs = append(ifs, slave(t, sock(id), 0), slave(t, sock(st.GetEndpoint()), st.GetEndpointLink().GetMemif().GetId()))
		}
		for i := 0; i < 4; i++ {
			id := fmt.Sprintf("c%d", i)
			before[id] = e.waitConnState(id, vppmeshv1.ConnectionStatus_UP)
		}
		if before["c0"].GetEndpoint() == before["c1"].GetEndpoint() {
			t.Fatalf("c0 and c1 both on %s: fewest connections first should spread them", before["c0"].GetEndpoint())
		}
		rev := func() int64 {
			r, err := e.etcd.Get(context.Background(), models.MeshStatusPrefix, clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			var max int64
			for _, kv := range r.Kvs {
				max = maxInt(max, kv.ModRevision)
			}
			return max
		}
		statusRev := rev()
		e.stopAgent()
		if err := e.vpp.ResetCalls(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.startAgent()
		// The mesh has converged when its REST view lists the four UP again.
		defer func() {
			if t.Failed() {
				for _, st := range e.meshStatuses() {
					t.Logf("status: %v", st)
				}
			}
		}()
		e.eventually("statuses read back", func() bool {
			n := 0
			for _, st := range e.meshStatuses() {
				if st.GetState() == vppmeshv1.ConnectionStatus_UP {
					n++
				}
			}
			return n == 4
		})
		time.Sleep(300 * time.Millisecond)
		calls, err := e.vpp.Calls(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n, names := writeCalls(calls); n != 0 {
			t.Fatalf("agent restart made %d VPP write calls: %v", n, names)
		}
		if r := rev(); r != statusRev {
			t.Fatalf("agent restart rewrote statuses (revision %d → %d)", statusRev, r)
		}
		sendReceive(t, ifs[0], ifs[1], 50)
	})
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// meshStatuses asks the agent's REST API for the connections it owns.
func (e *env) meshStatuses() []*vppmeshv1.ConnectionStatus {
	e.t.Helper()
	resp, err := http.Get("http://" + e.agent.HTTPAddr() + "/mesh/connections")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var raw []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		e.t.Fatalf("GET /mesh/connections: %v", err)
	}
	var out []*vppmeshv1.ConnectionStatus
	for _, r := range raw {
		st := &vppmeshv1.ConnectionStatus{}
		if err := protojson.Unmarshal(r, st); err != nil {
			e.t.Fatalf("GET /mesh/connections: %v", err)
		}
		out = append(out, st)
	}
	return out
}

// An endpoint whose link goes down and stays down (its CNF died without
// its registration ending) loses its connections to another endpoint after
// the grace period; other connections are not touched.
func TestMeshLinkDownHeals(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := func(n string) string { return filepath.Join(e.dir, n+".sock") }
		e.meshPut(models.MeshServicePrefix+"fw", `{"name":"fw"}`)
		e.meshPut(models.MeshEndpointPrefix+"ep1", endpointJSON("ep1", "fw", label, sock("ep1"), `{}`))
		e.meshPut(models.MeshConnectionPrefix+"c1", connectionJSON("c1", "fw", label, sock("c1"), `{}`))
		st := e.waitConn("c1", "a decision", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() == "ep1" })
		client := slave(t, sock("c1"), 0)
		ep1 := slave(t, sock("ep1"), st.GetEndpointLink().GetMemif().GetId())
		e.waitConnState("c1", vppmeshv1.ConnectionStatus_UP)
		e.meshPut(models.MeshEndpointPrefix+"ep2", endpointJSON("ep2", "fw", label, sock("ep2"), `{}`))
		time.Sleep(200 * time.Millisecond)
		if now, _ := e.connStatus("c1"); now.GetEndpoint() != "ep1" {
			t.Fatalf("a new endpoint moved a working connection: %v", now)
		}
		if err := ep1.Close(); err != nil {
			t.Fatal(err)
		}
		e.waitConnState("c1", vppmeshv1.ConnectionStatus_DOWN)
		moved := e.waitConn("c1", "moved to ep2", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() == "ep2" })
		if moved.GetHeals() != 1 || moved.GetCounters().GetLinkDowns() != 1 {
			t.Fatalf("after one heal: %v", moved)
		}
		ep2 := slave(t, sock("ep2"), moved.GetEndpointLink().GetMemif().GetId())
		e.waitConnState("c1", vppmeshv1.ConnectionStatus_UP)
		sendReceive(t, client, ep2, 50)
	})
}

// A remote endpoint is skipped with a clear reason until the VXLAN leg
// exists; a local one registering later serves the connection.
func TestMeshRemoteEndpointPending(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := func(n string) string { return filepath.Join(e.dir, n+".sock") }
		e.meshPut(models.MeshServicePrefix+"fw", `{"name":"fw"}`)
		e.meshPut(models.MeshEndpointPrefix+"far", endpointJSON("far", "fw", "vpp2", sock("far"), `{}`))
		e.meshPut(models.MeshConnectionPrefix+"c1", connectionJSON("c1", "fw", label, sock("c1"), `{}`))
		st := e.waitConn("c1", "pending for the remote endpoint", func(s *vppmeshv1.ConnectionStatus) bool {
			return s.GetState() == vppmeshv1.ConnectionStatus_PENDING && strings.Contains(s.GetError(), "far@vpp2") && strings.Contains(s.GetError(), "VXLAN")
		})
		if st.GetEndpoint() != "" {
			t.Fatalf("remote endpoint chosen: %v", st)
		}
		e.meshPut(models.MeshEndpointPrefix+"near", endpointJSON("near", "fw", label, sock("near"), `{}`))
		e.waitConn("c1", "on the local endpoint", func(s *vppmeshv1.ConnectionStatus) bool { return s.GetEndpoint() == "near" })
		// Rendered (no CNF connected: DOWN) before the test ends, so the
		// agent does not stop in the middle of the wiring.
		e.waitConnState("c1", vppmeshv1.ConnectionStatus_DOWN)
	})
}
