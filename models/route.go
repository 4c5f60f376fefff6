package models

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vppmesh/vppmesh/models/vpp/l3"
)

// RouteName is the name part of a route's key in Ligato v3's layout:
// [if/<outgoing_interface>/]vrf/<vrf_id>/dst/<network>/<len>/[gw/<next_hop>].
// The destination is the network address of dst_network ("10.0.0.1/24"
// gives dst/10.0.0.0/24). It is empty when dst_network does not parse.
func RouteName(r *l3.Route) string {
	pf, err := netip.ParsePrefix(r.GetDstNetwork())
	if err != nil {
		return ""
	}
	var b strings.Builder
	if r.GetOutgoingInterface() != "" {
		b.WriteString("if/" + r.GetOutgoingInterface() + "/")
	}
	fmt.Fprintf(&b, "vrf/%d/dst/%s/", r.GetVrfId(), pf.Masked())
	if r.GetNextHopAddr() != "" {
		b.WriteString("gw/" + r.GetNextHopAddr())
	}
	return strings.TrimSuffix(b.String(), "/")
}

// routeKey is a route key's name part, parsed.
type routeKey struct {
	iface, gw string
	vrf       uint32
	dst       netip.Prefix
}

// parseRouteName accepts every spelling Ligato users put: with or without
// "if/<name>/", with or without a trailing "/" or "gw/<addr>".
func parseRouteName(name string) (routeKey, error) {
	var k routeKey
	rest := name
	if after, ok := strings.CutPrefix(rest, "if/"); ok {
		i := strings.Index(after, "/vrf/")
		if i <= 0 {
			return k, fmt.Errorf("route key %q: if/<interface>/ must be followed by vrf/<id>/", name)
		}
		k.iface, rest = after[:i], after[i+1:]
	}
	after, ok := strings.CutPrefix(rest, "vrf/")
	if !ok {
		return k, fmt.Errorf("route key %q does not have the form [if/<interface>/]vrf/<id>/dst/<ip>/<len>[/gw/<ip>]", name)
	}
	vrf, after, _ := strings.Cut(after, "/")
	n, err := strconv.ParseUint(vrf, 10, 32)
	if err != nil {
		return k, fmt.Errorf("route key %q: vrf %q is not a number", name, vrf)
	}
	k.vrf = uint32(n)
	after, ok = strings.CutPrefix(after, "dst/")
	if !ok {
		return k, fmt.Errorf("route key %q: vrf/<id>/ must be followed by dst/<ip>/<len>", name)
	}
	dst, gw, hasGW := strings.Cut(after, "/gw/")
	if !hasGW {
		dst = strings.TrimSuffix(dst, "/")
		dst, gw, hasGW = strings.Cut(dst, "/gw") // "…/24/gw" with nothing after
	}
	if k.dst, err = netip.ParsePrefix(dst); err != nil {
		return k, fmt.Errorf("route key %q: dst %q: %w", name, dst, err)
	}
	if hasGW && gw != "" {
		if _, err := netip.ParseAddr(gw); err != nil {
			return k, fmt.Errorf("route key %q: gw %q: %w", name, gw, err)
		}
		k.gw = gw
	}
	return k, nil
}

// sameHop reports whether two next hops are the same; empty and the
// unspecified address (Ligato once wrote gw/0.0.0.0) are alike.
func sameHop(a, b string) bool {
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	unset := func(s string, p netip.Addr, err error) bool { return s == "" || (err == nil && p.IsUnspecified()) }
	if unset(a, pa, errA) || unset(b, pb, errB) {
		return unset(a, pa, errA) && unset(b, pb, errB)
	}
	return errA == nil && errB == nil && pa == pb
}

// matchRouteKey checks a route against the key it was put under. As in
// Ligato, the key's VRF fills a zero vrf_id; any other disagreement is an
// error naming the field.
func matchRouteKey(name string, r *l3.Route) error {
	k, err := parseRouteName(name)
	if err != nil {
		return err
	}
	if r.GetVrfId() == 0 {
		r.VrfId = k.vrf
	}
	dst, err := netip.ParsePrefix(r.GetDstNetwork())
	switch {
	case err != nil:
		return fmt.Errorf("dst_network %q: %w", r.GetDstNetwork(), err)
	case dst.Masked() != k.dst.Masked():
		return fmt.Errorf("dst_network %s is not the key's dst %s", dst.Masked(), k.dst.Masked())
	case r.GetVrfId() != k.vrf:
		return fmt.Errorf("vrf_id %d is not the key's vrf %d", r.GetVrfId(), k.vrf)
	case k.iface != "" && k.iface != r.GetOutgoingInterface():
		return fmt.Errorf("outgoing_interface %q is not the key's if/%s", r.GetOutgoingInterface(), k.iface)
	case !sameHop(k.gw, r.GetNextHopAddr()):
		return fmt.Errorf("next_hop_addr %q is not the key's gw %q", r.GetNextHopAddr(), k.gw)
	}
	return nil
}
