package ifplugin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/af_packet"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vxlan"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/sockdir"
)

// KeyPrefix is the key prefix of the interface model.
const KeyPrefix = "config/vpp/v2/interfaces/"

// DescriptorName names the interface descriptor in logs and RetrieveAfter.
const DescriptorName = "vpp-interface"

// Key returns the key of the interface with the given logical name.
func Key(name string) string { return KeyPrefix + name }

// Metadata is what the descriptor keeps per applied interface.
type Metadata struct {
	SwIfIndex    uint32 `json:"sw_if_index"`
	InternalName string `json:"internal_name,omitempty"` // VPP's name, e.g. memif1/0
	// MemifSocketID is the VPP socket id a memif uses (0: VPP's default).
	MemifSocketID uint32 `json:"memif_socket_id,omitempty"`
	// VxlanSrc is the source address a VXLAN tunnel was created with (VPP
	// deletes tunnels by source, destination and VNI).
	VxlanSrc string `json:"vxlan_src,omitempty"`
}

// Options build a Plugin.
type Options struct {
	// Conn talks to VPP; pass govppmux's Conn(), which survives reconnects.
	Conn api.Connection
	// DefaultMemifSocket is the file VPP uses for memif socket id 0
	// (default /run/vpp/memif.sock); Retrieve learns VPP's actual one.
	DefaultMemifSocket string
	// MaxMemifs caps the memifs in VPP (0: no cap). A memif create that
	// would cross it fails with a status that says so, and is retried
	// (with the scheduler's backoff) until a delete makes room: FD.io VPP
	// 25.10 crashes when its stats segment or heap runs out (see README).
	MaxMemifs int
	Logger    *slog.Logger
	// SocketPolicy restricts memif and vhost-user socket files to allowed
	// directories; the zero policy only requires absolute, clean paths.
	SocketPolicy sockdir.Policy
}

// Plugin is the interface descriptor plus the name ↔ sw_if_index index it
// maintains for other plugins.
type Plugin struct {
	log  *slog.Logger
	conn api.Connection

	ifs   interfaces.RPCService
	mem   memif.RPCService
	tap   tapv2.RPCService
	afp   af_packet.RPCService
	vhost vhost_user.RPCService
	ipc   ip.RPCService
	vx    vxlan.RPCService

	sockets *memifSockets
	sockPol sockdir.Policy

	mu sync.RWMutex
	// inherited holds the tables (IPv4, IPv6) an unnumbered interface had
	// before it took those of the interface it borrows from.
	inherited map[string][2]uint32
	byName    map[string]*entry
	byIdx     map[uint32]string
	// memifOwner maps an applied memif's socket+id to its logical name, so
	// a second memif on the same pair is rejected naming the first.
	memifOwner map[memifKey]string
	// memifOf is memifOwner reversed, so unindex is O(1) at 10k memifs.
	memifOf map[string]memifKey
	// vxlanOwner and vxlanOf do the same for VXLAN tunnels' keys.
	vxlanOwner map[vxlanKey]string
	vxlanOf    map[string]vxlanKey
	// maxMemifs is Options.MaxMemifs; memifPending counts creates in
	// flight and foreignMemifs the untagged memifs the last retrieve found,
	// so that len(memifOf)+memifPending+foreignMemifs is what VPP will hold.
	maxMemifs, memifPending, foreignMemifs int

	// details caches what VPP last reported per agent interface, so an
	// interface event becomes a full state without a dump.
	// stateQ is the running state watch's queue (nil when none runs).
	stateMu sync.Mutex
	stateQ  *eventQueue
	detMu   sync.Mutex
	details map[uint32]ifDetails
	// published is what the last state published for each interface was
	// built from (under detMu). "Changed?" is asked against it, never
	// against details: a full dump during a bulk change caches interfaces
	// whose events are still on their way, and comparing with that cache
	// would suppress their first publication.
	published map[uint32]publishedState

	// rxWant holds the rx modes configured per interface (by the rx-modes
	// descriptor): a memif gets its receive queues only when its peer
	// connects, in VPP's default (polling) mode, so they are set again when
	// its link comes up (reapplyRxModes).
	rxMu   sync.Mutex
	rxWant map[string][]*ifmodel.Interface_RxMode

	watchMu  sync.Mutex
	watchers map[int]func(*ifmodel.InterfaceState)
	watchSeq int
}

