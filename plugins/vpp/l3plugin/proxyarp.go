package l3plugin

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go.fd.io/govpp/binapi/arp"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"

	l3model "github.com/vppmesh/vppmesh/models/vpp/l3"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Proxy ARP keys: the one global value (Ligato's) and its derived
// per-interface values vpp/proxyarp/interface/<name>.
const (
	ProxyARPKey             = "config/vpp/v2/proxyarp-global/settings"
	ProxyARPPrefix          = "config/vpp/v2/proxyarp-global/"
	ProxyARPInterfacePrefix = "vpp/proxyarp/interface/"
)

// Descriptor names of proxy ARP.
const (
	ProxyARPDescriptor          = "vpp-proxy-arp"
	ProxyARPInterfaceDescriptor = "vpp-proxy-arp-interface"
)

// ProxyARPInterfaceKey is the derived key enabling proxy ARP on iface.
func ProxyARPInterfaceKey(iface string) string { return ProxyARPInterfacePrefix + iface }

// ProxyARPDescriptor returns the descriptor of the global proxy ARP
// ranges; the interfaces are derived values waiting for their interface.
// Ranges change in place: removed ones are deleted, new ones added.
func (p *Plugin) ProxyARPDescriptor() *kvscheduler.Descriptor[*l3model.ProxyARP, struct{}] {
	return &kvscheduler.Descriptor[*l3model.ProxyARP, struct{}]{
		Name:       ProxyARPDescriptor,
		KeyPrefix:  ProxyARPPrefix,
		Validate:   validateProxyARP,
		Equivalent: func(_ string, a, b *l3model.ProxyARP) bool { return sameRanges(a, b) && sameNames(a, b) },
		Create: func(ctx context.Context, key string, v *l3model.ProxyARP) (struct{}, error) {
			return struct{}{}, p.setRanges(ctx, key, nil, v)
		},
		Update: func(ctx context.Context, key string, old, new *l3model.ProxyARP, _ struct{}) (struct{}, error) {
			return struct{}{}, p.setRanges(ctx, key, old, new)
		},
		Delete: func(ctx context.Context, key string, v *l3model.ProxyARP, _ struct{}) error {
			return p.setRanges(ctx, key, v, nil)
		},
		Dependencies: func(_ string, v *l3model.ProxyARP) []kvscheduler.Dependency {
			var out []kvscheduler.Dependency
			seen := map[uint32]bool{}
			for _, r := range v.GetRanges() {
				if id := r.GetVrfId(); id != 0 && !seen[id] {
					seen[id] = true
					out = append(out, kvscheduler.Dependency{Label: "vrf-table", Key: VrfKey(id, false)})
				}
			}
			return out
		},
		DerivedValues: func(_ string, v *l3model.ProxyARP) []kvscheduler.KeyValue {
			out := make([]kvscheduler.KeyValue, 0, len(v.GetInterfaces()))
			for _, i := range v.GetInterfaces() {
				out = append(out, kvscheduler.KeyValue{Key: ProxyARPInterfaceKey(i.GetName()), Value: &l3model.ProxyARP_Interface{Name: i.GetName()}})
			}
			return out
		},
		Retrieve:      p.retrieveProxyARP,
		RetrieveAfter: []string{VrfDescriptor},
	}
}

type arpRange struct {
	vrf    uint32
	lo, hi netip.Addr
}

func parseRange(r *l3model.ProxyARP_Range) (arpRange, error) {
	lo, err := netip.ParseAddr(r.GetFirstIpAddr())
	if err != nil || !lo.Is4() {
		return arpRange{}, fmt.Errorf("first_ip_addr %q is not an IPv4 address", r.GetFirstIpAddr())
	}
	hi, err := netip.ParseAddr(r.GetLastIpAddr())
	if err != nil || !hi.Is4() {
		return arpRange{}, fmt.Errorf("last_ip_addr %q is not an IPv4 address", r.GetLastIpAddr())
	}
	if hi.Less(lo) {
		return arpRange{}, fmt.Errorf("range %s-%s ends before it starts", lo, hi)
	}
	return arpRange{vrf: r.GetVrfId(), lo: lo, hi: hi}, nil
}

func validateProxyARP(key string, v *l3model.ProxyARP) error {
	if key != ProxyARPKey {
		return fmt.Errorf("%s: proxy ARP has one key, %s", key, ProxyARPKey)
	}
	seen := map[arpRange]bool{}
	for _, r := range v.GetRanges() {
		ar, err := parseRange(r)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if seen[ar] {
			return fmt.Errorf("%s: range %s-%s in vrf %d listed twice", key, ar.lo, ar.hi, ar.vrf)
		}
		seen[ar] = true
	}
	names := map[string]bool{}
	for _, i := range v.GetInterfaces() {
		switch {
		case i.GetName() == "":
			return fmt.Errorf("%s: interface with an empty name", key)
		case names[i.GetName()]:
			return fmt.Errorf("%s: interface %q listed twice", key, i.GetName())
		}
		names[i.GetName()] = true
	}
	return nil
}

func rangeSet(v *l3model.ProxyARP) map[arpRange]bool {
	out := map[arpRange]bool{}
	for _, r := range v.GetRanges() {
		if ar, err := parseRange(r); err == nil {
			out[ar] = true
		}
	}
	return out
}

func sameRanges(a, b *l3model.ProxyARP) bool {
	ra, rb := rangeSet(a), rangeSet(b)
	if len(ra) != len(rb) {
		return false
	}
	for r := range ra {
		if !rb[r] {
			return false
		}
	}
	return true
}

func sameNames(a, b *l3model.ProxyARP) bool {
	na, nb := make([]string, 0), make([]string, 0)
	for _, i := range a.GetInterfaces() {
		na = append(na, i.GetName())
	}
	for _, i := range b.GetInterfaces() {
		nb = append(nb, i.GetName())
	}
	sort.Strings(na)
	sort.Strings(nb)
	return strings.Join(na, "\x00") == strings.Join(nb, "\x00")
}

// setRanges takes VPP from old's ranges to new's: deletes first, then adds.
func (p *Plugin) setRanges(ctx context.Context, key string, old, new *l3model.ProxyARP) error {
	o, n := rangeSet(old), rangeSet(new)
	apply := func(r arpRange, add bool) error {
		if _, err := p.arp.ProxyArpAddDel(ctx, &arp.ProxyArpAddDel{IsAdd: add, Proxy: arp.ProxyArp{
			TableID: r.vrf, Low: ip_types.IP4Address(r.lo.As4()), Hi: ip_types.IP4Address(r.hi.As4()),
		}}); err != nil {
			return fmt.Errorf("%s: proxy_arp_add_del add=%v %s-%s table %d: %w", key, add, r.lo, r.hi, r.vrf, err)
		}
		return nil
	}
	for r := range o {
		if !n[r] {
			if err := apply(r, false); err != nil {
				return err
			}
		}
	}
	for r := range n {
		if !o[r] {
			if err := apply(r, true); err != nil {
				return err
			}
		}
	}
	p.log.Info("proxy arp ranges set", "key", key, "ranges", len(n))
	return nil
}

// retrieveProxyARP reports VPP's ranges under the one key when a value is
// desired (the interfaces are checked by their derived values); ranges
// nobody desires are an operator's and left alone.
func (p *Plugin) retrieveProxyARP(ctx context.Context, desired []kvscheduler.KV[*l3model.ProxyARP]) ([]kvscheduler.Retrieved[*l3model.ProxyARP, struct{}], error) {
	if len(desired) == 0 {
		return nil, nil
	}
	d, err := p.arp.ProxyArpDump(ctx, &arp.ProxyArpDump{})
	if err != nil {
		return nil, fmt.Errorf("proxy_arp_dump: %w", err)
	}
	all, err := recv("proxy_arp_dump", d.Recv)
	if err != nil {
		return nil, err
	}
	v := &l3model.ProxyARP{Interfaces: desired[0].Value.GetInterfaces()}
	want := rangeSet(desired[0].Value)
	for _, r := range all {
		ar := arpRange{vrf: r.Proxy.TableID, lo: netip.AddrFrom4(r.Proxy.Low), hi: netip.AddrFrom4(r.Proxy.Hi)}
		if !want[ar] {
			continue // not ours to report: an operator's range stays
		}
		v.Ranges = append(v.Ranges, &l3model.ProxyARP_Range{FirstIpAddr: ar.lo.String(), LastIpAddr: ar.hi.String(), VrfId: ar.vrf})
	}
	return []kvscheduler.Retrieved[*l3model.ProxyARP, struct{}]{{Key: desired[0].Key, Value: v}}, nil
}

// ProxyARPInterfaceDescriptor returns the descriptor enabling proxy ARP on
// one interface, once the interface exists.
func (p *Plugin) ProxyARPInterfaceDescriptor() *kvscheduler.Descriptor[*l3model.ProxyARP_Interface, struct{}] {
	return &kvscheduler.Descriptor[*l3model.ProxyARP_Interface, struct{}]{
		Name:      ProxyARPInterfaceDescriptor,
		KeyPrefix: ProxyARPInterfacePrefix,
		Validate: func(key string, v *l3model.ProxyARP_Interface) error {
			if key != ProxyARPInterfaceKey(v.GetName()) {
				return fmt.Errorf("%s: malformed proxy ARP interface key for %q", key, v.GetName())
			}
			return nil
		},
		Dependencies: func(_ string, v *l3model.ProxyARP_Interface) []kvscheduler.Dependency {
			return []kvscheduler.Dependency{{Label: "interface", Key: InterfacePrefix + v.GetName()}}
		},
		Create: func(ctx context.Context, key string, v *l3model.ProxyARP_Interface) (struct{}, error) {
			return struct{}{}, p.proxyARPOn(ctx, key, v.GetName(), true)
		},
		Delete: func(ctx context.Context, key string, v *l3model.ProxyARP_Interface, _ struct{}) error {
			return p.proxyARPOn(ctx, key, v.GetName(), false)
		},
		Retrieve:      p.retrieveProxyARPInterfaces,
		RetrieveAfter: []string{InterfaceDescriptor},
	}
}

func (p *Plugin) proxyARPOn(ctx context.Context, key, name string, on bool) error {
	idx, ok := p.ifx.SwIfIndex(name)
	if !ok {
		return fmt.Errorf("%s: interface %q has no sw_if_index", key, name)
	}
	if _, err := p.arp.ProxyArpIntfcEnableDisable(ctx, &arp.ProxyArpIntfcEnableDisable{SwIfIndex: interface_types.InterfaceIndex(idx), Enable: on}); err != nil {
		return fmt.Errorf("%s: proxy_arp_intfc_enable_disable %d enable=%v: %w", key, idx, on, err)
	}
	return nil
}

// retrieveProxyARPInterfaces reports the desired interfaces VPP has proxy
// ARP on. (VPP keeps the flag of a deleted sw_if_index in its dump; an
// index is only trusted for the interface that has it now.)
func (p *Plugin) retrieveProxyARPInterfaces(ctx context.Context, desired []kvscheduler.KV[*l3model.ProxyARP_Interface]) ([]kvscheduler.Retrieved[*l3model.ProxyARP_Interface, struct{}], error) {
	if len(desired) == 0 {
		return nil, nil
	}
	d, err := p.arp.ProxyArpIntfcDump(ctx, &arp.ProxyArpIntfcDump{})
	if err != nil {
		return nil, fmt.Errorf("proxy_arp_intfc_dump: %w", err)
	}
	all, err := recv("proxy_arp_intfc_dump", d.Recv)
	if err != nil {
		return nil, err
	}
	on := map[uint32]bool{}
	for _, i := range all {
		on[i.SwIfIndex] = true
	}
	var out []kvscheduler.Retrieved[*l3model.ProxyARP_Interface, struct{}]
	for _, kv := range desired {
		if idx, ok := p.ifx.SwIfIndex(kv.Value.GetName()); ok && on[idx] {
			out = append(out, kvscheduler.Retrieved[*l3model.ProxyARP_Interface, struct{}]{Key: kv.Key, Value: &l3model.ProxyARP_Interface{Name: kv.Value.GetName()}})
		}
	}
	return out, nil
}
