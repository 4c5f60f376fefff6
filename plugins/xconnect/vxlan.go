package xconnect

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// maxVNI is the largest VXLAN network identifier (24 bits).
const maxVNI = 1<<24 - 1

// validateVxlanEnd checks a vxlan end: an IPv4 unicast remote, a VNI in
// 1..16777215 and an uplink interface name.
func validateVxlanEnd(x *vppmeshv1.VxlanEnd) error {
	switch {
	case x.GetVni() == 0:
		return fmt.Errorf("vxlan.vni is missing (1..%d)", maxVNI)
	case x.GetVni() > maxVNI:
		return fmt.Errorf("vxlan.vni %d is out of range (1..%d)", x.GetVni(), maxVNI)
	case x.GetUplink() == "":
		return fmt.Errorf("vxlan.uplink is empty; name the interface that carries the tunnel")
	case len(x.GetUplink()) > maxIfName:
		return fmt.Errorf("vxlan.uplink is longer than %d bytes", maxIfName)
	case x.GetRemote() == "":
		return fmt.Errorf("vxlan.remote is empty; give the other node's underlay IPv4 address")
	}
	r, err := netip.ParseAddr(x.GetRemote())
	if err != nil {
		return fmt.Errorf("vxlan.remote %q is not an IP address", x.GetRemote())
	}
	if !r.Is4() || r.IsUnspecified() || r.IsMulticast() || r.IsLoopback() || r == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("vxlan.remote %s is not an IPv4 unicast address", r)
	}
	return nil
}

// tunnel is what identifies a VXLAN tunnel on one node.
type tunnel struct {
	uplink, remote string
	vni            uint32
}

func tunnelOf(x *vppmeshv1.VxlanEnd) tunnel {
	remote := x.GetRemote()
	if a, err := netip.ParseAddr(remote); err == nil {
		remote = a.String()
	}
	return tunnel{uplink: x.GetUplink(), remote: remote, vni: x.GetVni()}
}

func tunnelsOf(v *vppmeshv1.CrossConnect) []tunnel {
	var out []tunnel
	for _, ep := range []*vppmeshv1.Endpoint{v.GetA(), v.GetB()} {
		if x := ep.GetVxlan(); x != nil {
			out = append(out, tunnelOf(x))
		}
	}
	return out
}

// tunnelOwners maps applied tunnels to the cross-connect holding them.
type tunnelOwners struct {
	mu    sync.Mutex
	owner map[tunnel]string
	held  map[string][]tunnel
}

func newTunnelOwners() *tunnelOwners {
	return &tunnelOwners{owner: map[tunnel]string{}, held: map[string][]tunnel{}}
}

// claim records v's tunnels, replacing what v held before, unless another
// cross-connect holds one of them: then nothing changes and the error names it.
func (o *tunnelOwners) claim(key string, v *vppmeshv1.CrossConnect) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	ts := tunnelsOf(v)
	var clashes []string
	for _, t := range ts {
		if other, ok := o.owner[t]; ok && other != v.GetName() {
			clashes = append(clashes, fmt.Sprintf("vni %d to %s over %s is used by cross-connect %q", t.vni, t.remote, t.uplink, other))
		}
	}
	if len(clashes) > 0 {
		sort.Strings(clashes)
		return fmt.Errorf("%s: %s", key, strings.Join(clashes, "; "))
	}
	o.releaseLocked(v.GetName())
	for _, t := range ts {
		o.owner[t] = v.GetName()
	}
	if len(ts) > 0 {
		o.held[v.GetName()] = ts
	}
	return nil
}

func (o *tunnelOwners) release(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.releaseLocked(name)
}

func (o *tunnelOwners) releaseLocked(name string) {
	for _, t := range o.held[name] {
		if o.owner[t] == name {
			delete(o.owner, t)
		}
	}
	delete(o.held, name)
}
