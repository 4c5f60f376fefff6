package vppsim

import (
	"fmt"
	"iter"
	"log/slog"
	"sort"

	"go.fd.io/govpp/binapi/ip_types"
)

type ifKind int

const (
	kindLocal ifKind = iota
	kindLoopback
	kindMemif
	kindVhostUser
	kindTap
	kindAfPacket
	kindSub
	kindVxlan
)

var kindNames = [...]string{"local", "loopback", "memif", "vhost-user", "tap", "af-packet", "sub", "vxlan"}

func (k ifKind) String() string { return kindNames[k] }

// devTypes are the device class names VPP reports in interface_dev_type.
// A sub-interface reports its parent's (api_l3_subif.go).
var devTypes = [...]string{"local", "Loopback", "memif", "vhost-user", "virtio", "af-packet", "", "VXLAN"}

type l2Mode int

const (
	l2None l2Mode = iota
	l2Xconnect
	l2Bridge
)

// iface is one row of the interface table.
type iface struct {
	idx      uint32
	name     string
	kind     ifKind
	instance uint32 // loop/tap/vhost instance, memif id
	mac      [6]byte
	adminUp  bool
	linkUp   bool
	mtu      [4]uint32 // L3, IP4, IP6, MPLS
	linkMtu  uint16
	tag      string
	addrs    []ip_types.AddressWithPrefix
	table    [2]uint32 // IPv4, IPv6 table id (api_l3_ip.go)
	sub      *subSpec  // dot1q sub-interface (api_l3_subif.go)
	vtr      vtrSpec   // VLAN tag rewrite
	subs     []uint32  // sub-interfaces of this one
	rxModes  rxModeSet // sw_interface_set_rx_mode (api_l3_ip.go)

	l2       l2Mode
	xcTx     uint32
	bdID     uint32
	shg      uint8
	portType uint32

	memif         *MemifSpec
	memifZeroCopy bool
	vhost         *VhostUserSpec
	tap           *tapSpec
	afp           *afpSpec
	vxlan         *vxlanSpec

	port *Port
	// xcIn lists the interfaces cross-connected towards this one, so deleting it
	// clears theirs without a scan of the table.
	xcIn []uint32
}

// dropXcIn forgets that rx is cross-connected to ifc.
func (ifc *iface) dropXcIn(rx uint32) {
	for i, x := range ifc.xcIn {
		if x == rx {
			ifc.xcIn = append(ifc.xcIn[:i:i], ifc.xcIn[i+1:]...)
			return
		}
	}
}

type tapSpec struct {
	id                 uint32
	hostIfName, hostNS string
	hostBridge         string
	hostMTU            uint32
	hostMAC            [6]byte
	flags              uint32
	rxRing, txRing     uint16
	hostIP4            ip_types.IP4AddressWithPrefix
	hostIP6            ip_types.IP6AddressWithPrefix
}

type afpSpec struct {
	hostIfName string
}

type bdState struct {
	id                                      uint32
	index                                   uint32 // VPP's bd_index: dump order
	flood, uuFlood, forward, learn, arpTerm bool
	arpUfwd                                 bool
	macAge                                  uint8
	tag                                     string
	members                                 []uint32 // sw_if_index in join order
	static                                  map[[6]byte]uint32
	fwd                                     *bridge
}

// ifEvent is an interface change subscribers must hear about. As in VPP's
// vpe-link-state-process, flags hold the "up" events seen (admin up, link up), not
// the interface's state: a link-up event on an admin-up memif says LINK_UP only.
type ifEvent struct {
	idx     uint32
	flags   uint32
	deleted bool
}

// state is everything a VPP restart loses. It is guarded by Sim.stMu.
type state struct {
	onLink  func(*Port, bool)
	drivers DriverFactory
	log     *slog.Logger

	tbl ifTable
	// free holds released sw_if_indexes; VPP's pools hand out the most recently freed
	// index first, so a deleted interface's index is reused by the next create.
	free    []uint32
	next    uint32
	sockets map[uint32]string // memif socket id -> filename
	// addrOwner finds the interface holding an address without scanning them all.
	addrOwner map[ip_types.Address]uint32
	bds       map[uint32]*bdState
	ipt       *ipTables // IP tables, routes, neighbors, unnumbered (api_l3_ip.go)
	macSeq    uint32
	events    []ifEvent
	clock     *coarseClock
	// l3 is the IPv4/VXLAN packet path (vxlan.go), created on first use.
	l3 *l3Plane
	// ifChanged records that interfaces were added or deleted since the last API call,
	// so the stats segment is refreshed at once.
	ifChanged bool
}

