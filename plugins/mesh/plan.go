package mesh

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/mesh/naming"
)

// RenderPrefix is the scheduler key prefix of the agent's side of a
// connection (agent-relative, outside config/: it is not an etcd config key
// and gets no per-key status document of the orchestrator).
const RenderPrefix = models.MeshRenderPrefix

// RenderKey is the scheduler key of a connection's rendering.
func RenderKey(id string) string { return RenderPrefix + id }

// InterfaceNames are the VPP interfaces of a connection: the client's and
// the endpoint's.
func InterfaceNames(id string) (client, endpoint string) {
	return "mesh-" + id + "-a", "mesh-" + id + "-b"
}

// endpointIfName names the endpoint-side interface of a decision (on this
// node or on the endpoint's): a kept decision keeps its name, a new one
// takes the other of "-b" and "-c" than the current one, so that the
// scheduler creates the new path without waiting for the old interface's
// delete (render.Names). alt reports "-c".
func endpointIfName(id string, cur *vppmeshv1.ConnectionStatus, keep bool) (name string, alt bool) {
	_, b := InterfaceNames(id)
	c := "mesh-" + id + "-c"
	switch had := cur.GetEndpointLink().GetInterface(); {
	case keep && had == c, !keep && had == b:
		return c, true
	default:
		return b, false
	}
}

// Alloc key layout below models.MeshAllocPrefix.
func ipAllocKey(service string, a netip.Addr) string { return "ip/" + service + "/" + a.String() }
func memifAllocKey(endpoint string, id uint32) string {
	return "memif/" + endpoint + "/" + strconv.FormatUint(uint64(id), 10)
}
func vhostAllocKey(endpoint string, n uint32) string {
	return "vhost/" + endpoint + "/" + strconv.FormatUint(uint64(n), 10)
}

// decision is the endpoint choice of a connection and what it holds.
type decision struct {
	status *vppmeshv1.ConnectionStatus // state fields not yet set
	allocs map[string]bool             // allocation keys the decision holds
	render *vppmeshv1.CrossConnect     // nil: nothing to render here
}

