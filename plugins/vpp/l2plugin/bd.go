package l2plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"google.golang.org/protobuf/proto"

	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// BDMetadata is kept per applied bridge domain.
type BDMetadata struct {
	BDID uint32 `json:"bd_id"`
}

// BridgeDomainKey returns the key of a bridge domain by name.
func BridgeDomainKey(name string) string { return BridgeDomainPrefix + name }

// BridgeDomainDescriptor returns the bridge-domain descriptor. Members are
// derived values (BDMemberDescriptor), so Equivalent ignores them here.
func (p *Plugin) BridgeDomainDescriptor() *kvscheduler.Descriptor[*l2model.BridgeDomain, *BDMetadata] {
	return &kvscheduler.Descriptor[*l2model.BridgeDomain, *BDMetadata]{
		Name:          BDDescriptor,
		KeyPrefix:     BridgeDomainPrefix,
		Validate:      validateBD,
		Equivalent:    func(_ string, a, b *l2model.BridgeDomain) bool { return proto.Equal(bdOnly(a), bdOnly(b)) },
		Create:        p.createBD,
		Delete:        p.deleteBD,
		Retrieve:      p.retrieveBDs,
		RetrieveAfter: []string{InterfaceDescriptor},
		DerivedValues: func(_ string, v *l2model.BridgeDomain) []kvscheduler.KeyValue {
			out := make([]kvscheduler.KeyValue, 0, len(v.GetInterfaces()))
			for _, m := range v.GetInterfaces() {
				out = append(out, kvscheduler.KeyValue{Key: BDMemberKey(v.GetName(), m.GetName()), Value: proto.Clone(m)})
			}
			return out
		},
	}
}

func bdOnly(v *l2model.BridgeDomain) *l2model.BridgeDomain {
	c := proto.Clone(v).(*l2model.BridgeDomain)
	c.Interfaces = nil
	return c
}

func validateBD(key string, v *l2model.BridgeDomain) error {
	switch {
	case v.GetName() == "":
		return fmt.Errorf("%s: bridge domain name is empty", key)
	case len(v.GetName()) > 63:
		return fmt.Errorf("%s: bridge domain name longer than 63 bytes (VPP's bd_tag)", key)
	case v.GetMacAge() > 255:
		return fmt.Errorf("%s: mac_age %d exceeds 255 minutes", key, v.GetMacAge())
	case len(v.GetArpTerminationTable()) > 0:
		return fmt.Errorf("%s: arp_termination_table is not supported", key)
	}
	seen := map[string]bool{}
	bvi := ""
	for _, m := range v.GetInterfaces() {
		switch {
		case m.GetName() == "":
			return fmt.Errorf("%s: member interface with empty name", key)
		case seen[m.GetName()]:
			return fmt.Errorf("%s: interface %q listed twice", key, m.GetName())
		case m.GetSplitHorizonGroup() > 255:
			return fmt.Errorf("%s: interface %q split_horizon_group %d exceeds 255", key, m.GetName(), m.GetSplitHorizonGroup())
		case m.GetBridgedVirtualInterface() && bvi != "":
			return fmt.Errorf("%s: two BVIs (%q and %q); a bridge domain has at most one", key, bvi, m.GetName())
		}
		if m.GetBridgedVirtualInterface() {
			bvi = m.GetName()
		}
		seen[m.GetName()] = true
	}
	return nil
}

// allocBD takes the lowest free bd_id (from 1; VPP reserves 0), as Ligato
// does, and reserves it for name.
func (p *Plugin) allocBD(name string) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.bdByNm[name]; ok {
		return id
	}
	id := uint32(1)
	for p.bdByID[id] != "" {
		id++
	}
	p.bdByID[id], p.bdByNm[name] = name, id
	return id
}

func (p *Plugin) freeBD(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.bdByNm[name]; ok {
		delete(p.bdByID, id)
		delete(p.bdByNm, name)
	}
}

