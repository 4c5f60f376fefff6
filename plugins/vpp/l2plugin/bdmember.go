package l2plugin

import (
	"context"
	"fmt"
	"strings"

	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"

	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

const bdMemberInfix = "/interface/"

// BDMemberKey returns the derived key of one bridge-domain member.
func BDMemberKey(bd, iface string) string { return BDMemberPrefix + bd + bdMemberInfix + iface }

// ParseBDMemberKey splits a member key into bridge domain and interface.
func ParseBDMemberKey(key string) (bd, iface string, ok bool) {
	rest, ok := strings.CutPrefix(key, BDMemberPrefix)
	if !ok {
		return "", "", false
	}
	bd, iface, ok = strings.Cut(rest, bdMemberInfix)
	return bd, iface, ok && bd != "" && iface != ""
}

// BDMemberDescriptor returns the descriptor of bridge-domain members: each
// waits for its interface, then is put into the bridge domain.
func (p *Plugin) BDMemberDescriptor() *kvscheduler.Descriptor[*l2model.BridgeDomain_Interface, struct{}] {
	return &kvscheduler.Descriptor[*l2model.BridgeDomain_Interface, struct{}]{
		Name:      BDMemberDescriptor,
		KeyPrefix: BDMemberPrefix,
		Validate: func(key string, v *l2model.BridgeDomain_Interface) error {
			if _, iface, ok := ParseBDMemberKey(key); !ok || iface != v.GetName() {
				return fmt.Errorf("%s: malformed bridge-domain member key for interface %q", key, v.GetName())
			}
			return nil
		},
		Create: func(ctx context.Context, key string, v *l2model.BridgeDomain_Interface) (struct{}, error) {
			return struct{}{}, p.setMember(ctx, key, v, true)
		},
		Delete: func(ctx context.Context, key string, v *l2model.BridgeDomain_Interface, _ struct{}) error {
			return p.setMember(ctx, key, v, false)
		},
		Retrieve:      p.retrieveMembers,
		RetrieveAfter: []string{InterfaceDescriptor, BDDescriptor},
		Dependencies: func(_ string, v *l2model.BridgeDomain_Interface) []kvscheduler.Dependency {
			return []kvscheduler.Dependency{{Label: "interface", Key: InterfacePrefix + v.GetName()}}
		},
	}
}

func (p *Plugin) setMember(ctx context.Context, key string, v *l2model.BridgeDomain_Interface, enable bool) error {
	bd, _, ok := ParseBDMemberKey(key)
	if !ok {
		return fmt.Errorf("%s: malformed bridge-domain member key", key)
	}
	id, ok := p.BDID(bd)
	if !ok {
		return fmt.Errorf("%s: bridge domain %q has no bd_id", key, bd)
	}
	idx, err := p.indices(key, v.GetName())
	if err != nil {
		return err
	}
	port := l2.L2_API_PORT_TYPE_NORMAL
	if v.GetBridgedVirtualInterface() {
		port = l2.L2_API_PORT_TYPE_BVI
	}
	if _, err := p.l2.SwInterfaceSetL2Bridge(ctx, &l2.SwInterfaceSetL2Bridge{
		RxSwIfIndex: idx[0], BdID: id, PortType: port, Shg: uint8(v.GetSplitHorizonGroup()), Enable: enable,
	}); err != nil {
		return fmt.Errorf("%s: sw_interface_set_l2_bridge bd_id %d sw_if_index %d enable=%v: %w", key, id, idx[0], enable, err)
	}
	return nil
}

func (p *Plugin) retrieveMembers(ctx context.Context, _ []kvscheduler.KV[*l2model.BridgeDomain_Interface]) ([]kvscheduler.Retrieved[*l2model.BridgeDomain_Interface, struct{}], error) {
	bds, err := p.dumpBDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []kvscheduler.Retrieved[*l2model.BridgeDomain_Interface, struct{}]
	for _, b := range bds {
		if b.BdTag == "" {
			continue
		}
		for _, m := range b.SwIfDetails {
			n, ok := p.ifx.NameOf(uint32(m.SwIfIndex))
			if !ok {
				continue
			}
			out = append(out, kvscheduler.Retrieved[*l2model.BridgeDomain_Interface, struct{}]{
				Key: BDMemberKey(b.BdTag, n),
				Value: &l2model.BridgeDomain_Interface{
					Name: n, SplitHorizonGroup: uint32(m.Shg),
					BridgedVirtualInterface: b.BviSwIfIndex == m.SwIfIndex && b.BviSwIfIndex != ^interface_types.InterfaceIndex(0),
				},
			})
		}
	}
	return out, nil
}
