package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/mesh"
)

// TestMeshCrossNode: in the two-node lab, a client on node A asks for a
// service whose only endpoint is on node B: the agents wire client memif ↔
// VXLAN on A and VXLAN ↔ endpoint memif on B, the status says so (endpoint
// node, VNI, both underlay addresses) and traffic flows end to end. A local
// endpoint registering later moves nothing; killing B's endpoint moves the
// connection to the local one (one heal), traffic resumes, and the VXLAN
// leg (side report, VNI) is released.
func TestMeshCrossNode(t *testing.T) {
	for _, c := range []struct{ name, impl string }{
		{"vppsim-vppsim", "vppsim"},
		{"vpp-vpp", "vpp"},
	} {
		t.Run(c.name, func(t *testing.T) { meshCrossNode(t, c.impl) })
	}
}

func meshCrossNode(t *testing.T, impl string) {
	tn := newTwoNodes(t)
	a, b := tn.node(0, impl), tn.node(1, impl)
	cli := a.etcdClient()
	for i, e := range []*env{a, b} {
		if _, err := cli.Put(tn.ctx, models.MeshNodePrefix+e.agentLabel, fmt.Sprintf(`{"name":%q,"vxlan_address":%q,"vxlan_uplink":"uplink"}`,
			e.agentLabel, []string{underlayA, underlayB}[i])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(tn.ctx, models.MeshServicePrefix+"fw", `{"name":"fw"}`); err != nil {
		t.Fatal(err)
	}
	epB := b.startMeshCNF("epb", "endpoint", "--service", "fw", "--ttl", "2s")
	a.eventually("epb registered", 30*time.Second, func() error {
		resp, err := cli.Get(tn.ctx, models.MeshEndpointPrefix+"epb", clientv3.WithCountOnly())
		if err != nil || resp.Count != 1 {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	client := a.startMeshCNF("c1", "client", "--service", "fw", "--rate", "200", "--ttl", "0", "--outage-after", "300ms")

	status := func() (*vppmeshv1.ConnectionStatus, int64, error) {
		resp, err := cli.Get(tn.ctx, models.MeshKey(models.MeshStatus, "c1"))
		if err != nil || len(resp.Kvs) == 0 {
			return nil, 0, fmt.Errorf("no status (%v)", err)
		}
		_, v, err := models.UnmarshalMesh(string(resp.Kvs[0].Key), resp.Kvs[0].Value)
		if err != nil {
			return nil, 0, err
		}
		return v.(*vppmeshv1.ConnectionStatus), resp.Kvs[0].ModRevision, nil
	}
	var st *vppmeshv1.ConnectionStatus
	a.eventually("c1 UP on epb across the nodes", 45*time.Second, func() (err error) {
		if st, _, err = status(); err != nil {
			return err
		}
		if st.GetState() != vppmeshv1.ConnectionStatus_UP || st.GetEndpoint() != "epb" {
			return fmt.Errorf("%s on %q (%s)", st.GetState(), st.GetEndpoint(), st.GetError())
		}
		return nil
	})
	x := st.GetVxlan()
	if st.GetEndpointNode() != "node-b" || st.GetClientNode() != "node-a" || x.GetVni() < mesh.VNIMin ||
		x.GetClientAddress() != underlayA || x.GetEndpointAddress() != underlayB {
		t.Fatalf("cross-node status: %v", st)
	}
	waitReceived := func(what string, min uint64) meshSummary {
		var s meshSummary
		a.eventually(what, 30*time.Second, func() (err error) {
			if s, err = client.live(); err != nil {
				return err
			}
			if s.Received < min {
				return fmt.Errorf("received %d of at least %d", s.Received, min)
			}
			return nil
		})
		return s
	}
	before := waitReceived("traffic through node B's endpoint", 200)
	if ep, err := epB.live(); err != nil || ep.Connections["c1"] == 0 {
		t.Fatalf("epb reflected nothing for c1: %+v (%v)", ep, err)
	}

	// A local endpoint registers: the working connection stays where it is.
	_, rev, err := status()
	if err != nil {
		t.Fatal(err)
	}
	a.startMeshCNF("epa", "endpoint", "--service", "fw", "--ttl", "2s")
	a.eventually("epa registered", 30*time.Second, func() error {
		resp, err := cli.Get(tn.ctx, models.MeshEndpointPrefix+"epa", clientv3.WithCountOnly())
		if err != nil || resp.Count != 1 {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	if now, rev2, err := status(); err != nil || rev2 != rev || now.GetEndpoint() != "epb" {
		t.Fatalf("a new local endpoint touched the connection: revision %d → %d, %v (%v)", rev, rev2, now, err)
	}

	// Node B's endpoint dies: the connection heals to node A's endpoint.
	epB.p.Kill()
	a.eventually("c1 healed to epa and UP", 30*time.Second, func() (err error) {
		if st, _, err = status(); err != nil {
			return err
		}
		if st.GetState() != vppmeshv1.ConnectionStatus_UP || st.GetEndpoint() != "epa" || st.GetHeals() != 1 || st.GetVxlan() != nil {
			return fmt.Errorf("%s on %q heals %d vxlan %v (%s)", st.GetState(), st.GetEndpoint(), st.GetHeals(), st.GetVxlan(), st.GetError())
		}
		return nil
	})
	after := waitReceived("traffic resumed through node A's endpoint", before.Received+200)
	if len(after.Outages) == 0 {
		t.Fatalf("no outage recorded across the heal: %+v", after)
	}
	a.eventually("the VXLAN leg released", 15*time.Second, func() error {
		for _, p := range []string{models.MeshSidePrefix, models.MeshAllocPrefix + "vni/"} {
			resp, err := cli.Get(tn.ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			if resp.Count != 0 {
				return fmt.Errorf("%d keys left below %s", resp.Count, p)
			}
		}
		return nil
	})
	stopCtx, cancel := context.WithTimeout(tn.ctx, 10*time.Second)
	defer cancel()
	if err := client.p.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	var s meshSummary
	if err := client.p.LastJSON(&s); err != nil {
		t.Fatal(err)
	}
	t.Logf("c1: sent %d, received %d, lost %d, endpoints %v, outages %+v", s.Sent, s.Received, s.Lost, s.Endpoints, s.Outages)
	if len(s.Endpoints) != 2 || s.Endpoints[0] != "epb" || s.Endpoints[1] != "epa" || s.Received == 0 {
		t.Fatalf("client summary: endpoints %v, received %d; want epb then epa", s.Endpoints, s.Received)
	}
}