func (p *Plugin) createBD(ctx context.Context, key string, v *l2model.BridgeDomain) (*BDMetadata, error) {
	id := p.allocBD(v.GetName())
	if _, err := p.l2.BridgeDomainAddDelV2(ctx, &l2.BridgeDomainAddDelV2{
		BdID: id, IsAdd: true,
		Flood: v.GetFlood(), UuFlood: v.GetUnknownUnicastFlood(), Forward: v.GetForward(),
		Learn: v.GetLearn(), ArpTerm: v.GetArpTermination(), MacAge: uint8(v.GetMacAge()),
		BdTag: v.GetName(),
	}); err != nil {
		p.freeBD(v.GetName())
		return nil, fmt.Errorf("%s: bridge_domain_add_del_v2 add bd_id %d: %w", key, id, err)
	}
	p.log.Info("bridge domain created", "key", key, "bd_id", id)
	return &BDMetadata{BDID: id}, nil
}

func (p *Plugin) deleteBD(ctx context.Context, key string, v *l2model.BridgeDomain, meta *BDMetadata) error {
	id, ok := p.BDID(v.GetName())
	if meta != nil {
		id, ok = meta.BDID, true
	}
	if !ok {
		return fmt.Errorf("%s: bd_id unknown", key)
	}
	if _, err := p.l2.BridgeDomainAddDelV2(ctx, &l2.BridgeDomainAddDelV2{BdID: id, IsAdd: false}); err != nil {
		return fmt.Errorf("%s: bridge_domain_add_del_v2 del bd_id %d: %w", key, id, err)
	}
	p.freeBD(v.GetName())
	return nil
}

func (p *Plugin) dumpBDs(ctx context.Context) ([]*l2.BridgeDomainDetails, error) {
	d, err := p.l2.BridgeDomainDump(ctx, &l2.BridgeDomainDump{BdID: ^uint32(0), SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		return nil, fmt.Errorf("bridge_domain_dump: %w", err)
	}
	var out []*l2.BridgeDomainDetails
	for {
		b, err := d.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bridge_domain_dump: %w", err)
		}
		out = append(out, b)
	}
}

// retrieveBDs maps tagged bridge domains back to values (and relearns the
// name ↔ bd_id map); untagged ones are not ours and are reported FromSB.
func (p *Plugin) retrieveBDs(ctx context.Context, _ []kvscheduler.KV[*l2model.BridgeDomain]) ([]kvscheduler.Retrieved[*l2model.BridgeDomain, *BDMetadata], error) {
	bds, err := p.dumpBDs(ctx)
	if err != nil {
		return nil, err
	}
	byID, byNm := map[uint32]string{}, map[string]uint32{}
	var out []kvscheduler.Retrieved[*l2model.BridgeDomain, *BDMetadata]
	for _, b := range bds {
		name, origin := b.BdTag, kvscheduler.FromNB
		if name == "" {
			name, origin = fmt.Sprintf("bd%d", b.BdID), kvscheduler.FromSB
		}
		byID[b.BdID], byNm[name] = name, b.BdID
		v := &l2model.BridgeDomain{
			Name: name, Flood: b.Flood, UnknownUnicastFlood: b.UuFlood, Forward: b.Forward,
			Learn: b.Learn, ArpTermination: b.ArpTerm, MacAge: uint32(b.MacAge),
		}
		for _, m := range b.SwIfDetails {
			n, ok := p.ifx.NameOf(uint32(m.SwIfIndex))
			if !ok {
				continue
			}
			v.Interfaces = append(v.Interfaces, &l2model.BridgeDomain_Interface{
				Name: n, SplitHorizonGroup: uint32(m.Shg),
				BridgedVirtualInterface: b.BviSwIfIndex == m.SwIfIndex && b.BviSwIfIndex != ^interface_types.InterfaceIndex(0),
			})
		}
		out = append(out, kvscheduler.Retrieved[*l2model.BridgeDomain, *BDMetadata]{
			Key: BridgeDomainKey(name), Value: v, Metadata: &BDMetadata{BDID: b.BdID}, Origin: origin,
		})
	}
	p.mu.Lock()
	p.bdByID, p.bdByNm = byID, byNm
	p.mu.Unlock()
	return out, nil
}
