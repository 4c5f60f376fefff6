package vppsim

import (
	"sync"
	"sync/atomic"
)

// Driver moves frames between one vppsim interface and the outside (a memif or
// vhost-user peer, a test). Transmit must not keep frame after it returns, which keeps
// the forwarding path free of allocations.
type Driver interface {
	Transmit(frame []byte) error
	Close() error
}

// BurstDriver is a Driver that transmits a batch at once. TransmitBurst queues frames
// from the start of the batch and returns how many it queued; why the rest were not
// queued is the reason they are counted under.
type BurstDriver interface {
	Driver
	TransmitBurst(frames [][]byte) (int, DropReason)
}

// PortInfo tells a DriverFactory what kind of interface it is attaching to.
type PortInfo struct {
	SwIfIndex uint32
	Name      string
	// Kind is one of "loopback", "memif", "vhost-user", "tap", "af-packet".
	Kind string
	// Memif is set for memif interfaces.
	Memif *MemifSpec
	// VhostUser is set for vhost-user interfaces.
	VhostUser *VhostUserSpec
}

// MemifSpec is what memif_create_v2 asked for, resolved (socket file, defaults applied).
type MemifSpec struct {
	ID         uint32
	SocketID   uint32
	SocketFile string
	Master     bool
	Mode       uint8 // 0 ethernet, 1 ip, 2 punt/inject
	RxQueues   uint8
	TxQueues   uint8
	RingSize   uint32
	BufferSize uint16
	Secret     string // never logged
	MAC        [6]byte
}

// VhostUserSpec is what create_vhost_user_if_v2 asked for.
type VhostUserSpec struct {
	SocketFile string
	IsServer   bool
	EnableGSO  bool
	Packed     bool
	// DisableMrgRxbuf and DisableIndirectDesc switch features off in negotiation.
	DisableMrgRxbuf     bool
	DisableIndirectDesc bool
	EnableEventIdx      bool
	MAC                 [6]byte
}

// DriverFactory attaches a driver to a newly created interface. It runs with the API
// lock held: it must not block on the peer (connect asynchronously and report with
// Port.SetLink). Returning nil, nil leaves the interface without packet I/O.
type DriverFactory func(p *Port, info PortInfo) (Driver, error)

// Counters are one interface's packet statistics.
type Counters struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	Drops     uint64 `json:"drops"`
}

// Port is the packet I/O side of one interface: a driver hands received frames to
// Receive and reports its link with SetLink; the forwarder transmits through the driver.
type Port struct {
	swIfIndex uint32
	name      atomic.Pointer[string] // vhost-user renumbering renames
	onLink    func(p *Port, up bool)

	driver  atomic.Pointer[driverBox]
	adminUp atomic.Bool
	fwd     atomic.Pointer[l2Forward]

	// minLen is the shortest frame forwarded: an Ethernet header, or an IPv4 header
	// on an IP-mode memif.
	minLen int

	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
	drops                                  [numDropReasons]atomic.Uint64
}

type driverBox struct{ d Driver }

// burst returns the driver's burst transmitter, if it has one.
func (b *driverBox) burst() (BurstDriver, bool) {
	if b == nil {
		return nil, false
	}
	bd, ok := b.d.(BurstDriver)
	return bd, ok
}

// l2Forward is the immutable L2 configuration of a port; it is replaced, never changed,
// so the receive path reads it with one atomic load.
type l2Forward struct {
	xconnect *Port
	bridge   *bridge
	shg      uint8
}

func newPort(idx uint32, name string, onLink func(*Port, bool)) *Port {
	p := &Port{swIfIndex: idx, onLink: onLink, minLen: 14}
	p.name.Store(&name)
	return p
}

// SwIfIndex is the interface's index in VPP's interface table.
func (p *Port) SwIfIndex() uint32 { return p.swIfIndex }

// Name is the VPP interface name, e.g. memif0/1.
func (p *Port) Name() string { return *p.name.Load() }

// Counters returns a snapshot of the interface counters.
func (p *Port) Counters() Counters {
	return Counters{
		RxPackets: p.rxPackets.Load(), RxBytes: p.rxBytes.Load(),
		TxPackets: p.txPackets.Load(), TxBytes: p.txBytes.Load(),
		Drops: p.totalDrops(),
	}
}