type entry struct {
	meta Metadata
	typ  ifmodel.Interface_Type
	// agent: the interface is one of ours (tagged), not VPP's own such as
	// local0, which is indexed only so that it can be referenced.
	agent bool
	// addrs are the addresses the agent configured (VXLAN sources).
	addrs []string
}

// ifDetails is what the state of an interface needs beyond an event's
// flags, kept compact: 20k of these stay in memory at 10k cross-connects.
type ifDetails struct {
	internalName string
	mac          ethernet_types.MacAddress
	mtu, speed   uint32
	flags        interface_types.IfStatusFlags
}

type memifKey struct {
	socket string
	id     uint32
}

// New builds the plugin; it makes no VPP call.
func New(opts Options) *Plugin {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.DefaultMemifSocket == "" {
		opts.DefaultMemifSocket = DefaultMemifSocket
	}
	p := &Plugin{
		log:        opts.Logger.With("component", "ifplugin"),
		conn:       opts.Conn,
		ifs:        interfaces.NewServiceClient(opts.Conn),
		mem:        memif.NewServiceClient(opts.Conn),
		tap:        tapv2.NewServiceClient(opts.Conn),
		afp:        af_packet.NewServiceClient(opts.Conn),
		vhost:      vhost_user.NewServiceClient(opts.Conn),
		ipc:        ip.NewServiceClient(opts.Conn),
		vx:         vxlan.NewServiceClient(opts.Conn),
		vxlanOwner: make(map[vxlanKey]string),
		vxlanOf:    make(map[string]vxlanKey),
		maxMemifs:  opts.MaxMemifs,
		byName:     make(map[string]*entry),
		byIdx:      make(map[uint32]string),
		memifOwner: make(map[memifKey]string),
		memifOf:    make(map[string]memifKey),
		inherited:  make(map[string][2]uint32),
		watchers:   make(map[int]func(*ifmodel.InterfaceState)),
		details:    make(map[uint32]ifDetails),
		published:  make(map[uint32]publishedState),
		rxWant:     make(map[string][]*ifmodel.Interface_RxMode),
		sockPol:    opts.SocketPolicy,
	}
	p.sockets = newMemifSockets(p.mem, opts.DefaultMemifSocket, p.log)
	return p
}

// SwIfIndex returns the VPP index of an interface by logical name; it also
// knows interfaces found in VPP without our tag (by VPP name, e.g. local0).
func (p *Plugin) SwIfIndex(name string) (uint32, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.byName[name]
	if !ok {
		return 0, false
	}
	return e.meta.SwIfIndex, true
}

// NameOf returns the logical name of a VPP interface index.
func (p *Plugin) NameOf(swIfIndex uint32) (string, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n, ok := p.byIdx[swIfIndex]
	return n, ok
}

func (p *Plugin) index(name string, typ ifmodel.Interface_Type, meta Metadata) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byName[name]; ok {
		delete(p.byIdx, old.meta.SwIfIndex)
	}
	p.byName[name] = &entry{meta: meta, typ: typ, agent: true}
	p.byIdx[meta.SwIfIndex] = name
}

func (p *Plugin) unindex(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byName[name]; ok {
		delete(p.byIdx, old.meta.SwIfIndex)
		delete(p.byName, name)
	}
	if k, ok := p.memifOf[name]; ok {
		if p.memifOwner[k] == name {
			delete(p.memifOwner, k)
		}
		delete(p.memifOf, name)
	}
	if k, ok := p.vxlanOf[name]; ok {
		if p.vxlanOwner[k] == name {
			delete(p.vxlanOwner, k)
		}
		delete(p.vxlanOf, name)
	}
}

// setMemifOwner records that name's memif uses k.
func (p *Plugin) setMemifOwner(name string, k memifKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.memifOf[name]; ok && old != k && p.memifOwner[old] == name {
		delete(p.memifOwner, old)
	}
	p.memifOwner[k] = name
	p.memifOf[name] = k
}

// ErrMemifCap marks a create refused by Options.MaxMemifs.
var ErrMemifCap = errors.New("memif cap reached")

// reserveMemif counts one memif create in; release must be called when the
// create is over (the memif is then in memifOf, or was not created).
func (p *Plugin) reserveMemif(key string) (release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.maxMemifs > 0 {
		if n := len(p.memifOf) + p.memifPending + p.foreignMemifs; n >= p.maxMemifs {
			return nil, fmt.Errorf("%s: %w: VPP has (or is getting) %d memifs and the cap is %d "+
				"(--vpp-max-memifs; FD.io VPP 25.10 aborts past its stats segment's room, see README); "+
				"retried when a memif is removed", key, ErrMemifCap, n, p.maxMemifs)
		}
	}
	p.memifPending++
	return func() {
		p.mu.Lock()
		p.memifPending--
		p.mu.Unlock()
	}, nil
}