// decide computes the decision for a connection this agent owns. cur is the
// current status (nil if none). It keeps a current decision while it stays
// usable, so untouched connections never change.
//
// busy lists the memif ids ("<socket>#<id>") and vhost-user sockets still
// rendered here for other connections: an id freed in etcd is not reused
// until its interface is gone from VPP (VPP and the interface descriptor
// refuse a second memif with the same socket and id).
func decide(c *cache, node string, conn *vppmeshv1.Connection, cur *vppmeshv1.ConnectionStatus, avoid map[string]bool, busy func(string) bool) (*decision, *Refusal) {
	id := conn.GetId()
	if err := ValidateConnection(conn); err != nil {
		return nil, &Refusal{Failed: true, Reason: err.Error()}
	}
	svcName := conn.GetNetworkService()
	svc := c.services[svcName]
	if svc == nil {
		if why, bad := c.badServices[svcName]; bad {
			return nil, &Refusal{Failed: true, Reason: fmt.Sprintf("network service %q is invalid: %s", svcName, why)}
		}
	}
	load := c.load()
	if cur.GetEndpoint() != "" {
		load[cur.GetEndpoint()]-- // its own connection does not count against it
	}
	eps := make([]*vppmeshv1.NetworkServiceEndpoint, 0, len(c.endpoints))
	for name, ep := range c.endpoints {
		if !c.endpointGone(name) { // its lease ran out: as good as deleted
			eps = append(eps, ep)
		}
	}
	// Remote endpoints need a VXLAN underlay on both nodes. A kept
	// decision survives its endpoint node's agent restarting; a new one
	// also needs that agent running (it renders the endpoint's side).
	me := c.nodes[node]
	unreachable, unreachableNew := map[string]string{}, map[string]string{}
	for _, e := range eps {
		n := e.GetNode()
		if n == node {
			continue
		}
		if why := c.reach(n); why != "" {
			unreachable[n], unreachableNew[n] = why, why
		} else if !c.agents[n] {
			unreachableNew[n] = "no agent serves it"
		}
	}
	in := SelectInput{Service: svc, Connection: conn, Endpoints: eps, Load: load, Node: node, Avoid: avoid,
		Remote: me != nil, NoRemote: "this node (" + node + ") has " + c.reach(node), Unreachable: unreachable}
	held := c.allocsOf(id)

	var ep *vppmeshv1.NetworkServiceEndpoint
	keep := cur != nil && cur.GetClientNode() == node && cur.GetEndpoint() != "" &&
		cur.GetNetworkService() == svcName && Keeps(in, cur.GetEndpoint())
	if keep {
		ep = c.endpoints[cur.GetEndpoint()] // in eps: not gone
	} else {
		inNew := in
		inNew.Unreachable = unreachableNew
		var ref *Refusal
		if ep, ref = Select(inNew); ref != nil {
			return nil, ref
		}
	}

	st := &vppmeshv1.ConnectionStatus{
		Id:             id,
		NetworkService: svcName,
		Endpoint:       ep.GetName(),
		EndpointNode:   ep.GetNode(),
		ClientNode:     node,
		Heals:          cur.GetHeals(),
		Counters:       proto.Clone(orEmpty(cur.GetCounters())).(*vppmeshv1.ConnectionCounters),
	}
	allocs := map[string]bool{}
	clientIf, epIf := InterfaceNames(id)

	// The endpoint's link: its own memif id on the endpoint's socket, or
	// its own vhost-user socket. A kept decision keeps its id if still held.
	epLink := &vppmeshv1.Endpoint{}
	switch {
	case ep.GetMemif() != nil:
		m := proto.Clone(ep.GetMemif()).(*ifmodel.MemifLink)
		m.Master = true
		mid, ok := uint32(0), false
		if keep && cur.GetEndpointLink().GetMemif() != nil {
			mid = cur.GetEndpointLink().GetMemif().GetId()
			ok = held[memifAllocKey(ep.GetName(), mid)] && cur.GetEndpointLink().GetMemif().GetSocketFilename() == m.GetSocketFilename()
		}
		if !ok {
			used := usedIDs(c, "memif/"+ep.GetName()+"/", id)
			for {
				if mid = NextID(used); !busy(MemifBusyKey(m.GetSocketFilename(), mid)) {
					break
				}
				used[mid] = true
			}
		}
		m.Id = mid
		allocs[memifAllocKey(ep.GetName(), mid)] = true
		epLink.Link = &vppmeshv1.Endpoint_Memif{Memif: m}
	case ep.GetVhostUser() != nil:
		v := proto.Clone(ep.GetVhostUser()).(*ifmodel.VhostUserLink)
		base := v.GetSocketFilename()
		n, ok := uint32(0), false
		if keep && cur.GetEndpointLink().GetVhostUser() != nil {
			if s, found := strings.CutPrefix(cur.GetEndpointLink().GetVhostUser().GetSocketFilename(), base+"-"); found {
				if x, err := strconv.ParseUint(s, 10, 32); err == nil {
					n, ok = uint32(x), held[vhostAllocKey(ep.GetName(), uint32(x))]
				}
			}
		}
		if !ok {
			used := usedIDs(c, "vhost/"+ep.GetName()+"/", id)
			for {
				if n = NextID(used); !busy(base + "-" + strconv.FormatUint(uint64(n), 10)) {
					break
				}
				used[n] = true
			}
		}
		v.SocketFilename = base + "-" + strconv.FormatUint(uint64(n), 10)
		allocs[vhostAllocKey(ep.GetName(), n)] = true
		epLink.Link = &vppmeshv1.Endpoint_VhostUser{VhostUser: v}
	}
	clientLink := &vppmeshv1.Endpoint{}
	switch {
	case conn.GetMemif() != nil:
		m := proto.Clone(conn.GetMemif()).(*ifmodel.MemifLink)
		m.Master = true
		clientLink.Link = &vppmeshv1.Endpoint_Memif{Memif: m}
	case conn.GetVhostUser() != nil:
		clientLink.Link = &vppmeshv1.Endpoint_VhostUser{VhostUser: proto.Clone(conn.GetVhostUser()).(*ifmodel.VhostUserLink)}
	}
	// The same link as now (whether kept or chosen again) keeps its
	// interface name: a rendering never changes for nothing. A new link
	// takes the other name, on this node or on the endpoint's (where
	// sideRender names it from the status): its node creates it without
	// first deleting the old one.
	had := cur.GetEndpointLink().GetInterface()
	same := cur.GetEndpoint() == ep.GetName() && sameLink(cur.GetEndpointLink(), linkStatus(had, epLink))
	epIf, alt := endpointIfName(id, cur, keep || same)
	st.ClientLink = linkStatus(clientIf, clientLink)
	st.EndpointLink = linkStatus(epIf, epLink)

	// IP payload: the /31 it holds, or the lowest free one.
	if svc.GetPayload() == vppmeshv1.NetworkService_IP {
		pool, err := ParsePool(svc.GetIpPool())
		if err != nil {
			return nil, &Refusal{Failed: true, Reason: err.Error()}
		}
		var client, peer netip.Addr
		if a, err := netip.ParsePrefix(cur.GetIpContext().GetClientIp()); err == nil && keep &&
			InPool(pool, a.Addr()) && held[ipAllocKey(svcName, a.Addr())] {
			client, peer = a.Addr(), a.Addr().Next()
		} else {
			used := map[netip.Addr]bool{}
			for k, owner := range c.allocs {
				if s, ok := strings.CutPrefix(k, "ip/"+svcName+"/"); ok && owner != id {
					if a, err := netip.ParseAddr(s); err == nil {
						used[a] = true
					}
				}
			}
			// A connection of the same service keeps its /31 across heals.
			for k := range held {
				if s, ok := strings.CutPrefix(k, "ip/"+svcName+"/"); ok {
					if a, err := netip.ParseAddr(s); err == nil && InPool(pool, a) {
						client, peer = a, a.Next()
					}
				}
			}
			if !client.IsValid() {
				var ok bool
				if client, peer, ok = NextPair(pool, used); !ok {
					return nil, &Refusal{Reason: fmt.Sprintf("ip_pool %s of %q is exhausted", pool, svcName)}
				}
			}
		}
		allocs[ipAllocKey(svcName, client)] = true
		st.IpContext = &vppmeshv1.IPContext{
			ClientIp:   netip.PrefixFrom(client, 31).String(),
			EndpointIp: netip.PrefixFrom(peer, 31).String(),
		}
	}

	d := &decision{status: st, allocs: allocs}
	if ep.GetNode() == node {
		d.render = &vppmeshv1.CrossConnect{Name: "mesh-" + id, A: clientLink, B: epLink}
		if alt {
			d.render.Name += naming.AltSuffix
		}
		return d, nil
	}
	// Cross-node: client link ↔ VXLAN here; the endpoint's node renders
	// VXLAN ↔ endpoint link from the status (sideRender). The VNI is the
	// connection's own: kept while held, else the lowest free one.
	far := c.nodes[ep.GetNode()]
	if me == nil || far == nil {
		return nil, &Refusal{Reason: fmt.Sprintf("endpoint %s@%s: no VXLAN underlay", ep.GetName(), ep.GetNode())}
	}
	vni := uint32(0)
	if v := cur.GetVxlan().GetVni(); v != 0 && held[vniAllocKey(v)] && !busy(VNIBusyKey(v)) {
		vni = v
	}
	if vni == 0 {
		used := usedIDs(c, "vni/", id)
		for v := uint32(VNIMin); v <= VNIMax; v++ {
			if !used[v] && !busy(VNIBusyKey(v)) {
				vni = v
				break
			}
		}
		if vni == 0 {
			return nil, &Refusal{Reason: fmt.Sprintf("no free VNI in %d..%d", VNIMin, VNIMax)}
		}
	}
	allocs[vniAllocKey(vni)] = true
	st.Vxlan = &vppmeshv1.VxlanLink{Vni: vni, ClientAddress: me.GetVxlanAddress(), EndpointAddress: far.GetVxlanAddress()}
	d.render = &vppmeshv1.CrossConnect{Name: "mesh-" + id, A: clientLink, B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Vxlan{
		Vxlan: &vppmeshv1.VxlanEnd{Remote: far.GetVxlanAddress(), Vni: vni, Uplink: me.GetVxlanUplink()}}}}
	return d, nil
}

