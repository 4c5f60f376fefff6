package xconnect

import (
	"context"
	"fmt"

	"go.fd.io/govpp/api"
	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/sockdir"
)

// Key layout this package writes and reads.
const (
	KeyPrefix       = "config/vppmesh/v1/xconnect/"
	InterfacePrefix = "config/vpp/v2/interfaces/"
	XConnectPrefix  = "config/vpp/l2/v2/xconnect/"
	DescriptorName  = "vppmesh-xconnect"
	// maxIfName is VPP's tag limit for the derived interface names.
	maxIfName = 63
)

// Key returns the key of a CrossConnect.
func Key(name string) string { return KeyPrefix + name }

// InterfaceNames returns the derived interface names of a CrossConnect.
func InterfaceNames(name string) (a, b string) { return name + "-a", name + "-b" }

// Descriptor returns the CrossConnect descriptor. It makes no VPP call:
// the derived interface and xconnect values do the work, so a CrossConnect
// is as healthy as they are and updates only re-derive.
func Descriptor() *kvscheduler.Descriptor[*vppmeshv1.CrossConnect, struct{}] {
	return descriptor(Options{})
}

func descriptor(o Options) *kvscheduler.Descriptor[*vppmeshv1.CrossConnect, struct{}] {
	return &kvscheduler.Descriptor[*vppmeshv1.CrossConnect, struct{}]{
		Name:      DescriptorName,
		KeyPrefix: KeyPrefix,
		Validate: func(key string, v *vppmeshv1.CrossConnect) error {
			if err := Validate(key, v); err != nil {
				return err
			}
			return o.validateEndpoints(key, v)
		},
		Create: func(context.Context, string, *vppmeshv1.CrossConnect) (struct{}, error) { return struct{}{}, nil },
		Update: func(context.Context, string, *vppmeshv1.CrossConnect, *vppmeshv1.CrossConnect, struct{}) (struct{}, error) {
			return struct{}{}, nil
		},
		Delete:        func(context.Context, string, *vppmeshv1.CrossConnect, struct{}) error { return nil },
		DerivedValues: func(_ string, v *vppmeshv1.CrossConnect) []kvscheduler.KeyValue { return Derive(v) },
	}
}

// Validate checks a CrossConnect.
func Validate(key string, v *vppmeshv1.CrossConnect) error {
	name := v.GetName()
	if name == "" {
		return fmt.Errorf("%s: cross-connect name is empty", key)
	}
	if a, _ := InterfaceNames(name); len(a) > maxIfName {
		return fmt.Errorf("%s: derived interface name %q is %d bytes, at most %d allowed (name at most %d)", key, a, len(a), maxIfName, maxIfName-2)
	}
	for _, side := range []string{"a", "b"} {
		ep := v.GetA()
		if side == "b" {
			ep = v.GetB()
		}
		switch {
		case ep == nil:
			return fmt.Errorf("%s: endpoint %s is missing", key, side)
		case ep.GetLink() == nil:
			return fmt.Errorf("%s: endpoint %s needs exactly one of memif, vhost_user or vxlan", key, side)
		case ep.GetMemif() == nil && ep.GetVhostUser() == nil && ep.GetVxlan() == nil:
			return fmt.Errorf("%s: endpoint %s: link is empty; set memif, vhost_user or vxlan", key, side)
		case ep.GetVhostUser() != nil && ep.GetVhostUser().GetSocketFilename() == "":
			return fmt.Errorf("%s: endpoint %s: vhost_user.socket_filename is empty", key, side)
		}
		if x := ep.GetVxlan(); x != nil {
			if err := validateVxlanEnd(x); err != nil {
				return fmt.Errorf("%s: endpoint %s: %w", key, side, err)
			}
		}
	}
	if a, b := v.GetA().GetVxlan(), v.GetB().GetVxlan(); a != nil && b != nil && tunnelOf(a) == tunnelOf(b) {
		return fmt.Errorf("%s: endpoints a and b are the same vxlan tunnel (vni %d to %s)", key, a.GetVni(), a.GetRemote())
	}
	return nil
}

// Derive returns the two interfaces and two xconnect pairs of v.
func Derive(v *vppmeshv1.CrossConnect) []kvscheduler.KeyValue {
	a, b := InterfaceNames(v.GetName())
	return []kvscheduler.KeyValue{
		{Key: InterfacePrefix + a, Value: endpointInterface(a, v.GetA())},
		{Key: InterfacePrefix + b, Value: endpointInterface(b, v.GetB())},
		{Key: XConnectPrefix + a, Value: &l2model.XConnectPair{ReceiveInterface: a, TransmitInterface: b}},
		{Key: XConnectPrefix + b, Value: &l2model.XConnectPair{ReceiveInterface: b, TransmitInterface: a}},
	}
}

