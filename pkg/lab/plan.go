package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/models/vpp/l2"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// Plan is a topology made concrete for one lab directory: every link's socket
// and roles, every vpp node's agent configuration (etcd keys and values), and
// what each node runs. Both runtimes and the exports work from a Plan.
type Plan struct {
	Topo  *Topology
	Dir   string // the lab directory (sockets, logs, state)
	Nodes []*PlanNode
	Links []*PlanLink
	byN   map[string]*PlanNode
}

// PlanNode is one node of a Plan.
type PlanNode struct {
	Node
	// Config is the agent configuration of a vpp node: agent-relative key
	// (config/...) → protobuf JSON, in Ligato's field names.
	Config map[string]string
	// Ifaces maps a link interface name of a vpp node to the VPP interface
	// name the agent gives it (a cross-connect renders <xc>-a and <xc>-b).
	Ifaces map[string]string
	// Links are the indexes of the links ending on this node.
	Links []int
	// Services are the mesh services (global etcd key, protobuf JSON) a vpp
	// node serving mesh CNFs puts with its configuration.
	Services [][2]string
}

// PlanLink is one link of a Plan.
type PlanLink struct {
	Index  int // 1-based, as errors and reports name links
	Name   string
	Type   string
	Link   Link
	Socket string // memif or vhost-user socket path (empty for veth, vxlan)
	ID     uint32 // memif id
	// Master is the node that listens: the memif master or the vhost-user server.
	Master string
}

// Node returns a plan node by name.
func (p *Plan) Node(name string) *PlanNode { return p.byN[name] }

// SockDir is where every memif and vhost-user socket of the lab lives; the
// docker runtime bind-mounts it at the same path into every container.
func (p *Plan) SockDir() string { return filepath.Join(p.Dir, "sock") }

// crossConnectName names the CrossConnect of a vpp node's xconnect pair.
func crossConnectName(a, b string) string { return a + "-" + b }

var jsonOpts = protojson.MarshalOptions{UseProtoNames: true}

// NewPlan makes t concrete for directory dir. It fails for what the file
// accepts but this build cannot run (vxlan links before the multi-node work).
func NewPlan(t *Topology, dir string) (*Plan, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	p := &Plan{Topo: t, Dir: dir, byN: map[string]*PlanNode{}}
	for _, n := range t.Nodes() {
		pn := &PlanNode{Node: n}
		if n.Kind == KindVPP {
			pn.Config = map[string]string{}
			pn.Ifaces = map[string]string{}
		}
		p.Nodes = append(p.Nodes, pn)
		p.byN[n.Name] = pn
	}
	// Unix socket paths hold at most 107 bytes.
	if max := len(filepath.Join(p.SockDir(), "l000.sock")); max > 107 {
		return nil, fmt.Errorf("lab directory %s is too long for unix socket paths (%d > 107 bytes)", dir, max)
	}
	for i := range t.Topology.Links {
		l := t.Topology.Links[i]
		pl := &PlanLink{Index: i + 1, Name: l.Name(), Type: l.LinkType(), Link: l}
		switch pl.Type {
		case LinkMemif:
			pl.Socket = filepath.Join(p.SockDir(), fmt.Sprintf("l%d.sock", pl.Index))
			pl.ID = l.ID
			if pl.ID == 0 {
				pl.ID = 1
			}
			pl.Master = l.Master
			if pl.Master == "" {
				pl.Master = l.Endpoints[0].Node
				if p.byN[l.Endpoints[1].Node].Kind == KindVPP && p.byN[l.Endpoints[0].Node].Kind != KindVPP {
					pl.Master = l.Endpoints[1].Node
				}
			}
		case LinkVhostUser:
			pl.Socket = filepath.Join(p.SockDir(), fmt.Sprintf("l%d.sock", pl.Index))
			pl.Master = l.Server
			if pl.Master == "" {
				for _, e := range l.Endpoints {
					if p.byN[e.Node].Kind == KindVPP {
						pl.Master = e.Node
					}
				}
			}
		}
		for _, e := range l.Endpoints {
			n := p.byN[e.Node]
			n.Links = append(n.Links, len(p.Links))
		}
		p.Links = append(p.Links, pl)
	}
	for _, n := range p.Nodes {
		if n.Kind == KindVPP {
			if err := p.renderVPP(n); err != nil {
				return nil, err
			}
		}
	}
	if vpps := p.meshVPPNodes(); len(vpps) > 0 {
		svcs, err := p.ServiceValues()
		if err != nil {
			return nil, err
		}
		for _, v := range vpps {
			p.byN[v].Services = svcs
		}
	}
	return p, nil
}