// The VNIs cross-node connections get (the upper half of the 24-bit space:
// hand-written cross-connects should use VNIs below VNIMin).
const (
	VNIMin = 1 << 23
	VNIMax = 1<<24 - 1
)

func vniAllocKey(v uint32) string { return "vni/" + strconv.FormatUint(uint64(v), 10) }

// VNIBusyKey names a VNI in decide's busy set.
func VNIBusyKey(v uint32) string { return "vni#" + strconv.FormatUint(uint64(v), 10) }

// sideRender is this node's side of a cross-node connection decided by the
// client's node: VXLAN (a) ↔ the endpoint's link (b), from the status and
// the endpoint's registration (the status holds no memif secret). It is nil
// with why "" when the status does not name an endpoint of this node (any
// more); nil with a reason when it cannot be rendered here.
func sideRender(c *cache, node string, st *vppmeshv1.ConnectionStatus) (*vppmeshv1.CrossConnect, string) {
	ep := c.endpoints[st.GetEndpoint()]
	x := st.GetVxlan()
	if ep == nil || ep.GetNode() != node || x == nil {
		return nil, ""
	}
	me := c.nodes[node]
	if me == nil {
		return nil, "this node (" + node + ") has " + c.reach(node)
	}
	epLink := &vppmeshv1.Endpoint{}
	switch want := st.GetEndpointLink(); {
	case ep.GetMemif() != nil && want.GetMemif() != nil && want.GetMemif().GetSocketFilename() == ep.GetMemif().GetSocketFilename():
		m := proto.Clone(ep.GetMemif()).(*ifmodel.MemifLink)
		m.Master, m.Id = true, want.GetMemif().GetId()
		epLink.Link = &vppmeshv1.Endpoint_Memif{Memif: m}
	case ep.GetVhostUser() != nil && want.GetVhostUser() != nil &&
		strings.HasPrefix(want.GetVhostUser().GetSocketFilename(), ep.GetVhostUser().GetSocketFilename()+"-"):
		v := proto.Clone(ep.GetVhostUser()).(*ifmodel.VhostUserLink)
		v.SocketFilename = want.GetVhostUser().GetSocketFilename()
		epLink.Link = &vppmeshv1.Endpoint_VhostUser{VhostUser: v}
	default:
		return nil, "" // decided for a link the endpoint no longer has: the client's node decides again
	}
	name := "mesh-" + st.GetId()
	if strings.HasSuffix(st.GetEndpointLink().GetInterface(), "-c") {
		name += naming.AltSuffix // the other endpoint-side name (endpointIfName)
	}
	return &vppmeshv1.CrossConnect{Name: name, B: epLink, A: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Vxlan{
		Vxlan: &vppmeshv1.VxlanEnd{Remote: x.GetClientAddress(), Vni: x.GetVni(), Uplink: me.GetVxlanUplink()}}}}, ""
}

