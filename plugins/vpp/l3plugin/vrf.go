package l3plugin

import (
	"context"
	"fmt"
	"strings"

	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"google.golang.org/protobuf/proto"

	l3model "github.com/vppmesh/vppmesh/models/vpp/l3"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// VrfKey returns the key of a VRF table.
func VrfKey(id uint32, ipv6 bool) string {
	p := l3model.VrfTable_IPV4
	if ipv6 {
		p = l3model.VrfTable_IPV6
	}
	return fmt.Sprintf("%sid/%d/protocol/%s", VrfPrefix, id, p)
}

func vrfKeyOf(v *l3model.VrfTable) string {
	return VrfKey(v.GetId(), v.GetProtocol() == l3model.VrfTable_IPV6)
}

// VrfDescriptor returns the descriptor of VRF tables. A label change
// recreates the table (VPP keeps the first name it was given); flow-hash
// settings are updated in place.
func (p *Plugin) VrfDescriptor() *kvscheduler.Descriptor[*l3model.VrfTable, struct{}] {
	return &kvscheduler.Descriptor[*l3model.VrfTable, struct{}]{
		Name:       VrfDescriptor,
		KeyPrefix:  VrfPrefix,
		Validate:   validateVrf,
		Equivalent: func(_ string, a, b *l3model.VrfTable) bool { return proto.Equal(normVrf(a), normVrf(b)) },
		Create: func(ctx context.Context, key string, v *l3model.VrfTable) (struct{}, error) {
			return struct{}{}, p.createVrf(ctx, key, v)
		},
		Update: func(ctx context.Context, key string, _, v *l3model.VrfTable, _ struct{}) (struct{}, error) {
			return struct{}{}, p.setFlowHash(ctx, key, v, true)
		},
		UpdateWithRecreate: func(_ string, a, b *l3model.VrfTable, _ struct{}) bool {
			return a.GetLabel() != b.GetLabel()
		},
		Delete:   p.deleteVrf,
		Retrieve: p.retrieveVrfs,
	}
}

func validateVrf(key string, v *l3model.VrfTable) error {
	switch {
	case key != vrfKeyOf(v):
		return fmt.Errorf("%s: key does not match the table (want %s)", key, vrfKeyOf(v))
	case len(v.GetLabel()) > 63:
		return fmt.Errorf("%s: label is %d bytes, VPP keeps at most 63", key, len(v.GetLabel()))
	}
	return nil
}

// normVrf drops what means "VPP's default": no flow-hash settings equal
// VPP's default set (src/dst ip, src/dst port, protocol).
func normVrf(v *l3model.VrfTable) *l3model.VrfTable {
	c := proto.Clone(v).(*l3model.VrfTable)
	if fh := c.GetFlowHashSettings(); fh != nil && proto.Equal(fh, defaultFlowHash()) {
		c.FlowHashSettings = nil
	}
	return c
}

func defaultFlowHash() *l3model.VrfTable_FlowHashSettings {
	return &l3model.VrfTable_FlowHashSettings{UseSrcIp: true, UseDstIp: true, UseSrcPort: true, UseDstPort: true, UseProtocol: true}
}

func flowHashConfig(fh *l3model.VrfTable_FlowHashSettings) ip.IPFlowHashConfig {
	var c ip.IPFlowHashConfig
	for _, f := range []struct {
		on  bool
		bit ip.IPFlowHashConfig
	}{
		{fh.GetUseSrcIp(), ip.IP_API_FLOW_HASH_SRC_IP}, {fh.GetUseDstIp(), ip.IP_API_FLOW_HASH_DST_IP},
		{fh.GetUseSrcPort(), ip.IP_API_FLOW_HASH_SRC_PORT}, {fh.GetUseDstPort(), ip.IP_API_FLOW_HASH_DST_PORT},
		{fh.GetUseProtocol(), ip.IP_API_FLOW_HASH_PROTO}, {fh.GetReverse(), ip.IP_API_FLOW_HASH_REVERSE},
		{fh.GetSymmetric(), ip.IP_API_FLOW_HASH_SYMETRIC},
	} {
		if f.on {
			c |= f.bit
		}
	}
	return c
}

func (p *Plugin) createVrf(ctx context.Context, key string, v *l3model.VrfTable) error {
	ipv6 := v.GetProtocol() == l3model.VrfTable_IPV6
	if _, err := p.ip.IPTableAddDel(ctx, &ip.IPTableAddDel{IsAdd: true, Table: ip.IPTable{TableID: v.GetId(), IsIP6: ipv6, Name: v.GetLabel()}}); err != nil {
		return fmt.Errorf("%s: ip_table_add_del add %d: %w", key, v.GetId(), err)
	}
	if err := p.setFlowHash(ctx, key, v, false); err != nil {
		return err
	}
	p.log.Info("vrf table created", "key", key, "table_id", v.GetId(), "ipv6", ipv6)
	return nil
}

// setFlowHash applies the flow-hash settings. A new table has VPP's
// default already; an update without settings restores that default.
func (p *Plugin) setFlowHash(ctx context.Context, key string, v *l3model.VrfTable, update bool) error {
	fh := v.GetFlowHashSettings()
	if fh == nil {
		if !update {
			return nil
		}
		fh = defaultFlowHash()
	}
	af := ip_types.ADDRESS_IP4
	if v.GetProtocol() == l3model.VrfTable_IPV6 {
		af = ip_types.ADDRESS_IP6
	}
	if _, err := p.ip.SetIPFlowHashV2(ctx, &ip.SetIPFlowHashV2{TableID: v.GetId(), Af: af, FlowHashConfig: flowHashConfig(fh)}); err != nil {
		return fmt.Errorf("%s: set_ip_flow_hash_v2 table %d: %w", key, v.GetId(), err)
	}
	return nil
}

func (p *Plugin) deleteVrf(ctx context.Context, key string, v *l3model.VrfTable, _ struct{}) error {
	if v.GetId() == 0 {
		return nil // VPP's default table is never deleted
	}
	ipv6 := v.GetProtocol() == l3model.VrfTable_IPV6
	if _, err := p.ip.IPTableAddDel(ctx, &ip.IPTableAddDel{IsAdd: false, Table: ip.IPTable{TableID: v.GetId(), IsIP6: ipv6}}); err != nil {
		return fmt.Errorf("%s: ip_table_add_del del %d: %w", key, v.GetId(), err)
	}
	p.log.Info("vrf table deleted", "key", key, "table_id", v.GetId(), "ipv6", ipv6)
	return nil
}

// retrieveVrfs reports VPP's tables. Table 0 is VPP's own (FromSB); the
// name VPP makes up for an unlabelled table ("ipv4-VRF:10") reads back as
// no label. Flow-hash settings cannot be read back and are taken from the
// desired value.
func (p *Plugin) retrieveVrfs(ctx context.Context, desired []kvscheduler.KV[*l3model.VrfTable]) ([]kvscheduler.Retrieved[*l3model.VrfTable, struct{}], error) {
	want := make(map[string]*l3model.VrfTable, len(desired))
	for _, kv := range desired {
		want[kv.Key] = kv.Value
	}
	d, err := p.ip.IPTableDump(ctx, &ip.IPTableDump{})
	if err != nil {
		return nil, fmt.Errorf("ip_table_dump: %w", err)
	}
	tables, err := recv("ip_table_dump", d.Recv)
	if err != nil {
		return nil, err
	}
	var out []kvscheduler.Retrieved[*l3model.VrfTable, struct{}]
	for _, t := range tables {
		v := &l3model.VrfTable{Id: t.Table.TableID, Label: t.Table.Name}
		fam := "ipv4"
		if t.Table.IsIP6 {
			v.Protocol, fam = l3model.VrfTable_IPV6, "ipv6"
		}
		if strings.EqualFold(v.Label, fmt.Sprintf("%s-VRF:%d", fam, v.Id)) {
			v.Label = ""
		}
		key := vrfKeyOf(v)
		v.FlowHashSettings = want[key].GetFlowHashSettings()
		// Tables carry no owner tag: one nobody desires may be an
		// operator's (startup.conf, CLI) and is left alone (FromSB), at
		// the price of not removing one the agent made and etcd dropped
		// while the agent was down.
		origin := kvscheduler.FromNB
		if _, ok := want[key]; !ok || v.Id == 0 {
			origin = kvscheduler.FromSB
		}
		out = append(out, kvscheduler.Retrieved[*l3model.VrfTable, struct{}]{Key: key, Value: v, Origin: origin})
	}
	return out, ctxOK(ctx)
}
