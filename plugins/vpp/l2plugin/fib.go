package l2plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"

	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// FIBPrefix is the key prefix of static L2 FIB entries:
// config/vpp/l2/v2/fib/<bridge-domain>/mac/<mac>.
const FIBPrefix = "config/vpp/l2/v2/fib/"

// FIBDescriptorName names the L2 FIB descriptor.
const FIBDescriptorName = "vpp-l2-fib"

// FIBKey returns the key of a FIB entry.
func FIBKey(bd, mac string) string { return FIBPrefix + bd + "/mac/" + mac }

// FIBDescriptor returns the descriptor of static L2 FIB entries. A FORWARD
// entry waits for its interface to be in the bridge domain (VPP refuses it
// otherwise); a DROP entry only for the bridge domain. Every change
// re-creates the entry.
func (p *Plugin) FIBDescriptor() *kvscheduler.Descriptor[*l2model.FIBEntry, struct{}] {
	return &kvscheduler.Descriptor[*l2model.FIBEntry, struct{}]{
		Name:       FIBDescriptorName,
		KeyPrefix:  FIBPrefix,
		Validate:   validateFIB,
		Equivalent: func(_ string, a, b *l2model.FIBEntry) bool { return normFIB(a) == normFIB(b) },
		Create: func(ctx context.Context, key string, v *l2model.FIBEntry) (struct{}, error) {
			return struct{}{}, p.addDelFIB(ctx, key, v, true)
		},
		Delete: func(ctx context.Context, key string, v *l2model.FIBEntry, _ struct{}) error {
			return p.addDelFIB(ctx, key, v, false)
		},
		Dependencies:  fibDeps,
		Retrieve:      p.retrieveFIB,
		RetrieveAfter: []string{InterfaceDescriptor, BDDescriptor},
	}
}

func fibDeps(_ string, v *l2model.FIBEntry) []kvscheduler.Dependency {
	out := []kvscheduler.Dependency{{Label: "bridge-domain", Key: BridgeDomainKey(v.GetBridgeDomain())}}
	if v.GetAction() == l2model.FIBEntry_FORWARD {
		out = append(out, kvscheduler.Dependency{Label: "bridge-domain-interface", Key: BDMemberKey(v.GetBridgeDomain(), v.GetOutgoingInterface())})
	}
	return out
}

func validateFIB(key string, v *l2model.FIBEntry) error {
	switch {
	case v.GetBridgeDomain() == "":
		return fmt.Errorf("%s: bridge_domain is empty", key)
	case v.GetAction() == l2model.FIBEntry_FORWARD && v.GetOutgoingInterface() == "":
		return fmt.Errorf("%s: a FORWARD entry needs outgoing_interface", key)
	case v.GetAction() == l2model.FIBEntry_DROP && v.GetBridgedVirtualInterface():
		return fmt.Errorf("%s: a DROP entry cannot be a bridged_virtual_interface MAC", key)
	case v.GetAction() != l2model.FIBEntry_FORWARD && v.GetAction() != l2model.FIBEntry_DROP:
		return fmt.Errorf("%s: action %d is unknown", key, v.GetAction())
	}
	if _, err := ethernet_types.ParseMacAddress(v.GetPhysAddress()); err != nil {
		return fmt.Errorf("%s: phys_address %q: %w", key, v.GetPhysAddress(), err)
	}
	return nil
}

type fibNorm struct {
	bd, mac, iface      string
	drop, static, bviOn bool
}

func normFIB(v *l2model.FIBEntry) fibNorm {
	n := fibNorm{bd: v.GetBridgeDomain(), mac: strings.ToLower(v.GetPhysAddress()), static: v.GetStaticConfig(),
		bviOn: v.GetBridgedVirtualInterface(), drop: v.GetAction() == l2model.FIBEntry_DROP}
	if !n.drop {
		n.iface = v.GetOutgoingInterface()
	}
	return n
}

func (p *Plugin) addDelFIB(ctx context.Context, key string, v *l2model.FIBEntry, add bool) error {
	id, ok := p.BDID(v.GetBridgeDomain())
	if !ok {
		return fmt.Errorf("%s: bridge domain %q has no bd_id", key, v.GetBridgeDomain())
	}
	mac, err := ethernet_types.ParseMacAddress(v.GetPhysAddress())
	if err != nil {
		return fmt.Errorf("%s: phys_address: %w", key, err)
	}
	req := &l2.L2fibAddDel{Mac: mac, BdID: id, IsAdd: add, SwIfIndex: ^interface_types.InterfaceIndex(0)}
	if add {
		req.StaticMac, req.BviMac = v.GetStaticConfig(), v.GetBridgedVirtualInterface()
		if v.GetAction() == l2model.FIBEntry_DROP {
			req.FilterMac = true
		} else {
			idx, err := p.indices(key, v.GetOutgoingInterface())
			if err != nil {
				return err
			}
			req.SwIfIndex = idx[0]
		}
	}
	if _, err := p.l2.L2fibAddDel(ctx, req); err != nil {
		return fmt.Errorf("%s: l2fib_add_del add=%v %s bd_id %d: %w", key, add, v.GetPhysAddress(), id, err)
	}
	p.log.Info("l2 fib entry set", "key", key, "bd_id", id, "add", add)
	return nil
}

// retrieveFIB reports the FIB entries of the agent's (tagged) bridge
// domains that a desired value names, and the static or filter entries
// nobody desires (stale ones of the agent, removed by resync). Learned
// entries and VPP's own BVI entries are left alone.
func (p *Plugin) retrieveFIB(ctx context.Context, desired []kvscheduler.KV[*l2model.FIBEntry]) ([]kvscheduler.Retrieved[*l2model.FIBEntry, struct{}], error) {
	type id struct{ bd, mac string }
	want := make(map[id]*kvscheduler.KV[*l2model.FIBEntry], len(desired))
	for i := range desired {
		n := normFIB(desired[i].Value)
		want[id{n.bd, n.mac}] = &desired[i]
	}
	d, err := p.l2.L2FibTableDump(ctx, &l2.L2FibTableDump{BdID: ^uint32(0)})
	if err != nil {
		return nil, fmt.Errorf("l2_fib_table_dump: %w", err)
	}
	var out []kvscheduler.Retrieved[*l2model.FIBEntry, struct{}]
	for {
		e, err := d.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("l2_fib_table_dump: %w", err)
		}
		p.mu.Lock()
		bd := p.bdByID[e.BdID]
		p.mu.Unlock()
		if bd == "" {
			continue
		}
		mac := strings.ToLower(e.Mac.String())
		w, isDesired := want[id{bd, mac}]
		if !isDesired && (!(e.StaticMac || e.FilterMac) || e.BviMac) {
			continue
		}
		v := &l2model.FIBEntry{PhysAddress: mac, BridgeDomain: bd, StaticConfig: e.StaticMac, BridgedVirtualInterface: e.BviMac}
		if e.FilterMac {
			v.Action = l2model.FIBEntry_DROP
		} else if n, ok := p.ifx.NameOf(uint32(e.SwIfIndex)); ok {
			v.OutgoingInterface = n
		}
		key := FIBKey(bd, mac)
		if isDesired {
			key = w.Key
			v.PhysAddress = w.Value.GetPhysAddress()
		}
		out = append(out, kvscheduler.Retrieved[*l2model.FIBEntry, struct{}]{Key: key, Value: v})
	}
}