// MemifBusyKey names a memif id on a socket in decide's busy set.
func MemifBusyKey(socket string, id uint32) string {
	return socket + "#" + strconv.FormatUint(uint64(id), 10)
}

// linkKeys lists the links of a rendering as busy-set keys.
func linkKeys(v *vppmeshv1.CrossConnect) []string {
	var out []string
	for _, ep := range []*vppmeshv1.Endpoint{v.GetA(), v.GetB()} {
		if m := ep.GetMemif(); m != nil {
			out = append(out, MemifBusyKey(m.GetSocketFilename(), m.GetId()))
		}
		if vh := ep.GetVhostUser(); vh != nil {
			out = append(out, vh.GetSocketFilename())
		}
		if x := ep.GetVxlan(); x != nil {
			out = append(out, VNIBusyKey(x.GetVni()))
		}
	}
	return out
}

// busyCounts counts the renderings using each link.
func busyCounts(rendered map[string]*vppmeshv1.CrossConnect) map[string]int {
	out := map[string]int{}
	for _, v := range rendered {
		for _, k := range linkKeys(v) {
			out[k]++
		}
	}
	return out
}

// busyFor reports a link as busy when a rendering other than own uses it.
func busyFor(counts map[string]int, own *vppmeshv1.CrossConnect) func(string) bool {
	mine := map[string]int{}
	for _, k := range linkKeys(own) {
		mine[k]++
	}
	return func(k string) bool { return counts[k]-mine[k] > 0 }
}