// linkEnd finds the endpoint of link pl on node.
func (pl *PlanLink) end(node string) (Endpoint, Endpoint) {
	if pl.Link.Endpoints[0].Node == node {
		return pl.Link.Endpoints[0], pl.Link.Endpoints[len(pl.Link.Endpoints)-1]
	}
	return pl.Link.Endpoints[1], pl.Link.Endpoints[0]
}

// vppEndpoint is the CrossConnect endpoint (and interface link) of node's
// end of pl.
func (p *Plan) vppEndpoint(node string, pl *PlanLink) (*vppmeshv1.Endpoint, error) {
	self, _ := pl.end(node)
	ep := &vppmeshv1.Endpoint{PhysAddress: self.MAC, Mtu: pl.Link.MTU}
	switch pl.Type {
	case LinkMemif:
		m := &interfaces.MemifLink{
			Master: pl.Master == node, Id: pl.ID, SocketFilename: pl.Socket, Secret: pl.Link.Secret,
			RingSize: pl.Link.RingSize, BufferSize: pl.Link.BufferSize, RxQueues: pl.Link.Queues, TxQueues: pl.Link.Queues,
		}
		if pl.Link.Mode == "ip" {
			m.Mode = interfaces.MemifLink_IP
		}
		ep.Link = &vppmeshv1.Endpoint_Memif{Memif: m}
	case LinkVhostUser:
		ep.Link = &vppmeshv1.Endpoint_VhostUser{VhostUser: &interfaces.VhostUserLink{SocketFilename: pl.Socket, Server: pl.Master == node}}
	case LinkVxlan:
		up, err := p.Topo.Uplink(node, pl.Link.Uplink)
		if err != nil {
			return nil, err
		}
		remote := pl.Link.Remote
		if len(pl.Link.Endpoints) == 2 {
			_, other := pl.end(node)
			far, err := p.Topo.Uplink(other.Node, "")
			if err != nil {
				return nil, err
			}
			remote = strings.SplitN(far.IPv4, "/", 2)[0]
		}
		ep.Link = &vppmeshv1.Endpoint_Vxlan{Vxlan: &vppmeshv1.VxlanEnd{Remote: remote, Vni: pl.Link.VNI, Uplink: up.Interface}}
	default:
		return nil, fmt.Errorf("node %s: link %d (%s): a %s link on a vpp node is %w", node, pl.Index, pl.Name, pl.Type, errNotYet)
	}
	return ep, nil
}

