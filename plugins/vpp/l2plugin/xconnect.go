package l2plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"

	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// XConnectKey returns the key of the xconnect receiving on rx.
func XConnectKey(rx string) string { return XConnectPrefix + rx }

// XConnectDescriptor returns the descriptor of one-way L2 cross-connects.
func (p *Plugin) XConnectDescriptor() *kvscheduler.Descriptor[*l2model.XConnectPair, struct{}] {
	return &kvscheduler.Descriptor[*l2model.XConnectPair, struct{}]{
		Name:          XConnectDescriptor,
		KeyPrefix:     XConnectPrefix,
		Validate:      validateXConnect,
		Create:        p.createXConnect,
		Delete:        p.deleteXConnect,
		Retrieve:      p.retrieveXConnects,
		RetrieveAfter: []string{InterfaceDescriptor},
		Dependencies: func(_ string, v *l2model.XConnectPair) []kvscheduler.Dependency {
			return []kvscheduler.Dependency{
				{Label: "rx-interface", Key: InterfacePrefix + v.GetReceiveInterface()},
				{Label: "tx-interface", Key: InterfacePrefix + v.GetTransmitInterface()},
			}
		},
	}
}

func validateXConnect(key string, v *l2model.XConnectPair) error {
	switch {
	case v.GetReceiveInterface() == "":
		return fmt.Errorf("%s: receive_interface is empty", key)
	case v.GetTransmitInterface() == "":
		return fmt.Errorf("%s: transmit_interface is empty", key)
	case v.GetReceiveInterface() == v.GetTransmitInterface():
		return fmt.Errorf("%s: receive and transmit interface are both %q", key, v.GetReceiveInterface())
	}
	return nil
}

func (p *Plugin) indices(key string, names ...string) ([]interface_types.InterfaceIndex, error) {
	out := make([]interface_types.InterfaceIndex, 0, len(names))
	for _, n := range names {
		idx, ok := p.ifx.SwIfIndex(n)
		if !ok {
			return nil, fmt.Errorf("%s: interface %q has no sw_if_index", key, n)
		}
		out = append(out, interface_types.InterfaceIndex(idx))
	}
	return out, nil
}

func (p *Plugin) setXConnect(ctx context.Context, key string, v *l2model.XConnectPair, enable bool) error {
	idx, err := p.indices(key, v.GetReceiveInterface(), v.GetTransmitInterface())
	if err != nil {
		return err
	}
	// Disabling puts rx back into L3 mode; tx is ignored by VPP then.
	if _, err := p.l2.SwInterfaceSetL2Xconnect(ctx, &l2.SwInterfaceSetL2Xconnect{
		RxSwIfIndex: idx[0], TxSwIfIndex: idx[1], Enable: enable,
	}); err != nil {
		return fmt.Errorf("%s: sw_interface_set_l2_xconnect %d→%d enable=%v: %w", key, idx[0], idx[1], enable, err)
	}
	return nil
}

func (p *Plugin) createXConnect(ctx context.Context, key string, v *l2model.XConnectPair) (struct{}, error) {
	return struct{}{}, p.setXConnect(ctx, key, v, true)
}

func (p *Plugin) deleteXConnect(ctx context.Context, key string, v *l2model.XConnectPair, _ struct{}) error {
	return p.setXConnect(ctx, key, v, false)
}

func (p *Plugin) retrieveXConnects(ctx context.Context, _ []kvscheduler.KV[*l2model.XConnectPair]) ([]kvscheduler.Retrieved[*l2model.XConnectPair, struct{}], error) {
	d, err := p.l2.L2XconnectDump(ctx, &l2.L2XconnectDump{})
	if err != nil {
		return nil, fmt.Errorf("l2_xconnect_dump: %w", err)
	}
	var out []kvscheduler.Retrieved[*l2model.XConnectPair, struct{}]
	for {
		x, err := d.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("l2_xconnect_dump: %w", err)
		}
		rx, ok1 := p.ifx.NameOf(uint32(x.RxSwIfIndex))
		tx, ok2 := p.ifx.NameOf(uint32(x.TxSwIfIndex))
		if !ok1 || !ok2 {
			p.log.Debug("xconnect on unknown interfaces ignored", "rx", uint32(x.RxSwIfIndex), "tx", uint32(x.TxSwIfIndex))
			continue
		}
		out = append(out, kvscheduler.Retrieved[*l2model.XConnectPair, struct{}]{
			Key:   XConnectKey(rx),
			Value: &l2model.XConnectPair{ReceiveInterface: rx, TransmitInterface: tx},
		})
	}
	return out, nil
}