const memifDefaultSocket = "/run/vpp/memif.sock"

func newState(onLink func(*Port, bool), drivers DriverFactory, log *slog.Logger) *state {
	st := &state{
		onLink:    onLink,
		drivers:   drivers,
		log:       log,
		tbl:       newIfTable(),
		sockets:   map[uint32]string{0: memifDefaultSocket},
		bds:       map[uint32]*bdState{},
		addrOwner: map[ip_types.Address]uint32{},
		ipt:       newIPTables(),
	}
	st.add(&iface{name: "local0", kind: kindLocal})
	return st
}

// add allocates a sw_if_index for ifc and creates its port.
func (st *state) add(ifc *iface) *iface {
	if n := len(st.free); n > 0 {
		ifc.idx = st.free[n-1]
		st.free = st.free[:n-1]
	} else {
		ifc.idx = st.next
		st.next++
	}
	if ifc.kind != kindLocal {
		ifc.mtu = [4]uint32{9000, 0, 0, 0}
		ifc.linkMtu = 9000
	}
	ifc.port = newPort(ifc.idx, ifc.name, st.onLink)
	st.tbl.insert(ifc)
	st.ifChanged = true
	if ifc.kind != kindLocal {
		// VPP tells subscribers about every new interface; a link that is up from
		// creation (tap, af_packet) adds its link-up event to the same batch.
		st.events = append(st.events, ifEvent{idx: ifc.idx, flags: ifc.flags() & 2})
	}
	return ifc
}

// remove deletes an interface with everything hanging on it (L2 config, addresses,
// xconnects pointing at it), as VPP does when an interface is deleted.
func (st *state) remove(ifc *iface) {
	// VPP deletes a hardware interface's sub-interfaces with it.
	for len(ifc.subs) > 0 {
		if s := st.get(ifc.subs[0]); s != nil && s.sub != nil && s.sub.parent == ifc.idx {
			st.remove(s)
		} else {
			ifc.subs = ifc.subs[1:]
		}
	}
	if ifc.sub != nil {
		if p := st.get(ifc.sub.parent); p != nil {
			p.dropSub(ifc.idx)
		}
	}
	st.ipt.forget(ifc)
	st.clearL2(ifc)
	for len(ifc.xcIn) > 0 {
		if other := st.get(ifc.xcIn[0]); other != nil && other.l2 == l2Xconnect && other.xcTx == ifc.idx {
			st.clearL2(other)
		} else {
			ifc.xcIn = ifc.xcIn[1:] // cannot happen; never loop on a stale entry
		}
	}
	for _, a := range ifc.addrs {
		delete(st.addrOwner, a.Address)
	}
	for _, bd := range st.bds {
		bd.fwd.mu.Lock()
		for mac, e := range bd.fwd.fib {
			if e.port == ifc.port {
				delete(bd.fwd.fib, mac)
				delete(bd.static, mac)
			}
		}
		bd.fwd.mu.Unlock()
	}
	if err := ifc.port.closeDriver(); err != nil {
		st.log.Warn("driver close failed", "sw_if_index", ifc.idx, "name", ifc.name, "err", err)
	}
	st.ifChanged = true
	st.tbl.delete(ifc)
	st.free = append(st.free, ifc.idx)
	st.events = append(st.events, ifEvent{idx: ifc.idx, deleted: true})
	if ifc.l3Kind() {
		st.syncL3()
	}
}

func (st *state) closeAll() {
	for ifc := range st.tbl.all() {
		if err := ifc.port.closeDriver(); err != nil {
			st.log.Warn("driver close failed", "sw_if_index", ifc.idx, "name", ifc.name, "err", err)
		}
	}
}

func (st *state) get(idx uint32) *iface { return st.tbl.get(idx) }

// all yields interfaces in sw_if_index order, the order VPP dumps them in.
func (st *state) all() iter.Seq[*iface] { return st.tbl.all() }

func (st *state) freeInstance(kind ifKind) uint32 { return st.tbl.instances[kind].lowestFree() }

func (st *state) instanceUsed(kind ifKind, inst uint32) bool {
	return st.tbl.instances[kind].used[inst]
}