// usedIDs lists the ids taken below an alloc prefix by other connections.
func usedIDs(c *cache, prefix, self string) map[uint32]bool {
	used := map[uint32]bool{}
	for k, owner := range c.allocs {
		if s, ok := strings.CutPrefix(k, prefix); ok && owner != self {
			if x, err := strconv.ParseUint(s, 10, 32); err == nil {
				used[uint32(x)] = true
			}
		}
	}
	return used
}

// linkStatus is the status view of a link: no memif secret.
func linkStatus(ifName string, l *vppmeshv1.Endpoint) *vppmeshv1.LinkStatus {
	ls := &vppmeshv1.LinkStatus{Interface: ifName}
	switch {
	case l.GetMemif() != nil:
		m := proto.Clone(l.GetMemif()).(*ifmodel.MemifLink)
		m.Secret = ""
		ls.Link = &vppmeshv1.LinkStatus_Memif{Memif: m}
	case l.GetVhostUser() != nil:
		ls.Link = &vppmeshv1.LinkStatus_VhostUser{VhostUser: proto.Clone(l.GetVhostUser()).(*ifmodel.VhostUserLink)}
	}
	return ls
}

// sameDecision reports whether two statuses name the same choice (endpoint,
// links, addresses), whatever their state.
func sameDecision(a, b *vppmeshv1.ConnectionStatus) bool {
	return a.GetEndpoint() == b.GetEndpoint() && a.GetEndpointNode() == b.GetEndpointNode() &&
		a.GetClientNode() == b.GetClientNode() && a.GetNetworkService() == b.GetNetworkService() &&
		proto.Equal(a.GetClientLink().GetMemif(), b.GetClientLink().GetMemif()) &&
		proto.Equal(a.GetClientLink().GetVhostUser(), b.GetClientLink().GetVhostUser()) &&
		proto.Equal(a.GetEndpointLink().GetMemif(), b.GetEndpointLink().GetMemif()) &&
		proto.Equal(a.GetEndpointLink().GetVhostUser(), b.GetEndpointLink().GetVhostUser()) &&
		proto.Equal(a.GetIpContext(), b.GetIpContext()) && proto.Equal(a.GetVxlan(), b.GetVxlan())
}

// sameStatus compares two statuses, ignoring last_change.
func sameStatus(a, b *vppmeshv1.ConnectionStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := cloneStatus(a), cloneStatus(b)
	x.LastChange, y.LastChange = "", ""
	return proto.Equal(x, y)
}

func orEmpty(c *vppmeshv1.ConnectionCounters) *vppmeshv1.ConnectionCounters {
	if c == nil {
		return &vppmeshv1.ConnectionCounters{}
	}
	return c
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