func (p *Port) totalDrops() uint64 {
	var n uint64
	for i := range p.drops {
		n += p.drops[i].Load()
	}
	return n
}

// txErrors counts frames the egress device failed to send (VPP's /if/tx-error);
// frames for a down egress are drops of the receiving interface instead.
func (p *Port) txErrors() uint64 {
	return p.drops[DropTxFull].Load() + p.drops[DropTxError].Load()
}

func (p *Port) drop(r DropReason, n int) { p.drops[r].Add(uint64(n)) }

// Drops returns the drop counters by reason, only the non-zero ones.
func (p *Port) Drops() map[DropReason]uint64 {
	out := map[DropReason]uint64{}
	for i := range p.drops {
		if v := p.drops[i].Load(); v != 0 {
			out[DropReason(i)] = v
		}
	}
	return out
}

// SetLink reports the driver's link state; it raises sw_interface_event when it changes.
func (p *Port) SetLink(up bool) {
	if p.onLink != nil {
		p.onLink(p, up)
	}
}

// Receive feeds one frame received by the driver into L2 forwarding. The frame is only
// read during the call.
func (p *Port) Receive(frame []byte) {
	p.rxPackets.Add(1)
	p.rxBytes.Add(uint64(len(frame)))
	if !p.adminUp.Load() {
		p.drop(DropAdminDown, 1)
		return
	}
	if len(frame) < p.minLen {
		p.drop(DropRunt, 1)
		return
	}
	p.forward(p.fwd.Load(), frame)
}

// ReceiveBurst feeds a batch of frames into L2 forwarding; a cross-connected batch
// leaves in one transmit burst. Frames are only read during the call.
func (p *Port) ReceiveBurst(frames [][]byte) {
	if len(frames) == 0 {
		return
	}
	var bytes uint64
	runts := false
	for _, f := range frames {
		bytes += uint64(len(f))
		runts = runts || len(f) < p.minLen
	}
	p.rxPackets.Add(uint64(len(frames)))
	p.rxBytes.Add(bytes)
	if !p.adminUp.Load() {
		p.drop(DropAdminDown, len(frames))
		return
	}
	f := p.fwd.Load()
	if f != nil && f.xconnect != nil && !runts {
		f.xconnect.transmitBurst(p, frames)
		return
	}
	for _, fr := range frames {
		if len(fr) < p.minLen {
			p.drop(DropRunt, 1)
			continue
		}
		p.forward(f, fr)
	}
}

func (p *Port) forward(f *l2Forward, frame []byte) {
	switch {
	case f == nil:
		// Not in L2 mode: VPP would route or drop; vppsim has no L3 path.
		p.drop(DropNotL2, 1)
	case f.xconnect != nil:
		f.xconnect.transmit(p, frame)
	case f.bridge != nil:
		f.bridge.forward(p, f.shg, frame)
	default:
		p.drop(DropNotL2, 1)
	}
}

// transmit sends one frame from the receiving port in. As in VPP, a frame the output
// path drops because the egress is down (admin or link) or has no driver counts as a
// drop of the receiving interface (error-drop counts on the rx sw_if_index); a frame
// the egress device fails to send counts on the egress (/if/tx-error).
func (p *Port) transmit(in *Port, frame []byte) {
	b := p.driver.Load()
	if b == nil {
		in.drop(DropNoDriver, 1)
		return
	}
	if !p.adminUp.Load() {
		in.drop(DropAdminDown, 1)
		return
	}
	if err := b.d.Transmit(frame); err != nil {
		p.txFailed(in, reasonOf(err), 1)
		return
	}
	p.txPackets.Add(1)
	p.txBytes.Add(uint64(len(frame)))
}

// txFailed counts n frames the egress driver did not send: link down on the receiving
// interface, the rest on the egress.
func (p *Port) txFailed(in *Port, r DropReason, n int) {
	if r == DropLinkDown {
		in.drop(r, n)
		return
	}
	p.drop(r, n)
}

func (p *Port) transmitBurst(in *Port, frames [][]byte) {
	b := p.driver.Load()
	bd, ok := b.burst()
	if !ok {
		for _, f := range frames {
			p.transmit(in, f)
		}
		return
	}
	if !p.adminUp.Load() {
		in.drop(DropAdminDown, len(frames))
		return
	}
	n, reason := bd.TransmitBurst(frames)
	var bytes uint64
	for _, f := range frames[:n] {
		bytes += uint64(len(f))
	}
	p.txPackets.Add(uint64(n))
	p.txBytes.Add(bytes)
	if n < len(frames) {
		p.txFailed(in, reason, len(frames)-n)
	}
}