func (p *Plan) renderVPP(n *PlanNode) error {
	byIface := map[string]*PlanLink{}
	for _, li := range n.Links {
		pl := p.Links[li]
		self, _ := pl.end(n.Name)
		byIface[self.Interface] = pl
	}
	put := func(m proto.Message) error {
		key, err := models.KeyOf(m)
		if err != nil {
			return err
		}
		b, err := jsonOpts.Marshal(m)
		if err != nil {
			return err
		}
		// protojson varies its spacing from build to build on purpose:
		// compact it so the same lab always writes the same bytes.
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			return err
		}
		n.Config[key] = c.String()
		return nil
	}
	joined := map[string]bool{}
	for _, pair := range n.VPP.XConnect {
		name := crossConnectName(pair[0], pair[1])
		a, err := p.vppEndpoint(n.Name, byIface[pair[0]])
		if err != nil {
			return err
		}
		b, err := p.vppEndpoint(n.Name, byIface[pair[1]])
		if err != nil {
			return err
		}
		if err := put(&vppmeshv1.CrossConnect{Name: name, A: a, B: b}); err != nil {
			return err
		}
		n.Ifaces[pair[0]], n.Ifaces[pair[1]] = name+"-a", name+"-b"
		joined[pair[0]], joined[pair[1]] = true, true
	}
	plain := func(iface string) error {
		if pl := byIface[iface]; pl.Type == LinkVeth {
			// The veth end in the node's namespace, taken by VPP as AF_PACKET.
			self, _ := pl.end(n.Name)
			ifc := &interfaces.Interface{Name: iface, Type: interfaces.Interface_AF_PACKET, Enabled: true, PhysAddress: self.MAC, Mtu: pl.Link.MTU,
				Link: &interfaces.Interface_Afpacket{Afpacket: &interfaces.AfpacketLink{HostIfName: iface}}}
			if self.IPv4 != "" {
				ifc.IpAddresses = []string{self.IPv4}
			}
			n.Ifaces[iface] = iface
			return put(ifc)
		}
		if pl := byIface[iface]; pl.Type == LinkVxlan {
			return fmt.Errorf("node %s: %s: a vxlan end must be in a vpp.xconnect pair", n.Name, iface)
		}
		ep, err := p.vppEndpoint(n.Name, byIface[iface])
		if err != nil {
			return err
		}
		ifc := &interfaces.Interface{Name: iface, Enabled: true, PhysAddress: ep.PhysAddress, Mtu: ep.Mtu}
		switch l := ep.Link.(type) {
		case *vppmeshv1.Endpoint_Memif:
			ifc.Type = interfaces.Interface_MEMIF
			ifc.Link = &interfaces.Interface_Memif{Memif: l.Memif}
		case *vppmeshv1.Endpoint_VhostUser:
			ifc.Type = interfaces.Interface_VHOST_USER
			ifc.Link = &interfaces.Interface_VhostUser{VhostUser: l.VhostUser}
		}
		n.Ifaces[iface] = iface
		return put(ifc)
	}
	for _, bd := range sortedKeys(n.VPP.Bridges) {
		d := &l2.BridgeDomain{Name: bd, Flood: true, UnknownUnicastFlood: true, Forward: true, Learn: true}
		for _, iface := range n.VPP.Bridges[bd] {
			if err := plain(iface); err != nil {
				return err
			}
			joined[iface] = true
			d.Interfaces = append(d.Interfaces, &l2.BridgeDomain_Interface{Name: iface})
		}
		if err := put(d); err != nil {
			return err
		}
	}
	for _, iface := range sortedKeys(byIface) {
		if !joined[iface] {
			if err := plain(iface); err != nil {
				return err
			}
		}
	}
	return nil
}

// ConfigKeys lists a vpp node's agent-relative config keys, sorted.
func (n *PlanNode) ConfigKeys() []string { return sortedKeys(n.Config) }

