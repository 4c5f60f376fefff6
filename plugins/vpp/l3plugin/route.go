package l3plugin

import (
	"context"
	"fmt"
	"net/netip"

	"go.fd.io/govpp/binapi/fib_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"

	l3model "github.com/vppmesh/vppmesh/models/vpp/l3"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// RouteDescriptor returns the descriptor of static routes. Every change
// re-creates the route (delete, then add): VPP has no in-place update.
func (p *Plugin) RouteDescriptor() *kvscheduler.Descriptor[*l3model.Route, struct{}] {
	return &kvscheduler.Descriptor[*l3model.Route, struct{}]{
		Name:       RouteDescriptor,
		KeyPrefix:  RoutePrefix,
		Validate:   validateRoute,
		Equivalent: func(_ string, a, b *l3model.Route) bool { return routeEqual(a, b) },
		Create: func(ctx context.Context, key string, v *l3model.Route) (struct{}, error) {
			return struct{}{}, p.addDelRoute(ctx, key, v, true)
		},
		Delete: func(ctx context.Context, key string, v *l3model.Route, _ struct{}) error {
			return p.addDelRoute(ctx, key, v, false)
		},
		Dependencies:  routeDeps,
		Retrieve:      p.retrieveRoutes,
		RetrieveAfter: []string{InterfaceDescriptor, VrfDescriptor},
	}
}

func routeDeps(_ string, r *l3model.Route) []kvscheduler.Dependency {
	var out []kvscheduler.Dependency
	v6 := isV6(r)
	if r.GetOutgoingInterface() != "" {
		out = append(out, kvscheduler.Dependency{Label: "outgoing-interface", Key: InterfacePrefix + r.GetOutgoingInterface()})
	}
	if r.GetVrfId() != 0 {
		out = append(out, kvscheduler.Dependency{Label: "vrf-table", Key: VrfKey(r.GetVrfId(), v6)})
	}
	if r.GetType() == l3model.Route_INTER_VRF && r.GetViaVrfId() != 0 {
		out = append(out, kvscheduler.Dependency{Label: "via-vrf-table", Key: VrfKey(r.GetViaVrfId(), v6)})
	}
	return out
}

func isV6(r *l3model.Route) bool {
	pf, err := netip.ParsePrefix(r.GetDstNetwork())
	return err == nil && pf.Addr().Is6()
}

func validateRoute(key string, r *l3model.Route) error {
	dst, err := netip.ParsePrefix(r.GetDstNetwork())
	if err != nil {
		return fmt.Errorf("%s: dst_network %q is not an address with prefix length: %w", key, r.GetDstNetwork(), err)
	}
	if nh := r.GetNextHopAddr(); nh != "" {
		a, err := netip.ParseAddr(nh)
		if err != nil {
			return fmt.Errorf("%s: next_hop_addr %q: %w", key, nh, err)
		}
		if a.Is4() != dst.Addr().Is4() {
			return fmt.Errorf("%s: next_hop_addr %s and dst_network %s are of different IP versions", key, nh, dst)
		}
	}
	switch {
	case r.GetWeight() > 255:
		return fmt.Errorf("%s: weight %d exceeds 255", key, r.GetWeight())
	case r.GetPreference() > 255:
		return fmt.Errorf("%s: preference %d exceeds 255", key, r.GetPreference())
	}
	switch r.GetType() {
	case l3model.Route_INTRA_VRF:
		if r.GetOutgoingInterface() == "" && r.GetNextHopAddr() == "" {
			return fmt.Errorf("%s: an INTRA_VRF route needs next_hop_addr or outgoing_interface", key)
		}
	case l3model.Route_INTER_VRF:
		if r.GetOutgoingInterface() != "" {
			return fmt.Errorf("%s: an INTER_VRF route takes no outgoing_interface (it looks up via_vrf_id)", key)
		}
	case l3model.Route_DROP:
		if r.GetOutgoingInterface() != "" || r.GetNextHopAddr() != "" {
			return fmt.Errorf("%s: a DROP route takes no next_hop_addr or outgoing_interface", key)
		}
	default:
		return fmt.Errorf("%s: route type %d is unknown", key, r.GetType())
	}
	return nil
}

// routeEqual compares routes as VPP sees them: networks masked, addresses
// canonical, weight 0 as 1.
func routeEqual(a, b *l3model.Route) bool {
	na, nb := normRoute(a), normRoute(b)
	return na == nb
}

type routeNorm struct {
	typ          l3model.Route_RouteType
	vrf, via     uint32
	dst          netip.Prefix
	nh           netip.Addr
	iface        string
	weight, pref uint32
}

func normRoute(r *l3model.Route) routeNorm {
	n := routeNorm{typ: r.GetType(), vrf: r.GetVrfId(), iface: r.GetOutgoingInterface(), weight: r.GetWeight(), pref: r.GetPreference()}
	if pf, err := netip.ParsePrefix(r.GetDstNetwork()); err == nil {
		n.dst = pf.Masked()
	}
	if a, err := netip.ParseAddr(r.GetNextHopAddr()); err == nil && !a.IsUnspecified() {
		n.nh = a
	}
	if n.weight == 0 {
		n.weight = 1
	}
	if r.GetType() == l3model.Route_INTER_VRF {
		n.via = r.GetViaVrfId()
	}
	return n
}

// path builds the FIB path of a route.
func (p *Plugin) path(key string, r *l3model.Route) (fib_types.FibPath, error) {
	path := fib_types.FibPath{SwIfIndex: ^uint32(0), Weight: uint8(r.GetWeight()), Preference: uint8(r.GetPreference()),
		Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4}
	if path.Weight == 0 {
		path.Weight = 1
	}
	if isV6(r) {
		path.Proto = fib_types.FIB_API_PATH_NH_PROTO_IP6
	}
	if r.GetType() == l3model.Route_DROP {
		path.Type = fib_types.FIB_API_PATH_TYPE_DROP
		return path, nil
	}
	if nh := r.GetNextHopAddr(); nh != "" {
		a, err := ip_types.ParseAddress(nh)
		if err != nil {
			return path, fmt.Errorf("%s: next_hop_addr %q: %w", key, nh, err)
		}
		path.Nh.Address = a.Un
	}
	switch r.GetType() {
	case l3model.Route_INTER_VRF:
		path.TableID = r.GetViaVrfId()
	default:
		path.TableID = r.GetVrfId()
		if n := r.GetOutgoingInterface(); n != "" {
			idx, ok := p.ifx.SwIfIndex(n)
			if !ok {
				return path, fmt.Errorf("%s: outgoing_interface %q has no sw_if_index", key, n)
			}
			path.SwIfIndex = idx
		}
	}
	return path, nil
}

func (p *Plugin) addDelRoute(ctx context.Context, key string, r *l3model.Route, add bool) error {
	dst, err := ip_types.ParsePrefix(r.GetDstNetwork())
	if err != nil {
		return fmt.Errorf("%s: dst_network %q: %w", key, r.GetDstNetwork(), err)
	}
	path, err := p.path(key, r)
	if err != nil {
		return err
	}
	// Multipath: two routes to one prefix (two keys, two next hops) are two
	// paths, and deleting one leaves the other.
	if _, err := p.ip.IPRouteAddDel(ctx, &ip.IPRouteAddDel{IsAdd: add, IsMultipath: true, Route: ip.IPRoute{
		TableID: r.GetVrfId(), Prefix: dst, NPaths: 1, Paths: []fib_types.FibPath{path},
	}}); err != nil {
		return fmt.Errorf("%s: ip_route_add_del add=%v %s table %d: %w", key, add, r.GetDstNetwork(), r.GetVrfId(), err)
	}
	p.log.Info("route set", "key", key, "add", add)
	return nil
}

type tableRef struct {
	id   uint32
	ipv6 bool
}

// retrieveRoutes dumps the tables of the desired routes and reports each
// desired route VPP has (same prefix, a path to the same next hop and
// interface). VPP's own routes (connected, special) and routes nobody
// desires are not reported: routes carry no owner tag, so the agent
// never deletes a route it cannot prove is its own.
func (p *Plugin) retrieveRoutes(ctx context.Context, desired []kvscheduler.KV[*l3model.Route]) ([]kvscheduler.Retrieved[*l3model.Route, struct{}], error) {
	dumps := map[tableRef][]*ip.IPRouteDetails{}
	for _, kv := range desired {
		t := tableRef{kv.Value.GetVrfId(), isV6(kv.Value)}
		if _, done := dumps[t]; done {
			continue
		}
		d, err := p.ip.IPRouteDump(ctx, &ip.IPRouteDump{Table: ip.IPTable{TableID: t.id, IsIP6: t.ipv6}})
		if err != nil {
			return nil, fmt.Errorf("ip_route_dump table %d: %w", t.id, err)
		}
		if dumps[t], err = recv("ip_route_dump", d.Recv); err != nil {
			return nil, err
		}
	}
	var out []kvscheduler.Retrieved[*l3model.Route, struct{}]
	for _, kv := range desired {
		want, err := p.path(kv.Key, kv.Value)
		if err != nil {
			continue // its interface is gone: not in VPP either
		}
		dst, err := netip.ParsePrefix(kv.Value.GetDstNetwork())
		if err != nil {
			continue
		}
		for _, d := range dumps[tableRef{kv.Value.GetVrfId(), isV6(kv.Value)}] {
			pf, err := netip.ParsePrefix(d.Route.Prefix.String())
			if err != nil || pf.Masked() != dst.Masked() {
				continue
			}
			if got, ok := matchPath(d.Route.Paths, want); ok {
				v := &l3model.Route{
					Type: kv.Value.GetType(), VrfId: kv.Value.GetVrfId(), DstNetwork: kv.Value.GetDstNetwork(),
					NextHopAddr: kv.Value.GetNextHopAddr(), OutgoingInterface: kv.Value.GetOutgoingInterface(),
					Weight: uint32(got.Weight), Preference: uint32(got.Preference), ViaVrfId: kv.Value.GetViaVrfId(),
				}
				if kv.Value.GetWeight() == 0 && got.Weight == 1 {
					v.Weight = 0
				}
				out = append(out, kvscheduler.Retrieved[*l3model.Route, struct{}]{Key: kv.Key, Value: v})
				break
			}
		}
	}
	return out, nil
}

// matchPath finds the path of want in a route's paths: same type, same
// next hop, same interface (VPP reports table 0 for attached paths).
func matchPath(paths []fib_types.FibPath, want fib_types.FibPath) (fib_types.FibPath, bool) {
	for _, got := range paths {
		if got.Type != want.Type {
			continue
		}
		if want.Type == fib_types.FIB_API_PATH_TYPE_DROP {
			return got, true
		}
		if got.SwIfIndex == want.SwIfIndex && got.Nh.Address == want.Nh.Address &&
			(want.SwIfIndex != ^uint32(0) || got.TableID == want.TableID) {
			return got, true
		}
	}
	return fib_types.FibPath{}, false
}
