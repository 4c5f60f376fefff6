package vppsim

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The IPv4/VXLAN path: an AF_PACKET interface with IPv4 addresses answers and
// resolves ARP and terminates UDP/4789; a VXLAN tunnel interface encapsulates
// what L2 forwarding sends it and hands decapsulated frames to L2 forwarding.
// No routing: a tunnel's destination must be on the subnet of an AF_PACKET
// interface's address (VPP would consult its FIB; vppsim has only attached
// prefixes). Configuration reaches the packet path as an immutable snapshot
// rebuilt under the API lock whenever an AF_PACKET address, MAC or tunnel
// changes; ARP entries are learned on the packet path.

const (
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	vxlanPort     = 4789
	// vxlanOverhead is what encapsulation adds: Ethernet, IPv4, UDP, VXLAN.
	vxlanOverhead = 14 + 20 + 8 + 8
	// encapTTL is the TTL of VPP 25.10's VXLAN packets on the wire: its
	// rewrite says 254 and ip4-rewrite decrements it (captured on a veth:
	// TTL 253, id 0, DF clear, UDP checksum 0, source port ≥ 49152).
	encapTTL = 253
	// arpRetry is how often an unresolved neighbour is asked again while
	// traffic towards it keeps arriving (VPP throttles the same way).
	arpRetry = 100 * time.Millisecond
)

// Errors the tunnel driver returns; they name the drop reason.
var (
	ErrNoRoute    = errors.New("vppsim: no attached prefix towards the tunnel destination")
	ErrARPPending = errors.New("vppsim: neighbour not resolved yet (ARP sent)")
)

// vxlanSpec is what vxlan_add_del_tunnel_v3 asked for.
type vxlanSpec struct {
	src, dst         netip.Addr
	vni              uint32
	srcPort, dstPort uint16
	mcast            uint32
	decapNext        uint32
	instance         uint32
}

// vxKey is how a received packet finds its tunnel: outer source (the
// tunnel's destination), outer destination (its source) and VNI.
type vxKey struct {
	remote, local netip.Addr
	vni           uint32
}

// l3If is one AF_PACKET interface's IPv4 configuration, as the packet path sees it.
type l3If struct {
	port  *Port
	mac   [6]byte
	addrs []netip.Prefix
}