// CNFArgs is the vppmesh-cnf command line of a cnf node: its cmd (mode and
// flags, default "reflect") plus the memif of its link and a stats file.
// A mesh CNF gets its service, labels, socket and etcd instead of a link.
func (p *Plan) CNFArgs(n *PlanNode, statsFile string) []string {
	if n.MeshRole() != "" {
		return p.meshArgs(n, p.EtcdAddr(), statsFile)
	}
	fields := strings.Fields(n.Cmd)
	if len(fields) == 0 {
		fields = []string{"reflect"}
	}
	args := append([]string{}, fields...)
	for _, li := range n.Links {
		pl := p.Links[li]
		if pl.Type != LinkMemif {
			continue
		}
		self, _ := pl.end(n.Name)
		role := "slave"
		if pl.Master == n.Name {
			role = "master"
		}
		args = append(args, "--socket", pl.Socket, "--id", fmt.Sprint(pl.ID), "--role", role, "--name", self.Interface)
		if pl.Link.Secret != "" {
			args = append(args, "--secret", pl.Link.Secret)
		}
		if pl.Link.Mode == "ip" {
			args = append(args, "--mode", "ip")
		}
		if pl.Link.RingSize != 0 {
			args = append(args, "--ring-size", fmt.Sprint(pl.Link.RingSize))
		}
		if pl.Link.BufferSize != 0 {
			args = append(args, "--buffer-size", fmt.Sprint(pl.Link.BufferSize))
		}
		if pl.Link.Queues != 0 {
			args = append(args, "--queues", fmt.Sprint(pl.Link.Queues))
		}
	}
	if fields[0] == "gen" && !hasFlag(fields, "count") && !hasFlag(fields, "duration") {
		// up's burst: a short, bounded one.
		args = append(args, "--count", "1000", "--rate", "20000")
	}
	if statsFile != "" {
		args = append(args, "--stats-file", statsFile, "--stats-interval", "200ms")
	}
	return args
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// IsGen reports whether a cnf node generates traffic (started last, once every
// link is up).
func (n *PlanNode) IsGen() bool {
	f := strings.Fields(n.Cmd)
	return n.Kind == KindCNF && len(f) > 0 && f[0] == "gen"
}

// TestpmdArgs is the dpdk-testpmd command line of a testpmd node: no hugepages,
// no PCI, its vhost-user (virtio-user) or memif port, then the node's cmd as
// testpmd's own options (default: io forwarding, auto-start).
func (p *Plan) TestpmdArgs(n *PlanNode) []string {
	args := []string{"--no-huge", "-m", "1024", "--no-pci", "--file-prefix=" + DPDKPrefix(p.Topo.Name, n.Name), "-l", "0,1", "--log-level=lib.eal:notice"}
	ports := 0
	for _, li := range n.Links {
		pl := p.Links[li]
		switch pl.Type {
		case LinkVhostUser:
			// queue_size: the default 256 descriptors overflow while the backend waits for a CPU.
			v := fmt.Sprintf("--vdev=net_virtio_user%d,path=%s,queues=1,queue_size=1024", ports, pl.Socket)
			if pl.Master == n.Name {
				v += ",server=1"
			}
			args = append(args, v)
			ports++
		case LinkMemif:
			role := "client"
			if pl.Master == n.Name {
				role = "server"
			}
			args = append(args, fmt.Sprintf("--vdev=net_memif%d,role=%s,socket=%s,socket-abstract=no,id=%d", ports, role, pl.Socket, pl.ID))
			ports++
		}
	}
	// --stats-period keeps testpmd forwarding until it is signalled, with no
	// stdin (without it, testpmd stops at end of input).
	args = append(args, "--", "--total-num-mbufs=16384", "--no-mlockall", "--nb-cores=1", "--rxd=1024", "--txd=1024", "--auto-start", "--stats-period=1")
	if ports == 1 {
		args = append(args, "--port-topology=loop")
	}
	if extra := strings.Fields(n.Cmd); len(extra) > 0 {
		args = append(args, extra...)
	} else {
		args = append(args, "--forward-mode=io")
	}
	return args
}

// DPDKPrefix is a testpmd node's EAL file prefix (its runtime directory under
// /var/run/dpdk, removed by down).
func DPDKPrefix(lab, node string) string { return labPrefix(lab) + node }

// sortedLinks returns the links of node sorted by interface name.
func (p *Plan) sortedLinks(n *PlanNode) []*PlanLink {
	out := make([]*PlanLink, 0, len(n.Links))
	for _, li := range n.Links {
		out = append(out, p.Links[li])
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := out[i].end(n.Name)
		b, _ := out[j].end(n.Name)
		return a.Interface < b.Interface
	})
	return out
}
