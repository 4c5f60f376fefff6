// Package lab runs lab topologies: a containerlab-shaped YAML file names VPP
// nodes (the vppmesh agent with VPP or vppsim), CNFs, testpmd "VMs", etcd and
// plain Linux nodes, and the links between them (memif, vhost-user, veth,
// vxlan). A link that ends on a VPP node becomes that node's agent
// configuration in etcd; the lab never wires VPP by hand.
//
// The same file runs in network namespaces (one per node, processes started
// from ./bin or PATH) or in Docker (images built locally, --network none), and
// exports to docker compose and containerlab files.
package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v2"
)

// Node kinds.
const (
	KindVPP     = "vpp"     // the vppmesh agent with VPP or vppsim
	KindCNF     = "cnf"     // vppmesh-cnf: gen, sink or reflect on one memif; a mesh endpoint or client
	KindTestpmd = "testpmd" // dpdk-testpmd as a VM stand-in (virtio-user) or memif peer
	KindEtcd    = "etcd"    // an etcd server shared by the VPP nodes
	KindLinux   = "linux"   // a namespace (netns) or any local image (docker)
)

// Link types.
const (
	LinkMemif     = "memif"
	LinkVhostUser = "vhost-user"
	LinkVeth      = "veth"
	LinkVxlan     = "vxlan"
)

// VPP engines of a vpp node.
const (
	EngineVPPSim = "vppsim"
	EngineVPP    = "vpp"
)

// Topology is a parsed lab file.
type Topology struct {
	Name     string `yaml:"name"`
	Topology Body   `yaml:"topology"`
}

// Body is the topology section: defaults for every node, defaults per kind,
// the nodes and the links.
type Body struct {
	Defaults NodeSpec            `yaml:"defaults,omitempty"`
	Kinds    map[string]NodeSpec `yaml:"kinds,omitempty"`
	Nodes    map[string]NodeSpec `yaml:"nodes"`
	Links    []Link              `yaml:"links,omitempty"`
	// Services are the network services the lab puts in etcd for its mesh
	// CNFs (docs/mesh.md), by name.
	Services map[string]ServiceSpec `yaml:"services,omitempty"`
}

// NodeSpec is one node, or the defaults merged into it (node over kind over
// defaults; env maps merge key by key, lists are replaced).
type NodeSpec struct {
	Kind  string            `yaml:"kind,omitempty"`
	Image string            `yaml:"image,omitempty"`
	Cmd   string            `yaml:"cmd,omitempty"`
	Env   map[string]string `yaml:"env,omitempty"`
	Binds []string          `yaml:"binds,omitempty"`
	// Exec runs after every link is up, in the node (ip netns exec, docker exec).
	Exec   []string          `yaml:"exec,omitempty"`
	Labels map[string]string `yaml:"labels,omitempty"`
	// VPP is the vpp kind's own part: engine and what joins its interfaces.
	VPP *VPPSpec `yaml:"vpp,omitempty"`
	// Mesh is a mesh CNF's part (cmd endpoint or client): service, labels
	// and the vpp node that serves it.
	Mesh *MeshSpec `yaml:"mesh,omitempty"`
}

// VPPSpec says how a vpp node's interfaces are joined: pairs cross-connected
// (a vppmesh CrossConnect each) and bridge domains. An interface in neither is
// created admin up and left alone.
type VPPSpec struct {
	Engine   string              `yaml:"engine,omitempty"`
	XConnect [][]string          `yaml:"xconnect,omitempty"`
	Bridges  map[string][]string `yaml:"bridges,omitempty"`
}

// Endpoint is one end of a link: node and interface.
type Endpoint struct {
	Node      string `yaml:"node"`
	Interface string `yaml:"interface"`
	MAC       string `yaml:"mac,omitempty"`
	// IPv4 (address/prefix) of a veth end: on a linux or cnf node the kernel
	// interface gets it; on a vpp node its AF_PACKET interface does.
	IPv4 string `yaml:"ipv4,omitempty"`
}