func (l *l3If) owns(a netip.Addr) bool {
	for _, p := range l.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// l3Snap is the packet path's view of the configuration; never modified.
type l3Snap struct {
	ifs     map[*Port]*l3If
	tunnels map[vxKey]*Port
}

// route returns the interface with an attached prefix holding dst.
func (s *l3Snap) route(dst netip.Addr) *l3If {
	var best *l3If
	bits := -1
	for _, l := range s.ifs {
		for _, p := range l.addrs {
			if p.Contains(dst) && p.Bits() > bits {
				best, bits = l, p.Bits()
			}
		}
	}
	return best
}

// arpKey is one neighbour on one interface.
type arpKey struct {
	port *Port
	ip   netip.Addr
}

type arpEntry struct {
	mac     [6]byte
	ok      bool
	askedAt time.Time
}

// l3Plane is one VPP's IPv4 and VXLAN packet path.
type l3Plane struct {
	snap atomic.Pointer[l3Snap]

	mu  sync.Mutex
	arp map[arpKey]arpEntry

	bufs sync.Pool
}

func newL3Plane() *l3Plane {
	pl := &l3Plane{arp: map[arpKey]arpEntry{}}
	pl.snap.Store(&l3Snap{ifs: map[*Port]*l3If{}, tunnels: map[vxKey]*Port{}})
	pl.bufs.New = func() any { b := make([]byte, 0, rxBufSize+vxlanOverhead); return &b }
	return pl
}

// l3Input is the hook a Port in L3 mode hands received frames to.
type l3Input struct{ pl *l3Plane }

// plane returns the state's L3 plane, creating it on first use.
func (st *state) plane() *l3Plane {
	if st.l3 == nil {
		st.l3 = newL3Plane()
	}
	return st.l3
}

// syncL3 rebuilds the packet path's snapshot from the interface table. It
// runs under the API lock after an AF_PACKET or VXLAN interface changed.
func (st *state) syncL3() {
	pl := st.plane()
	s := &l3Snap{ifs: map[*Port]*l3If{}, tunnels: map[vxKey]*Port{}}
	for ifc := range st.all() {
		switch {
		case ifc.kind == kindAfPacket:
			l := &l3If{port: ifc.port, mac: ifc.mac}
			for _, a := range ifc.addrs {
				if pf, err := netip.ParsePrefix(a.String()); err == nil && pf.Addr().Is4() {
					l.addrs = append(l.addrs, pf)
				}
			}
			s.ifs[ifc.port] = l
			ifc.port.l3.Store(&l3Input{pl: pl})
		case ifc.vxlan != nil:
			// The wire carries 24 bits; VPP keeps 32 and matches the low 24.
			s.tunnels[vxKey{remote: ifc.vxlan.dst, local: ifc.vxlan.src, vni: ifc.vxlan.vni & 0xffffff}] = ifc.port
		}
	}
	pl.snap.Store(s)
	// Neighbours of interfaces that are gone are forgotten.
	pl.mu.Lock()
	for k := range pl.arp {
		if s.ifs[k.port] == nil {
			delete(pl.arp, k)
		}
	}
	pl.mu.Unlock()
}

// l3Kind reports whether an interface's changes concern the L3 plane.
func (ifc *iface) l3Kind() bool { return ifc.kind == kindAfPacket || ifc.kind == kindVxlan }

// input handles a frame received on an AF_PACKET interface in L3 mode.
func (in *l3Input) input(p *Port, frame []byte) {
	pl := in.pl
	s := pl.snap.Load()
	l := s.ifs[p]
	if l == nil {
		p.drop(DropNotL2, 1)
		return
	}
	var dst [6]byte
	copy(dst[:], frame[0:6])
	if dst != l.mac && dst[0]&1 == 0 {
		p.drop(DropL2NotForUs, 1)
		return
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherTypeARP:
		pl.arpInput(l, frame)
	case etherTypeIPv4:
		pl.ip4Input(s, l, frame)
	default:
		p.drop(DropUnknownEtherType, 1)
	}
}

// arpInput answers requests for our addresses and learns senders that talk
// to us (requests for us and replies), as VPP's arp-input does.
func (pl *l3Plane) arpInput(l *l3If, frame []byte) {
	a := frame[14:]
	if len(a) < 28 || binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != etherTypeIPv4 || a[4] != 6 || a[5] != 4 {
		l.port.drop(DropARPMalformed, 1)
		return
	}
	op := binary.BigEndian.Uint16(a[6:8])
	var sha [6]byte
	copy(sha[:], a[8:14])
	spa := netip.AddrFrom4([4]byte(a[14:18]))
	tpa := netip.AddrFrom4([4]byte(a[24:28]))
	if !l.owns(tpa) {
		l.port.drop(DropARPNotForUs, 1)
		return
	}
	if sha[0]&1 == 0 && !spa.IsUnspecified() {
		pl.mu.Lock()
		pl.arp[arpKey{l.port, spa}] = arpEntry{mac: sha, ok: true}
		pl.mu.Unlock()
	}
	if op != 1 { // a reply: learned above
		return
	}
	bp := pl.bufs.Get().(*[]byte)
	out := buildARP((*bp)[:0], 2, l.mac, tpa, sha, spa, sha)
	l.port.transmit(l.port, out)
	*bp = out
	pl.bufs.Put(bp)
}

// buildARP appends an Ethernet ARP packet to b.
func buildARP(b []byte, op uint16, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr, ethDst [6]byte) []byte {
	b = append(b, ethDst[:]...)
	b = append(b, sha[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeARP)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha[:]...)
	s4, t4 := spa.As4(), tpa.As4()
	b = append(b, s4[:]...)
	b = append(b, tha[:]...)
	b = append(b, t4[:]...)
	for len(b) < 60 { // Ethernet minimum (without FCS)
		b = append(b, 0)
	}
	return b
}

// ip4Input terminates VXLAN addressed to one of l's addresses.
func (pl *l3Plane) ip4Input(s *l3Snap, l *l3If, frame []byte) {
	p := l.port
	ip := frame[14:]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		p.drop(DropIP4Malformed, 1)
		return
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total < ihl || total > len(ip) {
		p.drop(DropIP4Malformed, 1)
		return
	}
	if checksum(ip[:ihl]) != 0 {
		p.drop(DropIP4Checksum, 1)
		return
	}
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	if !l.owns(dst) {
		p.drop(DropIP4NotForUs, 1)
		return
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // MF or a fragment offset
		p.drop(DropIP4Fragment, 1)
		return
	}
	if ip[9] != 17 {
		p.drop(DropIP4UnknownProto, 1)
		return
	}
	udp := ip[ihl:total]
	if len(udp) < 8 || int(binary.BigEndian.Uint16(udp[4:6])) != len(udp) {
		p.drop(DropIP4Malformed, 1)
		return
	}
	if binary.BigEndian.Uint16(udp[2:4]) != vxlanPort {
		p.drop(DropUDPNoListener, 1)
		return
	}
	// As VPP's ip4-local: a non-zero checksum must be right. A Linux sender
	// over a veth leaves it to an offload that never happens (VPP counts
	// "bad udp checksum"), so a kernel VXLAN peer needs noudpcsum.
	if binary.BigEndian.Uint16(udp[6:8]) != 0 && udpChecksum(ip[12:16], ip[16:20], udp) != 0 {
		p.drop(DropUDPChecksum, 1)
		return
	}
	vx := udp[8:]
	if len(vx) < 8+14 || vx[0]&0x08 == 0 {
		p.drop(DropVxlanBadHeader, 1)
		return
	}
	vni := uint32(vx[4])<<16 | uint32(vx[5])<<8 | uint32(vx[6])
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	t := s.tunnels[vxKey{remote: src, local: dst, vni: vni}]
	if t == nil {
		p.drop(DropVxlanNoTunnel, 1)
		return
	}
	t.Receive(vx[8:])
}

// checksum is the Internet checksum of b (0 when b holds a correct one).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// udpChecksum folds the IPv4 pseudo-header and the UDP datagram; 0 (or
// 0xffff's complement) means the datagram's checksum is right.
func udpChecksum(src, dst, udp []byte) uint16 {
	var sum uint32
	for _, b := range [][]byte{src, dst} {
		sum += uint32(binary.BigEndian.Uint16(b[0:2])) + uint32(binary.BigEndian.Uint16(b[2:4]))
	}
	sum += 17 + uint32(len(udp))
	for i := 0; i+1 < len(udp); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(udp[i:]))
	}
	if len(udp)%2 == 1 {
		sum += uint32(udp[len(udp)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// vxlanDriver is a tunnel interface's transmit side: it encapsulates and
// sends through the AF_PACKET interface whose prefix holds the destination.
type vxlanDriver struct {
	pl   *l3Plane
	spec vxlanSpec
}

func (d *vxlanDriver) Close() error { return nil }

func (d *vxlanDriver) Transmit(frame []byte) error {
	s := d.pl.snap.Load()
	out := s.route(d.spec.dst)
	if out == nil {
		return ErrNoRoute
	}
	mac, ok := d.pl.resolve(out, d.spec.dst, d.spec.src)
	if !ok {
		return ErrARPPending
	}
	bp := d.pl.bufs.Get().(*[]byte)
	pkt := d.encap((*bp)[:0], out.mac, mac, frame)
	out.port.transmit(out.port, pkt) // drops on a down uplink count on the uplink (vppsim; VPP counts them on the rx interface)
	*bp = pkt
	d.pl.bufs.Put(bp)
	return nil
}

// encap appends the encapsulated frame to b.
func (d *vxlanDriver) encap(b []byte, srcMAC, dstMAC [6]byte, frame []byte) []byte {
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	ipStart := len(b)
	total := 20 + 8 + 8 + len(frame)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0, 0, encapTTL, 17, 0, 0)
	s4, d4 := d.spec.src.As4(), d.spec.dst.As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	binary.BigEndian.PutUint16(b[ipStart+10:], checksum(b[ipStart:ipStart+20]))
	b = binary.BigEndian.AppendUint16(b, flowPort(frame))
	b = binary.BigEndian.AppendUint16(b, d.spec.dstPort)
	b = binary.BigEndian.AppendUint16(b, uint16(8+8+len(frame)))
	b = append(b, 0, 0) // no UDP checksum over IPv4, as VPP
	b = append(b, 0x08, 0, 0, 0, byte(d.spec.vni>>16), byte(d.spec.vni>>8), byte(d.spec.vni), 0)
	return append(b, frame...)
}

// flowPort is the UDP source port: a hash of the inner Ethernet header in
// the ephemeral range, so one flow keeps one port (RFC 7348 §5).
func flowPort(frame []byte) uint16 {
	h := fnv.New32a()
	n := min(len(frame), 14)
	_, _ = h.Write(frame[:n])
	return uint16(49152 + h.Sum32()%16384)
}

// resolve returns the MAC of dst on l, sending an ARP request (at most one
// per arpRetry) when it is not known yet.
func (pl *l3Plane) resolve(l *l3If, dst, src netip.Addr) ([6]byte, bool) {
	k := arpKey{l.port, dst}
	pl.mu.Lock()
	e := pl.arp[k]
	if e.ok {
		pl.mu.Unlock()
		return e.mac, true
	}
	now := time.Now()
	ask := now.Sub(e.askedAt) >= arpRetry
	if ask {
		e.askedAt = now
		pl.arp[k] = e
	}
	pl.mu.Unlock()
	if ask {
		if !l.owns(src) && len(l.addrs) > 0 {
			src = l.addrs[0].Addr()
		}
		bp := pl.bufs.Get().(*[]byte)
		req := buildARP((*bp)[:0], 1, l.mac, src, [6]byte{}, dst, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		l.port.transmit(l.port, req)
		*bp = req
		pl.bufs.Put(bp)
	}
	return [6]byte{}, false
}
