package lab

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
)

// The management network of the netns runtime: when a lab has an etcd node,
// the etcd node and every vpp node get an interface mgmt0 on a bridge in a
// namespace of its own, addressed from 203.0.113.0/24 (RFC 5737; no route
// anywhere else), so that every agent uses the one etcd.
const (
	mgmtIf     = "mgmt0"
	mgmtBridge = "br0"
)

var mgmtNet = netip.MustParsePrefix("203.0.113.0/24")

// mgmtNS is the management bridge's namespace: '_' never occurs in a node name.
func mgmtNS(lab string) string { return labPrefix(lab) + "_mgmt" }

// EtcdNode returns the lab's etcd node, if it has one.
func (p *Plan) EtcdNode() *PlanNode {
	for _, n := range p.Nodes {
		if n.Kind == KindEtcd {
			return n
		}
	}
	return nil
}

// MgmtAddr is a node's management address (valid when the lab has an etcd
// node and the node is on the management network).
func (p *Plan) MgmtAddr(node string) netip.Addr {
	a := mgmtNet.Addr().Next()
	for _, n := range p.mgmtNodes() {
		if n.Name == node {
			return a
		}
		a = a.Next()
	}
	return netip.Addr{}
}

// mgmtNodes are the nodes on the management network: the etcd node and the
// vpp nodes, in name order.
func (p *Plan) mgmtNodes() []*PlanNode {
	if p.EtcdNode() == nil {
		return nil
	}
	var out []*PlanNode
	for _, n := range p.Nodes {
		if n.Kind == KindEtcd || n.Kind == KindVPP {
			out = append(out, n)
		}
	}
	return out
}

// EtcdAddr is host:port of the etcd a vpp node's agent uses: the etcd node's
// on the management network, or the agent's embedded one on the node's loopback.
func (p *Plan) EtcdAddr() string {
	if e := p.EtcdNode(); e != nil {
		return p.MgmtAddr(e.Name).String() + ":2379"
	}
	return ctrEtcdAddr
}

// EtcdArgs is the command line of an etcd node (Debian's etcd-server): one
// member, clients on its management address and loopback.
func (p *Plan) EtcdArgs(n *PlanNode) []string {
	addr := p.MgmtAddr(n.Name).String()
	return []string{"--name", n.Name, "--data-dir", filepath.Join(p.Dir, "nodes", n.Name, "data"),
		"--listen-client-urls", "http://" + addr + ":2379,http://127.0.0.1:2379",
		"--advertise-client-urls", "http://" + addr + ":2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", n.Name + "=http://127.0.0.1:2380", "--log-level", "warn"}
}

// upMgmt builds the management network (netns runtime).
func (r *runner) upMgmt(ctx context.Context) error {
	nodes := r.plan.mgmtNodes()
	if len(nodes) == 0 {
		return nil
	}
	ns := mgmtNS(r.plan.Topo.Name)
	if err := r.state.update(func(s *State) { s.Namespaces = append(s.Namespaces, ns) }); err != nil {
		return err
	}
	steps := [][]string{{"netns", "add", ns}, {"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", mgmtBridge, "type", "bridge"}, {"-n", ns, "link", "set", mgmtBridge, "up"}}
	for i, n := range nodes {
		port := fmt.Sprintf("p%d", i)
		nodeNS := nsName(r.plan.Topo.Name, n.Name)
		steps = append(steps,
			[]string{"-n", ns, "link", "add", port, "type", "veth", "peer", "name", mgmtIf, "netns", nodeNS},
			[]string{"-n", ns, "link", "set", port, "master", mgmtBridge},
			[]string{"-n", ns, "link", "set", port, "up"},
			[]string{"-n", nodeNS, "addr", "add", fmt.Sprintf("%s/%d", r.plan.MgmtAddr(n.Name), mgmtNet.Bits()), "dev", mgmtIf},
			[]string{"-n", nodeNS, "link", "set", mgmtIf, "up"})
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("management network: %w", err)
		}
	}
	r.log.Info("management network up", "netns", ns, "nodes", len(nodes))
	return nil
}