// UnmarshalYAML accepts "node:interface" or {node, interface, mac}.
func (e *Endpoint) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		node, iface, ok := strings.Cut(s, ":")
		if !ok || node == "" || iface == "" {
			return fmt.Errorf("endpoint %q: want node:interface", s)
		}
		e.Node, e.Interface = node, iface
		return nil
	}
	type plain Endpoint
	var p plain
	if err := unmarshal(&p); err != nil {
		return err
	}
	*e = Endpoint(p)
	return nil
}

func (e Endpoint) String() string { return e.Node + ":" + e.Interface }

// Link joins two endpoints (vxlan: one, the other end is Remote). Type-specific
// parameters sit beside the endpoints, as containerlab's long form has them.
type Link struct {
	Type      string     `yaml:"type,omitempty"` // default memif
	Endpoints []Endpoint `yaml:"endpoints"`
	MTU       uint32     `yaml:"mtu,omitempty"`

	// memif
	Master     string `yaml:"master,omitempty"` // node that listens; default: the vpp end, else the first
	ID         uint32 `yaml:"id,omitempty"`     // memif id on the link's socket (default 1)
	Mode       string `yaml:"mode,omitempty"`   // ethernet (default) or ip
	Secret     string `yaml:"secret,omitempty"`
	RingSize   uint32 `yaml:"ring-size,omitempty"`
	BufferSize uint32 `yaml:"buffer-size,omitempty"`
	Queues     uint32 `yaml:"queues,omitempty"`

	// vhost-user
	Server string `yaml:"server,omitempty"` // node that listens on the socket; default: the vpp end

	// vxlan: two vpp ends (each one's remote is the other's uplink address)
	// or one vpp end and the Remote VTEP's address.
	VNI    uint32 `yaml:"vni,omitempty"`
	Remote string `yaml:"remote,omitempty"`
	// Uplink names the vpp node's veth interface (with an ipv4) that carries
	// the tunnel; default: the node's only one.
	Uplink string `yaml:"uplink,omitempty"`
}

// Name is the link's stable name: its endpoints.
func (l *Link) Name() string {
	parts := make([]string, len(l.Endpoints))
	for i, e := range l.Endpoints {
		parts[i] = e.String()
	}
	return strings.Join(parts, "--")
}

// Node is a node after defaults are merged, with its name.
type Node struct {
	Name string
	NodeSpec
}