// newMAC returns a locally administered address in VPP's 02:fe prefix; vppsim counts
// instead of drawing random bytes so test output is reproducible.
func (st *state) newMAC() [6]byte {
	st.macSeq++
	s := st.macSeq
	return [6]byte{0x02, 0xfe, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

func (ifc *iface) flags() uint32 {
	var f uint32
	if ifc.adminUp {
		f |= 1
	}
	if ifc.linkUp {
		f |= 2
	}
	return f
}

// setAdmin changes admin state. A loopback's link follows its admin state in VPP; tap
// and af_packet links are up from creation; memif and vhost-user links follow their peer.
func (st *state) setAdmin(ifc *iface, up bool) {
	before := ifc.flags()
	ifc.adminUp = up
	ifc.port.adminUp.Store(up)
	if ifc.kind == kindLoopback {
		ifc.linkUp = up
	}
	if ifc.flags() != before {
		// an admin event, plus a link event where the link followed
		st.events = append(st.events, ifEvent{idx: ifc.idx, flags: ifc.flags() & 1})
		if (ifc.flags()^before)&2 != 0 {
			st.events = append(st.events, ifEvent{idx: ifc.idx, flags: ifc.flags() & 2})
		}
	}
}

func (st *state) setLink(ifc *iface, up bool) {
	if ifc.linkUp == up {
		return
	}
	ifc.linkUp = up
	switch {
	case !up && ifc.kind == kindMemif:
		// As FD.io VPP 25.10: the peer's queues go with it and come back
		// polling at its next connect, whatever mode was set.
		ifc.rxModes = nil
	case !up && ifc.kind == kindVhostUser:
		for q := range ifc.rxModes { // per-queue modes go with the queues
			if q != ^uint32(0) {
				delete(ifc.rxModes, q)
			}
		}
	}
	st.events = append(st.events, ifEvent{idx: ifc.idx, flags: ifc.flags() & 2})
}

// clearL2 returns the interface to L3 mode, leaving any bridge domain.
func (st *state) clearL2(ifc *iface) {
	switch ifc.l2 {
	case l2Bridge:
		if bd := st.bds[ifc.bdID]; bd != nil {
			for i, m := range bd.members {
				if m == ifc.idx {
					bd.members = append(bd.members[:i:i], bd.members[i+1:]...)
					break
				}
			}
			st.syncBridge(bd)
			bd.fwd.forget(ifc.port)
		}
	case l2Xconnect:
		if tx := st.get(ifc.xcTx); tx != nil {
			tx.dropXcIn(ifc.idx)
		}
	}
	ifc.l2, ifc.xcTx, ifc.bdID, ifc.shg, ifc.portType = l2None, 0, 0, 0, 0
	ifc.port.fwd.Store(nil)
}

func (st *state) setXconnect(rx, tx *iface) {
	st.clearL2(rx)
	rx.l2, rx.xcTx = l2Xconnect, tx.idx
	tx.xcIn = append(tx.xcIn, rx.idx)
	rx.port.fwd.Store(&l2Forward{xconnect: tx.port})
}

func (st *state) joinBridge(ifc *iface, bd *bdState, shg uint8, portType uint32) {
	st.clearL2(ifc)
	ifc.l2, ifc.bdID, ifc.shg, ifc.portType = l2Bridge, bd.id, shg, portType
	if portType == 1 { // BVI: VPP keeps it first in the member list (bd_add_member)
		bd.members = append([]uint32{ifc.idx}, bd.members...)
	} else {
		bd.members = append(bd.members, ifc.idx)
	}
	st.syncBridge(bd)
	ifc.port.fwd.Store(&l2Forward{bridge: bd.fwd, shg: shg})
}

// syncBridge publishes the member list to the forwarder.
func (st *state) syncBridge(bd *bdState) {
	ms := make([]member, 0, len(bd.members))
	for _, idx := range bd.members {
		if ifc := st.get(idx); ifc != nil {
			ms = append(ms, member{port: ifc.port, shg: ifc.shg})
		}
	}
	bd.fwd.setMembers(ms)
}

// takeEvents returns the events of one batch (one API call, one driver link change)
// the way VPP's vpe-link-state-process sends them: one event per interface, in
// sw_if_index order, its flags the OR of the up events seen, deleted if it went.
func (st *state) takeEvents() []ifEvent {
	ev := st.events
	st.events = nil
	if len(ev) < 2 {
		return ev
	}
	byIdx := make(map[uint32]int, len(ev))
	out := ev[:0:0]
	for _, e := range ev {
		if i, ok := byIdx[e.idx]; ok {
			out[i].flags |= e.flags
			out[i].deleted = out[i].deleted || e.deleted
			continue
		}
		byIdx[e.idx] = len(out)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].idx < out[j].idx })
	return out
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
