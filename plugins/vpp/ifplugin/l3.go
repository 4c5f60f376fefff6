package ifplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/l2"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// This file holds what interfaces share with L3: sub-interfaces (dot1q),
// the VRF an interface is in, rx modes, and unnumbered interfaces.

// VrfTableKey is the key of a VRF table value (l3plugin's model); an
// interface with a non-zero vrf depends on it.
func VrfTableKey(id uint32, ipv6 bool) string {
	proto := "IPV4"
	if ipv6 {
		proto = "IPV6"
	}
	return fmt.Sprintf("config/vpp/v2/vrf-table/id/%d/protocol/%s", id, proto)
}

// vrfFamilies tells which tables an interface's vrf applies to: IPv4 when
// it has an IPv4 address or none at all, IPv6 when it has an IPv6 address.
func vrfFamilies(v *ifmodel.Interface) (v4, v6 bool) {
	if len(v.GetIpAddresses()) == 0 {
		return true, false
	}
	for _, a := range v.GetIpAddresses() {
		if pf, err := netip.ParsePrefix(a); err == nil {
			if pf.Addr().Is4() {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	return v4, v6
}

// l3Dependencies: a sub-interface needs its parent, an interface in a VRF
// needs the VRF table(s).
func (p *Plugin) l3Dependencies(_ string, v *ifmodel.Interface) []kvscheduler.Dependency {
	var out []kvscheduler.Dependency
	if v.GetType() == ifmodel.Interface_SUB_INTERFACE && v.GetSub().GetParentName() != "" {
		out = append(out, kvscheduler.Dependency{Label: "parent-interface", Key: Key(v.GetSub().GetParentName())})
	}
	if v.GetVrf() != 0 {
		v4, v6 := vrfFamilies(v)
		if v4 {
			out = append(out, kvscheduler.Dependency{Label: "vrf-table-ipv4", Key: VrfTableKey(v.GetVrf(), false)})
		}
		if v6 {
			out = append(out, kvscheduler.Dependency{Label: "vrf-table-ipv6", Key: VrfTableKey(v.GetVrf(), true)})
		}
	}
	return out
}

// tableRequests put the interface into its VRF; they must reach VPP before
// any address (VPP refuses set_table on an interface with an address, -114).
func tableRequests(idx interface_types.InterfaceIndex, v *ifmodel.Interface) []api.Message {
	if v.GetVrf() == 0 {
		return nil
	}
	v4, v6 := vrfFamilies(v)
	var out []api.Message
	if v4 {
		out = append(out, &interfaces.SwInterfaceSetTable{SwIfIndex: idx, VrfID: v.GetVrf()})
	}
	if v6 {
		out = append(out, &interfaces.SwInterfaceSetTable{SwIfIndex: idx, IsIPv6: true, VrfID: v.GetVrf()})
	}
	return out
}

// rxModeRequests set the rx modes; a mode with default_mode set applies to
// every queue.
func rxModeRequests(idx interface_types.InterfaceIndex, modes []*ifmodel.Interface_RxMode) []api.Message {
	out := make([]api.Message, 0, len(modes))
	for _, m := range modes {
		out = append(out, &interfaces.SwInterfaceSetRxMode{
			SwIfIndex: idx, QueueIDValid: !m.GetDefaultMode(), QueueID: m.GetQueue(),
			Mode: interface_types.RxMode(m.GetMode()),
		})
	}
	return out
}

// rxModesReset returns the queues of old that new no longer names to VPP's
// default mode.
func rxModesReset(idx interface_types.InterfaceIndex, old, new []*ifmodel.Interface_RxMode) []api.Message {
	named := func(m *ifmodel.Interface_RxMode) string {
		if m.GetDefaultMode() {
			return "all"
		}
		return fmt.Sprint(m.GetQueue())
	}
	keep := map[string]bool{}
	for _, m := range new {
		keep[named(m)] = true
	}
	var out []api.Message
	for _, m := range old {
		if !keep[named(m)] {
			out = append(out, &interfaces.SwInterfaceSetRxMode{
				SwIfIndex: idx, QueueIDValid: !m.GetDefaultMode(), QueueID: m.GetQueue(), Mode: interface_types.RX_MODE_API_DEFAULT,
			})
		}
	}
	return out
}

// tagRewriteRequest is the VLAN tag rewrite of a sub-interface, nil when
// disabled. VPP's vtr_op numbers are Ligato's TagRewriteOptions.
func tagRewriteRequest(idx interface_types.InterfaceIndex, s *ifmodel.SubInterface) api.Message {
	if s.GetTagRwOption() == ifmodel.SubInterface_DISABLED {
		return nil
	}
	var dot1q uint32
	if s.GetPushDot1Q() {
		dot1q = 1
	}
	return &l2.L2InterfaceVlanTagRewrite{SwIfIndex: idx, VtrOp: uint32(s.GetTagRwOption()), PushDot1q: dot1q, Tag1: s.GetTag1(), Tag2: s.GetTag2()}
}

func validateRxModes(modes []*ifmodel.Interface_RxMode) error {
	seen := map[string]bool{}
	for _, m := range modes {
		if m.GetMode() == ifmodel.Interface_RxMode_UNKNOWN {
			return fmt.Errorf("rx_modes: queue %d has mode UNKNOWN; use POLLING, INTERRUPT, ADAPTIVE or DEFAULT", m.GetQueue())
		}
		k := fmt.Sprint(m.GetQueue())
		if m.GetDefaultMode() {
			k = "default"
		}
		if seen[k] {
			return fmt.Errorf("rx_modes: queue %s listed twice", k)
		}
		seen[k] = true
	}
	return nil
}

func validateSub(v *ifmodel.Interface) error {
	s := v.GetSub()
	switch {
	case s == nil || s.GetParentName() == "":
		return fmt.Errorf("sub-interface needs sub.parent_name")
	case v.GetPhysAddress() != "":
		return fmt.Errorf("phys_address on a sub-interface is not supported (it uses its parent's)")
	case s.GetParentName() == v.GetName():
		return fmt.Errorf("sub-interface %q is its own parent", v.GetName())
	case s.GetSubId() == 0 || s.GetSubId() > 4094:
		return fmt.Errorf("sub.sub_id %d is not a VLAN id (1-4094)", s.GetSubId())
	case s.GetTag1() > 4095 || s.GetTag2() > 4095:
		return fmt.Errorf("sub.tag1/tag2 %d/%d exceed 4095", s.GetTag1(), s.GetTag2())
	}
	switch s.GetTagRwOption() {
	case ifmodel.SubInterface_PUSH1, ifmodel.SubInterface_TRANSLATE11, ifmodel.SubInterface_TRANSLATE21:
		if s.GetTag1() == 0 {
			return fmt.Errorf("sub.tag_rw_option %s needs tag1", s.GetTagRwOption())
		}
	case ifmodel.SubInterface_PUSH2, ifmodel.SubInterface_TRANSLATE12, ifmodel.SubInterface_TRANSLATE22:
		if s.GetTag1() == 0 || s.GetTag2() == 0 {
			return fmt.Errorf("sub.tag_rw_option %s needs tag1 and tag2", s.GetTagRwOption())
		}
	}
	return nil
}

// --- unnumbered: a derived value per interface that borrows an address ---

// UnnumberedPrefix is the prefix of derived unnumbered keys (Ligato's):
// vpp/interface/unnumbered/<interface>.
const UnnumberedPrefix = "vpp/interface/unnumbered/"

// UnnumberedDescriptorName names the unnumbered descriptor.
const UnnumberedDescriptorName = "vpp-unnumbered-interface"

// UnnumberedKey returns the derived key of an interface's unnumbered setting.
func UnnumberedKey(iface string) string { return UnnumberedPrefix + iface }

func (p *Plugin) derived(_ string, v *ifmodel.Interface) []kvscheduler.KeyValue {
	var out []kvscheduler.KeyValue
	if u := v.GetUnnumbered(); u != nil {
		out = append(out, kvscheduler.KeyValue{Key: UnnumberedKey(v.GetName()), Value: &ifmodel.Interface_Unnumbered{InterfaceWithIp: u.GetInterfaceWithIp()}})
	}
	if len(v.GetRxModes()) > 0 {
		out = append(out, kvscheduler.KeyValue{Key: RxModesKey(v.GetName()), Value: &ifmodel.Interface{Name: v.GetName(), RxModes: v.GetRxModes()}})
	}
	return out
}

// --- rx modes: a derived value, so that VPP refusing a queue's mode (a
// memif has no rx queue until its peer connects: -9) fails and retries
// only the modes, not the interface ---

// RxModesPrefix is the prefix of derived rx-mode keys:
// vpp/interface/rx-modes/<interface>.
const RxModesPrefix = "vpp/interface/rx-modes/"

// RxModesDescriptorName names the rx-modes descriptor.
const RxModesDescriptorName = "vpp-interface-rx-modes"

// RxModesKey returns the derived key of an interface's rx modes.
func RxModesKey(iface string) string { return RxModesPrefix + iface }

// RxModesDescriptor returns the descriptor of an interface's rx modes (the
// value is an Interface holding only name and rx_modes). A change sets the
// new modes and returns dropped queues to VPP's default; deleting returns
// them all.
func (p *Plugin) RxModesDescriptor() *kvscheduler.Descriptor[*ifmodel.Interface, struct{}] {
	return &kvscheduler.Descriptor[*ifmodel.Interface, struct{}]{
		Name:      RxModesDescriptorName,
		KeyPrefix: RxModesPrefix,
		Validate: func(key string, v *ifmodel.Interface) error {
			if key != RxModesKey(v.GetName()) {
				return fmt.Errorf("%s: rx modes of interface %q under another key", key, v.GetName())
			}
			return validateRxModes(v.GetRxModes())
		},
		Create: func(ctx context.Context, key string, v *ifmodel.Interface) (struct{}, error) {
			p.wantRxModes(v.GetName(), v.GetRxModes())
			return struct{}{}, p.setRxModes(ctx, key, v.GetName(), nil, v.GetRxModes())
		},
		Update: func(ctx context.Context, key string, old, new *ifmodel.Interface, _ struct{}) (struct{}, error) {
			p.wantRxModes(new.GetName(), new.GetRxModes())
			return struct{}{}, p.setRxModes(ctx, key, new.GetName(), old.GetRxModes(), new.GetRxModes())
		},
		Delete: func(ctx context.Context, key string, v *ifmodel.Interface, _ struct{}) error {
			p.wantRxModes(v.GetName(), nil)
			return p.setRxModes(ctx, key, v.GetName(), v.GetRxModes(), nil)
		},
		Retrieve:      p.retrieveRxModes,
		RetrieveAfter: []string{DescriptorName},
	}
}

// retrieveRxModes reads VPP's rx placement of each interface with desired
// rx modes and reports the modes it shows: a queue's mode when the queue
// exists with that mode, a mode for all queues when every queue has it (or
// there is no queue yet: a memif's queues come with its peer, in polling
// mode, and reapplyRxModes sets the modes again at its link-up). A queue VPP
// does not have is reported missing, so it is set (and fails, -9, and is
// retried) until the queue appears. DEFAULT matches whatever VPP shows.
func (p *Plugin) retrieveRxModes(ctx context.Context, desired []kvscheduler.KV[*ifmodel.Interface]) ([]kvscheduler.Retrieved[*ifmodel.Interface, struct{}], error) {
	var out []kvscheduler.Retrieved[*ifmodel.Interface, struct{}]
	for _, kv := range desired {
		idx, ok := p.SwIfIndex(kv.Value.GetName())
		if !ok {
			continue
		}
		d, err := p.ifs.SwInterfaceRxPlacementDump(ctx, &interfaces.SwInterfaceRxPlacementDump{SwIfIndex: interface_types.InterfaceIndex(idx)})
		if err != nil {
			return nil, fmt.Errorf("sw_interface_rx_placement_dump %d: %w", idx, err)
		}
		queues, err := recv("sw_interface_rx_placement_dump", d.Recv)
		if err != nil {
			return nil, err
		}
		modes := make(map[uint32]interface_types.RxMode, len(queues))
		for _, q := range queues {
			modes[q.QueueID] = q.Mode
		}
		got := &ifmodel.Interface{Name: kv.Value.GetName()}
		for _, m := range kv.Value.GetRxModes() {
			want := interface_types.RxMode(m.GetMode())
			same := func(have interface_types.RxMode) bool {
				return want == interface_types.RX_MODE_API_DEFAULT || have == want
			}
			keep := true
			if m.GetDefaultMode() {
				for _, have := range modes {
					keep = keep && same(have)
				}
			} else {
				have, exists := modes[m.GetQueue()]
				keep = exists && same(have)
			}
			if keep {
				got.RxModes = append(got.RxModes, m)
			}
		}
		out = append(out, kvscheduler.Retrieved[*ifmodel.Interface, struct{}]{Key: kv.Key, Value: got})
	}
	return out, nil
}

func (p *Plugin) setRxModes(ctx context.Context, key, name string, old, new []*ifmodel.Interface_RxMode) error {
	idx, ok := p.SwIfIndex(name)
	if !ok {
		return fmt.Errorf("%s: interface %q has no sw_if_index", key, name)
	}
	i := interface_types.InterfaceIndex(idx)
	for _, r := range rxModesReset(i, old, new) {
		// -9 for a queue VPP does not have (a memif without its peer):
		// there is nothing to return to the default.
		if _, err := p.ifs.SwInterfaceSetRxMode(ctx, r.(*interfaces.SwInterfaceSetRxMode)); err != nil && !errors.Is(err, api.UNIMPLEMENTED) {
			return fmt.Errorf("%s: sw_interface_set_rx_mode default: %w", key, err)
		}
	}
	if err := p.pipeline(ctx, rxModeRequests(i, new)); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// wantRxModes records the rx modes configured for an interface (nil: none).
func (p *Plugin) wantRxModes(name string, modes []*ifmodel.Interface_RxMode) {
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	if len(modes) == 0 {
		delete(p.rxWant, name)
		return
	}
	p.rxWant[name] = modes
}

// hasRxWant reports whether rx modes are configured for an interface.
func (p *Plugin) hasRxWant(name string) bool {
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	return len(p.rxWant[name]) > 0
}

// reapplyRxModes sets an interface's configured rx modes again after its
// link came up. FD.io VPP creates a memif's receive queues when the peer
// connects, in its default mode (polling): modes set before that (the
// usual case: the interface is configured before its CNF starts) do not
// stick, and every polling memif on VPP's main thread slows down the rest
// (link-ups got 10× slower with 750 memifs polled; test/vpprun/linkupprobe).
// VPP 25.10 does not keep it across a reconnect either: it is checked at
// every link-up report.
func (p *Plugin) reapplyRxModes(name string, idx uint32) {
	p.rxMu.Lock()
	modes := p.rxWant[name]
	p.rxMu.Unlock()
	if len(modes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Read first: only a queue in another mode is written (an agent
	// restart finds the modes in place and writes nothing).
	d, err := p.ifs.SwInterfaceRxPlacementDump(ctx, &interfaces.SwInterfaceRxPlacementDump{SwIfIndex: interface_types.InterfaceIndex(idx)})
	if err != nil {
		p.log.Warn("rx placement not read at link up", "interface", name, "error", err)
		return
	}
	queues, err := recv("sw_interface_rx_placement_dump", d.Recv)
	if err != nil || len(queues) == 0 {
		return
	}
	differs := false
	for _, m := range modes {
		want := interface_types.RxMode(m.GetMode())
		for _, q := range queues {
			if (m.GetDefaultMode() || q.QueueID == m.GetQueue()) && want != interface_types.RX_MODE_API_DEFAULT && q.Mode != want {
				differs = true
			}
		}
	}
	if !differs {
		return
	}
	if err := p.pipeline(ctx, rxModeRequests(interface_types.InterfaceIndex(idx), modes)); err != nil {
		p.log.Warn("rx modes not set at link up", "interface", name, "error", err)
		return
	}
	p.log.Debug("rx modes set at link up", "interface", name)
}

// UnnumberedDescriptor returns the descriptor of unnumbered settings: each
// waits for the interface it borrows the address from.
func (p *Plugin) UnnumberedDescriptor() *kvscheduler.Descriptor[*ifmodel.Interface_Unnumbered, struct{}] {
	return &kvscheduler.Descriptor[*ifmodel.Interface_Unnumbered, struct{}]{
		Name:      UnnumberedDescriptorName,
		KeyPrefix: UnnumberedPrefix,
		Validate: func(key string, v *ifmodel.Interface_Unnumbered) error {
			name := strings.TrimPrefix(key, UnnumberedPrefix)
			switch {
			case v.GetInterfaceWithIp() == "":
				return fmt.Errorf("%s: unnumbered.interface_with_ip is empty", key)
			case v.GetInterfaceWithIp() == name:
				return fmt.Errorf("%s: interface %q cannot borrow its own address", key, name)
			}
			return nil
		},
		Dependencies: func(_ string, v *ifmodel.Interface_Unnumbered) []kvscheduler.Dependency {
			return []kvscheduler.Dependency{{Label: "interface-with-ip", Key: Key(v.GetInterfaceWithIp())}}
		},
		Create: func(ctx context.Context, key string, v *ifmodel.Interface_Unnumbered) (struct{}, error) {
			return struct{}{}, p.setUnnumbered(ctx, key, v, true)
		},
		Delete: func(ctx context.Context, key string, v *ifmodel.Interface_Unnumbered, _ struct{}) error {
			return p.setUnnumbered(ctx, key, v, false)
		},
		Retrieve:      p.retrieveUnnumbered,
		RetrieveAfter: []string{DescriptorName},
	}
}

func (p *Plugin) setUnnumbered(ctx context.Context, key string, v *ifmodel.Interface_Unnumbered, add bool) error {
	name := strings.TrimPrefix(key, UnnumberedPrefix)
	idx, ok := p.SwIfIndex(name)
	if !ok {
		return fmt.Errorf("%s: interface %q has no sw_if_index", key, name)
	}
	ipIdx, ok := p.SwIfIndex(v.GetInterfaceWithIp())
	if !ok {
		return fmt.Errorf("%s: interface_with_ip %q has no sw_if_index", key, v.GetInterfaceWithIp())
	}
	if add {
		// As in Ligato, an unnumbered interface is in the VRF of the
		// interface it borrows from (VPP refuses otherwise, -74).
		if err := p.inheritTables(ctx, key, name, interface_types.InterfaceIndex(idx), interface_types.InterfaceIndex(ipIdx)); err != nil {
			return err
		}
	}
	if _, err := p.ifs.SwInterfaceSetUnnumbered(ctx, &interfaces.SwInterfaceSetUnnumbered{
		SwIfIndex: interface_types.InterfaceIndex(ipIdx), UnnumberedSwIfIndex: interface_types.InterfaceIndex(idx), IsAdd: add,
	}); err != nil {
		return fmt.Errorf("%s: sw_interface_set_unnumbered %d borrows from %d add=%v: %w", key, idx, ipIdx, add, err)
	}
	if !add {
		if err := p.restoreTables(ctx, key, name, interface_types.InterfaceIndex(idx)); err != nil {
			return err
		}
	}
	p.log.Info("unnumbered set", "key", key, "interface_with_ip", v.GetInterfaceWithIp(), "add", add)
	return nil
}

// inheritTables puts an unnumbered interface into the tables (IPv4 and
// IPv6) of the interface it borrows from, remembering the ones it had.
func (p *Plugin) inheritTables(ctx context.Context, key, name string, idx, ipIdx interface_types.InterfaceIndex) error {
	var had [2]uint32
	changed := false
	for i, v6 := range []bool{false, true} {
		own, err := p.ifs.SwInterfaceGetTable(ctx, &interfaces.SwInterfaceGetTable{SwIfIndex: idx, IsIPv6: v6})
		if err != nil {
			return fmt.Errorf("%s: sw_interface_get_table %d: %w", key, idx, err)
		}
		src, err := p.ifs.SwInterfaceGetTable(ctx, &interfaces.SwInterfaceGetTable{SwIfIndex: ipIdx, IsIPv6: v6})
		if err != nil {
			return fmt.Errorf("%s: sw_interface_get_table %d: %w", key, ipIdx, err)
		}
		had[i] = own.VrfID
		if own.VrfID == src.VrfID {
			continue
		}
		if _, err := p.ifs.SwInterfaceSetTable(ctx, &interfaces.SwInterfaceSetTable{SwIfIndex: idx, IsIPv6: v6, VrfID: src.VrfID}); err != nil {
			return fmt.Errorf("%s: sw_interface_set_table %d to the borrowed interface's table %d: %w", key, idx, src.VrfID, err)
		}
		changed = true
	}
	if changed {
		p.mu.Lock()
		p.inherited[name] = had
		p.mu.Unlock()
	}
	return nil
}

// restoreTables gives an interface that stops being unnumbered back the
// tables inheritTables changed.
func (p *Plugin) restoreTables(ctx context.Context, key, name string, idx interface_types.InterfaceIndex) error {
	p.mu.Lock()
	had, ok := p.inherited[name]
	delete(p.inherited, name)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	for i, v6 := range []bool{false, true} {
		if _, err := p.ifs.SwInterfaceSetTable(ctx, &interfaces.SwInterfaceSetTable{SwIfIndex: idx, IsIPv6: v6, VrfID: had[i]}); err != nil {
			return fmt.Errorf("%s: sw_interface_set_table %d back to %d: %w", key, idx, had[i], err)
		}
	}
	return nil
}

func (p *Plugin) retrieveUnnumbered(ctx context.Context, _ []kvscheduler.KV[*ifmodel.Interface_Unnumbered]) ([]kvscheduler.Retrieved[*ifmodel.Interface_Unnumbered, struct{}], error) {
	d, err := p.ipc.IPUnnumberedDump(ctx, &ip.IPUnnumberedDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		return nil, fmt.Errorf("ip_unnumbered_dump: %w", err)
	}
	all, err := recv("ip_unnumbered_dump", d.Recv)
	if err != nil {
		return nil, err
	}
	var out []kvscheduler.Retrieved[*ifmodel.Interface_Unnumbered, struct{}]
	for _, u := range all {
		name, ok1 := p.NameOf(uint32(u.SwIfIndex))
		ipName, ok2 := p.NameOf(uint32(u.IPSwIfIndex))
		if !ok1 || !ok2 {
			continue // VPP keeps entries of deleted address sources
		}
		out = append(out, kvscheduler.Retrieved[*ifmodel.Interface_Unnumbered, struct{}]{
			Key: UnnumberedKey(name), Value: &ifmodel.Interface_Unnumbered{InterfaceWithIp: ipName},
		})
	}
	return out, nil
}

// readVrfs asks VPP the table of each agent interface whose desired value
// has a VRF (the others are assumed in table 0: one call less per
// interface on a resync).
func (p *Plugin) readVrfs(ctx context.Context, jobs []addrJob, want map[string]*ifmodel.Interface) error {
	for _, j := range jobs {
		w := want[j.v.GetName()]
		if w.GetVrf() == 0 || w.GetUnnumbered() != nil {
			// An unnumbered interface's vrf is its address source's.
			j.v.Vrf = w.GetVrf()
			continue
		}
		v4, _ := vrfFamilies(w)
		r, err := p.ifs.SwInterfaceGetTable(ctx, &interfaces.SwInterfaceGetTable{SwIfIndex: j.idx, IsIPv6: !v4})
		if err != nil {
			return fmt.Errorf("sw_interface_get_table sw_if_index %d: %w", j.idx, err)
		}
		j.v.Vrf = r.VrfID
	}
	return nil
}