func endpointInterface(name string, ep *vppmeshv1.Endpoint) *ifmodel.Interface {
	i := &ifmodel.Interface{Name: name, Enabled: true, PhysAddress: ep.GetPhysAddress(), Mtu: ep.GetMtu()}
	switch {
	case ep.GetVxlan() != nil:
		x := ep.GetVxlan()
		i.Type = ifmodel.Interface_VXLAN_TUNNEL
		i.Link = &ifmodel.Interface_Vxlan{Vxlan: &ifmodel.VxlanLink{SrcInterface: x.GetUplink(), DstAddress: x.GetRemote(), Vni: x.GetVni()}}
	case ep.GetMemif() != nil:
		i.Type = ifmodel.Interface_MEMIF
		i.Link = &ifmodel.Interface_Memif{Memif: proto.Clone(ep.GetMemif()).(*ifmodel.MemifLink)}
	case ep.GetVhostUser() != nil:
		i.Type = ifmodel.Interface_VHOST_USER
		i.Link = &ifmodel.Interface_VhostUser{VhostUser: proto.Clone(ep.GetVhostUser()).(*ifmodel.VhostUserLink)}
	}
	if m := ep.GetRxMode(); m != ifmodel.Interface_RxMode_UNKNOWN && ep.GetVxlan() == nil {
		i.RxModes = []*ifmodel.Interface_RxMode{{DefaultMode: true, Mode: m}}
	}
	return i
}

// Options configure the plugin.
type Options struct {
	// SocketPolicy restricts the endpoints' socket files to allowed
	// directories (the zero policy: absolute, clean paths).
	SocketPolicy sockdir.Policy
}

// validateEndpoints applies the socket policy and the MTU range to both
// endpoints, so the cross-connect key itself carries the error rather than
// only its derived interfaces.
func (o Options) validateEndpoints(key string, v *vppmeshv1.CrossConnect) error {
	for _, side := range []struct {
		name string
		ep   *vppmeshv1.Endpoint
	}{{"a", v.GetA()}, {"b", v.GetB()}} {
		ep := side.ep
		if mtu := ep.GetMtu(); mtu != 0 && (mtu < minMTU || mtu > maxMTU) {
			return fmt.Errorf("%s: endpoint %s: mtu %d out of range [%d, %d]", key, side.name, mtu, minMTU, maxMTU)
		}
		if m := ep.GetRxMode(); m < 0 || m > ifmodel.Interface_RxMode_DEFAULT {
			return fmt.Errorf("%s: endpoint %s: rx_mode %d is not POLLING, INTERRUPT, ADAPTIVE or DEFAULT", key, side.name, m)
		}
		var err error
		switch {
		case ep.GetMemif() != nil && ep.GetMemif().GetSocketFilename() != "":
			err = o.SocketPolicy.Check("memif socket_filename", ep.GetMemif().GetSocketFilename())
		case ep.GetVhostUser() != nil:
			err = o.SocketPolicy.Check("vhost_user socket_filename", ep.GetVhostUser().GetSocketFilename())
		}
		if err != nil {
			return fmt.Errorf("%s: endpoint %s: %w", key, side.name, err)
		}
	}
	return nil
}

// MTU range, the interface plugin's (ifplugin.MinMTU/MaxMTU).
const (
	minMTU = 64
	maxMTU = 9216
)

// Plugin is the CrossConnect plugin; it calls no VPP API. Its only state is
// which cross-connect holds which VXLAN tunnel: a second one asking for the
// same VNI towards the same node over the same uplink FAILS naming the holder
// (before anything reaches VPP) and is retried, so it applies by itself once
// the holder is deleted or changed.
type Plugin struct {
	opts    Options
	tunnels *tunnelOwners
}

// New returns the plugin with the zero Options.
func New() *Plugin { return NewWith(Options{}) }

// NewWith returns the plugin with options.
func NewWith(o Options) *Plugin { return &Plugin{opts: o, tunnels: newTunnelOwners()} }

// Register adds the CrossConnect descriptor to the scheduler.
func (p *Plugin) Register(s *kvscheduler.Scheduler) error {
	d := descriptor(p.opts)
	d.Create = func(_ context.Context, key string, v *vppmeshv1.CrossConnect) (struct{}, error) {
		return struct{}{}, p.tunnels.claim(key, v)
	}
	d.Update = func(_ context.Context, key string, _, v *vppmeshv1.CrossConnect, _ struct{}) (struct{}, error) {
		return struct{}{}, p.tunnels.claim(key, v)
	}
	d.Delete = func(_ context.Context, _ string, v *vppmeshv1.CrossConnect, _ struct{}) error {
		p.tunnels.release(v.GetName())
		return nil
	}
	return kvscheduler.RegisterDescriptor(s, d)
}

// Messages is empty: the derived values' plugins send the VPP messages.
func (*Plugin) Messages() []api.Message { return nil }