func (p *Port) setDriver(d Driver) {
	if d != nil {
		p.driver.Store(&driverBox{d: d})
	}
}

func (p *Port) closeDriver() error {
	b := p.driver.Swap(nil)
	if b == nil {
		return nil
	}
	return b.d.Close()
}

// bridge is one bridge domain's forwarding state.
type bridge struct {
	id                               uint32
	flood, uuFlood, forwardOn, learn bool
	clock                            *coarseClock // nil reads as zero: no ageing

	members atomic.Pointer[[]member] // copy-on-write

	mu  sync.RWMutex
	fib map[[6]byte]fibEntry
}

// fibEntry is where a MAC lives; static entries (l2fib_add_del) are neither moved by
// learning nor flushed when their interface leaves the bridge, as in VPP.
type fibEntry struct {
	port   *Port
	static bool
	// filter drops frames to the MAC (l2fib_add_del filter_mac); bvi marks
	// a BVI's own MAC.
	filter, bvi bool
	seen        int64 // coarse clock reading when last learned or refreshed
}

type member struct {
	port *Port
	shg  uint8
}

func newBridge(id uint32) *bridge {
	b := &bridge{id: id, fib: map[[6]byte]fibEntry{}}
	b.members.Store(&[]member{})
	return b
}

func (b *bridge) setMembers(ms []member) { b.members.Store(&ms) }

func (b *bridge) forward(in *Port, shg uint8, frame []byte) {
	var dst, src [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	if b.learn && src[0]&1 == 0 {
		now := b.clock.Now()
		b.mu.RLock()
		known := b.fib[src]
		b.mu.RUnlock()
		// Refreshing a known entry writes at most once per clock tick, so a busy MAC
		// does not take the write lock per packet.
		if !known.static && (known.port != in || known.seen != now) {
			b.mu.Lock()
			if cur := b.fib[src]; !cur.static {
				b.fib[src] = fibEntry{port: in, seen: now}
			}
			b.mu.Unlock()
		}
	}
	if dst[0]&1 == 0 { // unicast
		b.mu.RLock()
		e := b.fib[dst]
		b.mu.RUnlock()
		if e.filter {
			in.drop(DropBridgeFilter, 1)
			return
		}
		out := e.port
		if out != nil && b.forwardOn {
			if out == in {
				in.drop(DropReflect, 1)
				return
			}
			out.transmit(in, frame)
			return
		}
		if !b.uuFlood {
			in.drop(DropBridgeFilter, 1)
			return
		}
	} else if !b.flood {
		in.drop(DropBridgeFilter, 1)
		return
	}
	sent := false
	for _, m := range *b.members.Load() {
		// Split horizon: members of the same non-zero group never hear each other.
		if m.port == in || (shg != 0 && m.shg == shg) {
			continue
		}
		m.port.transmit(in, frame)
		sent = true
	}
	if !sent {
		in.drop(DropNoMembers, 1)
	}
}

func (b *bridge) forget(p *Port) {
	b.mu.Lock()
	for mac, e := range b.fib {
		if e.port == p && !e.static {
			delete(b.fib, mac)
		}
	}
	b.mu.Unlock()
}

// age removes learned entries not refreshed since before cutoff (a coarse clock reading).
func (b *bridge) age(cutoff int64) int {
	n := 0
	b.mu.Lock()
	for mac, e := range b.fib {
		if !e.static && e.seen < cutoff {
			delete(b.fib, mac)
			n++
		}
	}
	b.mu.Unlock()
	return n
}

// coarseClock is a clock read on the packet path without a time.Now call per packet;
// the housekeeping loop advances it.
type coarseClock struct{ ns atomic.Int64 }

// Now returns the last stored reading in nanoseconds (0 for a nil clock).
func (c *coarseClock) Now() int64 {
	if c == nil {
		return 0
	}
	return c.ns.Load()
}

func (c *coarseClock) set(ns int64) { c.ns.Store(ns) }

// TxPackets is the interface's transmitted packet count.
func (p *Port) TxPackets() uint64 { return p.txPackets.Load() }
