package l3plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/arp"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_neighbor"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Key prefixes handled here (Ligato vpp-agent v3's layout).
const (
	VrfPrefix   = "config/vpp/v2/vrf-table/"
	RoutePrefix = "config/vpp/v2/route/"
	ArpPrefix   = "config/vpp/v2/arp/"
	// InterfacePrefix is the interface model's prefix (a dependency).
	InterfacePrefix = "config/vpp/v2/interfaces/"
)

// Descriptor names.
const (
	VrfDescriptor   = "vpp-vrf-table"
	RouteDescriptor = "vpp-route"
	ArpDescriptor   = "vpp-arp"
	// InterfaceDescriptor is ifplugin's descriptor, retrieved before ours.
	InterfaceDescriptor = "vpp-interface"
)

// IfIndex resolves logical interface names; ifplugin's *Plugin implements it.
type IfIndex interface {
	SwIfIndex(name string) (uint32, bool)
	NameOf(swIfIndex uint32) (string, bool)
}

// Options build a Plugin.
type Options struct {
	Conn    api.Connection
	IfIndex IfIndex
	Logger  *slog.Logger
}

// Plugin holds the L3 descriptors.
type Plugin struct {
	log   *slog.Logger
	ip    ip.RPCService
	neigh ip_neighbor.RPCService
	arp   arp.RPCService
	ifx   IfIndex
}

// New builds the plugin; it makes no VPP call.
func New(opts Options) *Plugin {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Plugin{
		log:   opts.Logger.With("component", "l3plugin"),
		ip:    ip.NewServiceClient(opts.Conn),
		neigh: ip_neighbor.NewServiceClient(opts.Conn),
		arp:   arp.NewServiceClient(opts.Conn),
		ifx:   opts.IfIndex,
	}
}

// Messages lists every VPP message the plugin sends.
func (p *Plugin) Messages() []api.Message {
	return []api.Message{
		&ip.IPTableAddDel{}, &ip.IPTableAddDelReply{},
		&ip.IPTableDump{}, &ip.IPTableDetails{},
		&ip.SetIPFlowHashV2{}, &ip.SetIPFlowHashV2Reply{},
		&ip.IPRouteAddDel{}, &ip.IPRouteAddDelReply{},
		&ip.IPRouteDump{}, &ip.IPRouteDetails{},
		&ip_neighbor.IPNeighborAddDel{}, &ip_neighbor.IPNeighborAddDelReply{},
		&ip_neighbor.IPNeighborDump{}, &ip_neighbor.IPNeighborDetails{},
		&arp.ProxyArpAddDel{}, &arp.ProxyArpAddDelReply{},
		&arp.ProxyArpDump{}, &arp.ProxyArpDetails{},
		&arp.ProxyArpIntfcEnableDisable{}, &arp.ProxyArpIntfcEnableDisableReply{},
		&arp.ProxyArpIntfcDump{}, &arp.ProxyArpIntfcDetails{},
	}
}

// Register adds the VRF, route, ARP and proxy ARP descriptors.
func (p *Plugin) Register(s *kvscheduler.Scheduler) error {
	if err := kvscheduler.RegisterDescriptor(s, p.VrfDescriptor()); err != nil {
		return err
	}
	if err := kvscheduler.RegisterDescriptor(s, p.RouteDescriptor()); err != nil {
		return err
	}
	if err := kvscheduler.RegisterDescriptor(s, p.ArpDescriptor()); err != nil {
		return err
	}
	if err := kvscheduler.RegisterDescriptor(s, p.ProxyARPDescriptor()); err != nil {
		return err
	}
	return kvscheduler.RegisterDescriptor(s, p.ProxyARPInterfaceDescriptor())
}

// recv drains a dump stream.
func recv[T any](name string, recvFn func() (T, error)) ([]T, error) {
	var out []T
	for {
		d, err := recvFn()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, d)
	}
}

func ctxOK(ctx context.Context) error { return ctx.Err() }
