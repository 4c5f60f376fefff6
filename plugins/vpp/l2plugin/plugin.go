package l2plugin

import (
	"io"
	"log/slog"
	"sync"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/l2"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Key prefixes handled here.
const (
	XConnectPrefix     = "config/vpp/l2/v2/xconnect/"
	BridgeDomainPrefix = "config/vpp/l2/v2/bridge-domain/"
	// BDMemberPrefix is the prefix of derived bridge-domain member keys:
	// vpp/bd/<bd-name>/interface/<if-name>.
	BDMemberPrefix = "vpp/bd/"
	// InterfacePrefix is the interface model's prefix (the dependency).
	InterfacePrefix = "config/vpp/v2/interfaces/"
)

// Descriptor names.
const (
	XConnectDescriptor = "vpp-l2-xconnect"
	BDDescriptor       = "vpp-bridge-domain"
	BDMemberDescriptor = "vpp-bd-interface"
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

// Plugin holds the L2 descriptors and the bridge-domain name ↔ bd_id map.
type Plugin struct {
	log *slog.Logger
	l2  l2.RPCService
	ifx IfIndex

	mu     sync.Mutex
	bdByID map[uint32]string
	bdByNm map[string]uint32
}

// New builds the plugin; it makes no VPP call.
func New(opts Options) *Plugin {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Plugin{
		log:    opts.Logger.With("component", "l2plugin"),
		l2:     l2.NewServiceClient(opts.Conn),
		ifx:    opts.IfIndex,
		bdByID: make(map[uint32]string),
		bdByNm: make(map[string]uint32),
	}
}

// BDID returns the VPP bd_id of a bridge domain by name.
func (p *Plugin) BDID(name string) (uint32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.bdByNm[name]
	return id, ok
}

// Messages lists every VPP message the plugin sends.
func (p *Plugin) Messages() []api.Message {
	return []api.Message{
		&l2.SwInterfaceSetL2Xconnect{}, &l2.SwInterfaceSetL2XconnectReply{},
		&l2.L2XconnectDump{}, &l2.L2XconnectDetails{},
		&l2.BridgeDomainAddDelV2{}, &l2.BridgeDomainAddDelV2Reply{},
		&l2.BridgeDomainDump{}, &l2.BridgeDomainDetails{},
		&l2.SwInterfaceSetL2Bridge{}, &l2.SwInterfaceSetL2BridgeReply{},
		&l2.L2fibAddDel{}, &l2.L2fibAddDelReply{},
		&l2.L2FibTableDump{}, &l2.L2FibTableDetails{},
	}
}

// Register adds the xconnect, bridge-domain, member and FIB descriptors.
func (p *Plugin) Register(s *kvscheduler.Scheduler) error {
	if err := kvscheduler.RegisterDescriptor(s, p.XConnectDescriptor()); err != nil {
		return err
	}
	if err := kvscheduler.RegisterDescriptor(s, p.BridgeDomainDescriptor()); err != nil {
		return err
	}
	if err := kvscheduler.RegisterDescriptor(s, p.BDMemberDescriptor()); err != nil {
		return err
	}
	return kvscheduler.RegisterDescriptor(s, p.FIBDescriptor())
}
