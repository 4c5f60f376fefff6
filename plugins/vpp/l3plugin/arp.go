package l3plugin

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_neighbor"
	"go.fd.io/govpp/binapi/ip_types"

	l3model "github.com/vppmesh/vppmesh/models/vpp/l3"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// ArpDescriptor returns the descriptor of ARP (IPv4) and ND (IPv6) entries.
// A changed MAC or static flag re-creates the entry.
func (p *Plugin) ArpDescriptor() *kvscheduler.Descriptor[*l3model.ARPEntry, struct{}] {
	return &kvscheduler.Descriptor[*l3model.ARPEntry, struct{}]{
		Name:       ArpDescriptor,
		KeyPrefix:  ArpPrefix,
		Validate:   validateArp,
		Equivalent: func(_ string, a, b *l3model.ARPEntry) bool { return normArp(a) == normArp(b) },
		Create: func(ctx context.Context, key string, v *l3model.ARPEntry) (struct{}, error) {
			return struct{}{}, p.addDelArp(ctx, key, v, true)
		},
		Delete: func(ctx context.Context, key string, v *l3model.ARPEntry, _ struct{}) error {
			return p.addDelArp(ctx, key, v, false)
		},
		Dependencies: func(_ string, v *l3model.ARPEntry) []kvscheduler.Dependency {
			return []kvscheduler.Dependency{{Label: "interface", Key: InterfacePrefix + v.GetInterface()}}
		},
		Retrieve:      p.retrieveArps,
		RetrieveAfter: []string{InterfaceDescriptor},
	}
}

func validateArp(key string, v *l3model.ARPEntry) error {
	switch {
	case v.GetInterface() == "":
		return fmt.Errorf("%s: interface is empty", key)
	case v.GetPhysAddress() == "":
		return fmt.Errorf("%s: phys_address is empty", key)
	}
	if _, err := netip.ParseAddr(v.GetIpAddress()); err != nil {
		return fmt.Errorf("%s: ip_address %q: %w", key, v.GetIpAddress(), err)
	}
	if _, err := ethernet_types.ParseMacAddress(v.GetPhysAddress()); err != nil {
		return fmt.Errorf("%s: phys_address %q: %w", key, v.GetPhysAddress(), err)
	}
	return nil
}

type arpNorm struct {
	iface  string
	ip     netip.Addr
	mac    string
	static bool
}

func normArp(v *l3model.ARPEntry) arpNorm {
	n := arpNorm{iface: v.GetInterface(), mac: strings.ToLower(v.GetPhysAddress()), static: v.GetStatic()}
	n.ip, _ = netip.ParseAddr(v.GetIpAddress())
	return n
}

func (p *Plugin) addDelArp(ctx context.Context, key string, v *l3model.ARPEntry, add bool) error {
	idx, ok := p.ifx.SwIfIndex(v.GetInterface())
	if !ok {
		return fmt.Errorf("%s: interface %q has no sw_if_index", key, v.GetInterface())
	}
	addr, err := ip_types.ParseAddress(v.GetIpAddress())
	if err != nil {
		return fmt.Errorf("%s: ip_address %q: %w", key, v.GetIpAddress(), err)
	}
	mac, err := ethernet_types.ParseMacAddress(v.GetPhysAddress())
	if err != nil {
		return fmt.Errorf("%s: phys_address %q: %w", key, v.GetPhysAddress(), err)
	}
	n := ip_neighbor.IPNeighbor{SwIfIndex: interface_types.InterfaceIndex(idx), MacAddress: mac, IPAddress: addr}
	if v.GetStatic() {
		n.Flags = ip_neighbor.IP_API_NEIGHBOR_FLAG_STATIC
	}
	if _, err := p.neigh.IPNeighborAddDel(ctx, &ip_neighbor.IPNeighborAddDel{IsAdd: add, Neighbor: n}); err != nil {
		return fmt.Errorf("%s: ip_neighbor_add_del add=%v %s on sw_if_index %d: %w", key, add, v.GetIpAddress(), idx, err)
	}
	p.log.Info("ip neighbor set", "key", key, "add", add)
	return nil
}

// retrieveArps reports VPP's neighbors on known interfaces: static ones
// (what an agent adds) always, dynamic ones only where a desired value
// names them (VPP learns dynamic entries by itself; resync must not
// delete those).
func (p *Plugin) retrieveArps(ctx context.Context, desired []kvscheduler.KV[*l3model.ARPEntry]) ([]kvscheduler.Retrieved[*l3model.ARPEntry, struct{}], error) {
	type id struct {
		iface string
		ip    netip.Addr
	}
	want := make(map[id]string, len(desired))
	for _, kv := range desired {
		n := normArp(kv.Value)
		want[id{n.iface, n.ip}] = kv.Key
	}
	var out []kvscheduler.Retrieved[*l3model.ARPEntry, struct{}]
	for _, af := range []ip_types.AddressFamily{ip_types.ADDRESS_IP4, ip_types.ADDRESS_IP6} {
		d, err := p.neigh.IPNeighborDump(ctx, &ip_neighbor.IPNeighborDump{SwIfIndex: ^interface_types.InterfaceIndex(0), Af: af})
		if err != nil {
			return nil, fmt.Errorf("ip_neighbor_dump: %w", err)
		}
		all, err := recv("ip_neighbor_dump", d.Recv)
		if err != nil {
			return nil, err
		}
		for _, e := range all {
			name, ok := p.ifx.NameOf(uint32(e.Neighbor.SwIfIndex))
			if !ok {
				continue
			}
			a, err := netip.ParseAddr(e.Neighbor.IPAddress.String())
			if err != nil {
				continue
			}
			static := e.Neighbor.Flags&ip_neighbor.IP_API_NEIGHBOR_FLAG_STATIC != 0
			key, desiredKey := want[id{name, a}]
			if !desiredKey {
				if !static {
					continue
				}
				key = ArpPrefix + name + "/" + a.String()
			}
			out = append(out, kvscheduler.Retrieved[*l3model.ARPEntry, struct{}]{Key: key, Value: &l3model.ARPEntry{
				Interface: name, IpAddress: a.String(), PhysAddress: e.Neighbor.MacAddress.String(), Static: static,
			}})
		}
	}
	return out, nil
}