// Load reads and validates a lab file.
func Load(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse decodes a lab file strictly (unknown or repeated keys are errors, with
// their line) and validates it.
// A service given by file is read relative to the working directory (Load:
// the lab file's directory).
func Parse(b []byte) (*Topology, error) { return parse(b, ".") }

func parse(b []byte, dir string) (*Topology, error) {
	var t Topology
	if err := yaml.UnmarshalStrict(b, &t); err != nil {
		return nil, fmt.Errorf("lab file: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := t.resolveServiceFiles(dir); err != nil {
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Marshal encodes t as YAML (the form Parse reads).
func (t *Topology) Marshal() ([]byte, error) { return yaml.Marshal(t) }

// NodeNames lists node names sorted.
func (t *Topology) NodeNames() []string {
	names := make([]string, 0, len(t.Topology.Nodes))
	for n := range t.Topology.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Node returns a node with defaults and its kind's defaults merged in.
func (t *Topology) Node(name string) (Node, bool) {
	spec, ok := t.Topology.Nodes[name]
	if !ok {
		return Node{}, false
	}
	kind := spec.Kind
	if kind == "" {
		kind = t.Topology.Defaults.Kind
	}
	merged := merge(t.Topology.Defaults, NodeSpec{})
	if k, ok := t.Topology.Kinds[kind]; ok {
		merged = merge(merged, k)
	}
	merged = merge(merged, spec)
	merged.Kind = kind
	if merged.Kind == KindVPP {
		if merged.VPP == nil {
			merged.VPP = &VPPSpec{}
		}
		if merged.VPP.Engine == "" {
			merged.VPP.Engine = EngineVPPSim
		}
	}
	return Node{Name: name, NodeSpec: merged}, true
}

// Nodes returns every node merged, sorted by name.
func (t *Topology) Nodes() []Node {
	out := make([]Node, 0, len(t.Topology.Nodes))
	for _, n := range t.NodeNames() {
		nd, _ := t.Node(n)
		out = append(out, nd)
	}
	return out
}

func merge(base, over NodeSpec) NodeSpec {
	out := base
	if over.Kind != "" {
		out.Kind = over.Kind
	}
	if over.Image != "" {
		out.Image = over.Image
	}
	if over.Cmd != "" {
		out.Cmd = over.Cmd
	}
	if len(over.Env) > 0 || len(base.Env) > 0 {
		out.Env = map[string]string{}
		for k, v := range base.Env {
			out.Env[k] = v
		}
		for k, v := range over.Env {
			out.Env[k] = v
		}
	}
	if over.Binds != nil {
		out.Binds = over.Binds
	}
	if over.Exec != nil {
		out.Exec = over.Exec
	}
	if len(over.Labels) > 0 || len(base.Labels) > 0 {
		out.Labels = map[string]string{}
		for k, v := range base.Labels {
			out.Labels[k] = v
		}
		for k, v := range over.Labels {
			out.Labels[k] = v
		}
	}
	if over.VPP != nil {
		out.VPP = over.VPP
	}
	if over.Mesh != nil {
		out.Mesh = over.Mesh
	}
	return out
}

// LinkType returns l's type with the default (memif) applied.
func (l *Link) LinkType() string {
	if l.Type == "" {
		return LinkMemif
	}
	return l.Type
}

var (
	labName  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	nodeName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	ifName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// MaxIfName is Linux's interface name limit (IFNAMSIZ - 1): every interface
// name of a lab fits it, so the same file works with veth and real VPP.
const MaxIfName = 15

// Validate checks the whole file and returns every problem found, one per
// line, each naming the node or link. It needs no root and touches nothing.
func (t *Topology) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !labName.MatchString(t.Name) {
		bad("name %q: want 1-32 of a-z, 0-9 and '-' (it names namespaces and containers)", t.Name)
	}
	if len(t.Topology.Nodes) == 0 {
		bad("topology.nodes: no nodes")
	}
	for k := range t.Topology.Kinds {
		if !validKind(k) {
			bad("topology.kinds.%s: unknown kind (want vpp, cnf, testpmd, etcd or linux)", k)
		}
	}
	if t.Topology.Defaults.VPP != nil {
		bad("topology.defaults: vpp settings belong to a vpp node or kinds.vpp")
	}
	etcds := 0
	for _, n := range t.Nodes() {
		where := "node " + n.Name
		if !nodeName.MatchString(n.Name) {
			bad("%s: name must be 1-32 of a-z, 0-9 and '-'", where)
		}
		if strings.HasSuffix(n.Name, "-agent") || strings.HasSuffix(n.Name, "-config") {
			bad("%s: names ending in -agent or -config are the containers of vpp nodes", where)
		}
		if !validKind(n.Kind) {
			if n.Kind == "" {
				bad("%s: no kind (want vpp, cnf, testpmd, etcd or linux)", where)
			} else {
				bad("%s: unknown kind %q (want vpp, cnf, testpmd, etcd or linux)", where, n.Kind)
			}
			continue
		}
		if n.Kind == KindEtcd {
			etcds++
		}
		if n.VPP != nil && n.Kind != KindVPP {
			bad("%s: vpp settings on a %s node", where, n.Kind)
		}
		for k := range n.Env {
			if !envName.MatchString(k) {
				bad("%s: env %q is not a variable name", where, k)
			}
		}
		for _, b := range n.Binds {
			host, ctr, ok := strings.Cut(b, ":")
			if !ok || !strings.HasPrefix(host, "/") || !strings.HasPrefix(ctr, "/") {
				bad("%s: bind %q: want /host/path:/container/path[:ro]", where, b)
			}
		}
		if n.Kind == KindCNF {
			if mode, _, _ := strings.Cut(strings.TrimSpace(n.Cmd), " "); mode != "" && mode != "gen" && mode != "sink" && mode != "reflect" && mode != CNFEndpoint && mode != CNFClient {
				bad("%s: cmd %q: a cnf runs gen, sink, reflect, endpoint or client", where, n.Cmd)
			}
		}
		if n.Kind == KindVPP && n.VPP.Engine != EngineVPPSim && n.VPP.Engine != EngineVPP {
			bad("%s: vpp.engine %q: want vppsim or vpp", where, n.VPP.Engine)
		}
	}
	if etcds > 1 {
		bad("topology: %d etcd nodes; a lab has at most one", etcds)
	}
	errs = append(errs, t.validateLinks()...)
	errs = append(errs, t.validateMesh()...)
	return joinLines(errs)
}

func validKind(k string) bool {
	switch k {
	case KindVPP, KindCNF, KindTestpmd, KindEtcd, KindLinux:
		return true
	}
	return false
}

// endpointUse is where an interface name of a node is used.
type endpointUse struct {
	link int
	typ  string
}

func (t *Topology) validateLinks() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	used := map[string]endpointUse{} // node:iface → first link using it
	memifsOf := map[string]int{}     // cnf node → memif links
	for i := range t.Topology.Links {
		l := &t.Topology.Links[i]
		where := fmt.Sprintf("link %d (%s)", i+1, l.Name())
		typ := l.LinkType()
		want := 2
		switch typ {
		case LinkMemif, LinkVhostUser, LinkVeth:
		case LinkVxlan:
			want = len(l.Endpoints)
			if want < 1 || want > 2 {
				bad("%s: a vxlan link has one endpoint (and a remote) or two (two vpp nodes)", where)
				continue
			}
		default:
			bad("%s: unknown type %q (want memif, vhost-user, veth or vxlan)", where, l.Type)
			continue
		}
		if len(l.Endpoints) != want {
			bad("%s: a %s link has %d endpoint(s), not %d", where, typ, want, len(l.Endpoints))
			continue
		}
		kinds := make([]string, len(l.Endpoints))
		ok := true
		for j, e := range l.Endpoints {
			n, found := t.Node(e.Node)
			if !found {
				bad("%s: endpoint %s: no node %q", where, e, e.Node)
				ok = false
				continue
			}
			kinds[j] = n.Kind
			if !ifName.MatchString(e.Interface) || len(e.Interface) > MaxIfName {
				bad("%s: endpoint %s: interface name must be 1-%d bytes of A-Z, a-z, 0-9, '_', '.', '-'", where, e, MaxIfName)
			}
			if prev, dup := used[e.String()]; dup {
				bad("%s: endpoint %s is already used by link %d", where, e, prev.link+1)
			} else {
				used[e.String()] = endpointUse{link: i, typ: typ}
			}
			if e.MAC != "" && !validMAC(e.MAC) {
				bad("%s: endpoint %s: mac %q is not a MAC address", where, e, e.MAC)
			}
			if e.IPv4 != "" {
				if typ != LinkVeth {
					bad("%s: endpoint %s: ipv4 is for veth ends", where, e)
				} else if pfx, err := netip.ParsePrefix(e.IPv4); err != nil || !pfx.Addr().Is4() {
					bad("%s: endpoint %s: ipv4 %q: want an IPv4 address/prefix", where, e, e.IPv4)
				}
			}
		}
		if !ok {
			continue
		}
		if want == 2 && l.Endpoints[0].Node == l.Endpoints[1].Node && typ != LinkVeth {
			bad("%s: both ends on node %s", where, l.Endpoints[0].Node)
		}
		if l.MTU != 0 && (l.MTU < 576 || l.MTU > 9216) {
			bad("%s: mtu %d: want 576..9216", where, l.MTU)
		}
		errs = append(errs, t.validateParams(where, l, typ, kinds, memifsOf)...)
	}
	for n, c := range memifsOf {
		if c > 1 {
			bad("node %s: a cnf has one memif (vppmesh-cnf), this one is on %d links", n, c)
		}
	}
	errs = append(errs, t.validateVPPJoins(used)...)
	errs = append(errs, t.validateSockets()...)
	errs = append(errs, t.validateVxlan()...)
	return errs
}

// validateVxlan checks each vxlan end: one end of an xconnect pair of its
// node (a vxlan end exists only as a CrossConnect end), and an uplink.
func (t *Topology) validateVxlan() []error {
	var errs []error
	for i := range t.Topology.Links {
		l := &t.Topology.Links[i]
		if l.LinkType() != LinkVxlan {
			continue
		}
		where := fmt.Sprintf("link %d (%s)", i+1, l.Name())
		for _, e := range l.Endpoints {
			n, ok := t.Node(e.Node)
			if !ok || n.Kind != KindVPP {
				continue
			}
			inPair := false
			for _, pair := range n.VPP.XConnect {
				inPair = inPair || (len(pair) == 2 && (pair[0] == e.Interface || pair[1] == e.Interface))
			}
			if !inPair {
				errs = append(errs, fmt.Errorf("%s: %s must be one end of a vpp.xconnect pair of node %s (a vxlan end is a cross-connect end)", where, e, e.Node))
			}
			if _, err := t.Uplink(e.Node, l.Uplink); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", where, e, err))
			}
		}
	}
	return errs
}

// Uplink returns the veth end of a vpp node that carries its vxlan tunnels:
// the one named, or the node's only veth end with an ipv4.
func (t *Topology) Uplink(node, name string) (Endpoint, error) {
	var found []Endpoint
	for i := range t.Topology.Links {
		l := &t.Topology.Links[i]
		if l.LinkType() != LinkVeth {
			continue
		}
		for _, e := range l.Endpoints {
			if e.Node == node && e.IPv4 != "" && (name == "" || name == e.Interface) {
				found = append(found, e)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case name != "":
		return Endpoint{}, fmt.Errorf("uplink %s: node %s has no veth end %s with an ipv4", name, node, name)
	case len(found) == 0:
		return Endpoint{}, fmt.Errorf("node %s has no uplink: a veth end with an ipv4 carries the tunnel", node)
	default:
		return Endpoint{}, fmt.Errorf("node %s has %d veth ends with an ipv4: say which is the uplink (uplink: IFACE)", node, len(found))
	}
}

func (t *Topology) validateParams(where string, l *Link, typ string, kinds []string, memifsOf map[string]int) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	memifSet := l.Master != "" || l.ID != 0 || l.Mode != "" || l.Secret != "" || l.RingSize != 0 || l.BufferSize != 0 || l.Queues != 0
	vxlanSet := l.VNI != 0 || l.Remote != "" || l.Uplink != ""
	if typ != LinkMemif && memifSet {
		bad("%s: master, id, mode, secret, ring-size, buffer-size and queues are memif parameters, not %s", where, typ)
	}
	if typ != LinkVhostUser && l.Server != "" {
		bad("%s: server is a vhost-user parameter, not %s", where, typ)
	}
	if typ != LinkVxlan && vxlanSet {
		bad("%s: vni, remote and uplink are vxlan parameters, not %s", where, typ)
	}
	ends := func(allowed ...string) {
		for j, k := range kinds {
			okKind := false
			for _, a := range allowed {
				okKind = okKind || k == a
			}
			if !okKind {
				bad("%s: endpoint %s is a %s node; a %s link joins %s nodes", where, l.Endpoints[j], k, typ, strings.Join(allowed, ", "))
			}
		}
	}
	switch typ {
	case LinkMemif:
		ends(KindVPP, KindCNF, KindTestpmd)
		// One master per pair: the named master must be one of the ends, and
		// two VPP ends would both want it.
		if l.Master != "" && l.Master != l.Endpoints[0].Node && l.Master != l.Endpoints[1].Node {
			bad("%s: master %q is not an end of the link (one of the two ends is the master)", where, l.Master)
		}
		if l.Master == "" && kinds[0] == KindVPP && kinds[1] == KindVPP {
			bad("%s: two vpp ends: say which one is the memif master (master: NODE)", where)
		}
		if l.Mode != "" && l.Mode != "ethernet" && l.Mode != "ip" {
			bad("%s: mode %q: want ethernet or ip", where, l.Mode)
		}
		if len(l.Secret) > 24 {
			bad("%s: secret longer than 24 bytes", where)
		}
		if l.RingSize != 0 && (l.RingSize < 2 || l.RingSize > 1<<14 || l.RingSize&(l.RingSize-1) != 0) {
			bad("%s: ring-size %d: want a power of two in 2..16384", where, l.RingSize)
		}
		if l.BufferSize != 0 && (l.BufferSize%8 != 0 || l.BufferSize > 1<<16) {
			bad("%s: buffer-size %d: want a multiple of 8 up to 65536", where, l.BufferSize)
		}
		if l.Queues > 255 {
			bad("%s: queues %d: want 1..255", where, l.Queues)
		}
		for j, k := range kinds {
			if k == KindCNF {
				memifsOf[l.Endpoints[j].Node]++
			}
		}
		if l.MTU != 0 && l.BufferSize != 0 && l.MTU > l.BufferSize*16 {
			bad("%s: mtu %d does not fit 16 chained buffers of %d bytes", where, l.MTU, l.BufferSize)
		}
	case LinkVhostUser:
		ends(KindVPP, KindTestpmd)
		if (kinds[0] == KindVPP) == (kinds[1] == KindVPP) {
			bad("%s: a vhost-user link joins one vpp node and one testpmd node", where)
		}
		// One server per socket.
		if l.Server != "" && l.Server != l.Endpoints[0].Node && l.Server != l.Endpoints[1].Node {
			bad("%s: server %q is not an end of the link (one of the two ends is the server)", where, l.Server)
		}
	case LinkVeth:
		ends(KindLinux, KindCNF, KindTestpmd, KindEtcd, KindVPP)
	case LinkVxlan:
		ends(KindVPP)
		if l.VNI == 0 || l.VNI > 1<<24-1 {
			bad("%s: vni %d: want 1..16777215", where, l.VNI)
		}
		switch {
		case len(l.Endpoints) == 1 && l.Remote == "":
			bad("%s: remote: a one-ended vxlan link needs the far VTEP's address", where)
		case len(l.Endpoints) == 2 && l.Remote != "":
			bad("%s: remote: a two-ended vxlan link takes each end's remote from the other's uplink", where)
		case len(l.Endpoints) == 2 && l.Uplink != "":
			bad("%s: uplink: a two-ended vxlan link uses each node's own uplink (its one veth end with an ipv4)", where)
		}
		if l.Remote != "" {
			if a, err := netip.ParseAddr(l.Remote); err != nil || !a.Is4() {
				bad("%s: remote %q: want an IPv4 address", where, l.Remote)
			}
		}
	}
	return errs
}

// validateVPPJoins checks a vpp node's xconnect pairs and bridges name its own
// link interfaces, each at most once.
func (t *Topology) validateVPPJoins(used map[string]endpointUse) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, n := range t.Nodes() {
		if n.Kind != KindVPP {
			continue
		}
		joined := map[string]string{}
		join := func(iface, by string) {
			if _, ok := used[n.Name+":"+iface]; !ok {
				bad("node %s: %s: no link ends on %s:%s", n.Name, by, n.Name, iface)
				return
			}
			if prev, dup := joined[iface]; dup {
				bad("node %s: interface %s is in both %s and %s", n.Name, iface, prev, by)
				return
			}
			joined[iface] = by
		}
		for i, pair := range n.VPP.XConnect {
			by := fmt.Sprintf("vpp.xconnect[%d]", i)
			if len(pair) != 2 {
				bad("node %s: %s: want a pair of interfaces, got %d", n.Name, by, len(pair))
				continue
			}
			if pair[0] == pair[1] {
				bad("node %s: %s: interface %s cross-connected to itself", n.Name, by, pair[0])
				continue
			}
			join(pair[0], by)
			join(pair[1], by)
		}
		names := make([]string, 0, len(n.VPP.Bridges))
		for b := range n.VPP.Bridges {
			names = append(names, b)
		}
		sort.Strings(names)
		for _, b := range names {
			by := "vpp.bridges." + b
			if !ifName.MatchString(b) {
				bad("node %s: %s: bridge name must be A-Z, a-z, 0-9, '_', '.', '-'", n.Name, by)
			}
			if len(n.VPP.Bridges[b]) < 2 {
				bad("node %s: %s: a bridge needs two interfaces or more", n.Name, by)
			}
			for _, iface := range n.VPP.Bridges[b] {
				join(iface, by)
			}
		}
		// MTU agreement: joined interfaces forward each other's frames.
		mtus := map[string]uint32{}
		for i := range t.Topology.Links {
			l := &t.Topology.Links[i]
			for _, e := range l.Endpoints {
				if e.Node == n.Name {
					mtus[e.Interface] = l.MTU
				}
			}
		}
		groups := map[string][]string{}
		for iface, by := range joined {
			groups[by] = append(groups[by], iface)
		}
		for _, by := range sortedKeys(groups) {
			var first string
			ifs := groups[by]
			sort.Strings(ifs)
			for _, iface := range ifs {
				if first == "" {
					first = iface
					continue
				}
				if a, b := effMTU(mtus[first]), effMTU(mtus[iface]); a != b {
					bad("node %s: %s joins %s (mtu %d) and %s (mtu %d): MTUs must agree", n.Name, by, first, a, iface, b)
				}
			}
		}
	}
	return errs
}

// validateSockets checks that no two vhost-user links would share a socket
// with two servers: every link gets a socket of its own, so this only catches
// a vpp node listed as the server of a link it is not on (checked above) and a
// testpmd node on two vhost-user links (one virtio-user port per node here).
func (t *Topology) validateSockets() []error {
	var errs []error
	seen := map[string]int{}
	for i := range t.Topology.Links {
		l := &t.Topology.Links[i]
		if l.LinkType() != LinkVhostUser {
			continue
		}
		for _, e := range l.Endpoints {
			if n, ok := t.Node(e.Node); ok && n.Kind == KindTestpmd {
				if prev, dup := seen[e.Node]; dup {
					errs = append(errs, fmt.Errorf("node %s: a testpmd node has one vhost-user port; links %d and %d both end on it", e.Node, prev+1, i+1))
				} else {
					seen[e.Node] = i
				}
			}
		}
	}
	return errs
}

func effMTU(m uint32) uint32 {
	if m == 0 {
		return 1500
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var macRe = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)

func validMAC(s string) bool { return macRe.MatchString(s) }

// ValidationError lists every problem of a file.
type ValidationError struct{ Problems []error }

func (v *ValidationError) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d problem(s):", len(v.Problems))
	for _, p := range v.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is/As look at each problem.
func (v *ValidationError) Unwrap() []error { return v.Problems }

func joinLines(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Problems: errs}
}

// errNotYet marks a feature the file accepts that this build cannot run yet.
var errNotYet = errors.New("not yet supported")