// MemifCount is how many memifs VPP holds or is getting, as far as the
// agent knows (its own, creates in flight, and untagged ones it found).
func (p *Plugin) MemifCount() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.memifOf) + p.memifPending + p.foreignMemifs
}

// Messages lists every VPP message the plugin sends, for govppmux's
// compatibility check.
func (p *Plugin) Messages() []api.Message {
	return []api.Message{
		&interfaces.SwInterfaceDump{}, &interfaces.SwInterfaceDetails{},
		&interfaces.SwInterfaceTagAddDel{}, &interfaces.SwInterfaceTagAddDelReply{},
		&interfaces.SwInterfaceSetFlags{}, &interfaces.SwInterfaceSetFlagsReply{},
		&interfaces.SwInterfaceSetMacAddress{}, &interfaces.SwInterfaceSetMacAddressReply{},
		&interfaces.SwInterfaceSetMtu{}, &interfaces.SwInterfaceSetMtuReply{},
		&interfaces.SwInterfaceAddDelAddress{}, &interfaces.SwInterfaceAddDelAddressReply{},
		&interfaces.CreateLoopback{}, &interfaces.CreateLoopbackReply{},
		&interfaces.DeleteLoopback{}, &interfaces.DeleteLoopbackReply{},
		&interfaces.WantInterfaceEvents{}, &interfaces.WantInterfaceEventsReply{},
		&interfaces.SwInterfaceEvent{},
		&ip.IPAddressDump{}, &ip.IPAddressDetails{},
		&interfaces.CreateVlanSubif{}, &interfaces.CreateVlanSubifReply{},
		&interfaces.DeleteSubif{}, &interfaces.DeleteSubifReply{},
		&l2.L2InterfaceVlanTagRewrite{}, &l2.L2InterfaceVlanTagRewriteReply{},
		&interfaces.SwInterfaceSetTable{}, &interfaces.SwInterfaceSetTableReply{},
		&interfaces.SwInterfaceGetTable{}, &interfaces.SwInterfaceGetTableReply{},
		&interfaces.SwInterfaceSetRxMode{}, &interfaces.SwInterfaceSetRxModeReply{},
		&interfaces.SwInterfaceRxPlacementDump{}, &interfaces.SwInterfaceRxPlacementDetails{},
		&interfaces.SwInterfaceSetUnnumbered{}, &interfaces.SwInterfaceSetUnnumberedReply{},
		&ip.IPUnnumberedDump{}, &ip.IPUnnumberedDetails{},
		&memif.MemifCreateV2{}, &memif.MemifCreateV2Reply{},
		&memif.MemifDelete{}, &memif.MemifDeleteReply{},
		&memif.MemifDump{}, &memif.MemifDetails{},
		&memif.MemifSocketFilenameAddDelV2{}, &memif.MemifSocketFilenameAddDelV2Reply{},
		&memif.MemifSocketFilenameDump{}, &memif.MemifSocketFilenameDetails{},
		&tapv2.TapCreateV3{}, &tapv2.TapCreateV3Reply{},
		&tapv2.TapDeleteV2{}, &tapv2.TapDeleteV2Reply{},
		&tapv2.SwInterfaceTapV2Dump{}, &tapv2.SwInterfaceTapV2Details{},
		&af_packet.AfPacketCreateV3{}, &af_packet.AfPacketCreateV3Reply{},
		&af_packet.AfPacketDelete{}, &af_packet.AfPacketDeleteReply{},
		&af_packet.AfPacketDump{}, &af_packet.AfPacketDetails{},
		&vhost_user.CreateVhostUserIfV2{}, &vhost_user.CreateVhostUserIfV2Reply{},
		&vhost_user.ModifyVhostUserIfV2{}, &vhost_user.ModifyVhostUserIfV2Reply{},
		&vhost_user.DeleteVhostUserIf{}, &vhost_user.DeleteVhostUserIfReply{},
		&vhost_user.SwInterfaceVhostUserDump{}, &vhost_user.SwInterfaceVhostUserDetails{},
		&vxlan.VxlanAddDelTunnelV3{}, &vxlan.VxlanAddDelTunnelV3Reply{},
		&vxlan.VxlanTunnelV2Dump{}, &vxlan.VxlanTunnelV2Details{},
	}
}
