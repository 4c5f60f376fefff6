package vppsim

import (
	"sort"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
)

func registerL2Handlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *l2.SwInterfaceSetL2Xconnect) []api.Message {
		rep := &l2.SwInterfaceSetL2XconnectReply{}
		rx := st.get(uint32(m.RxSwIfIndex))
		if rx == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		if !m.Enable {
			st.clearL2(rx)
			return []api.Message{rep}
		}
		tx := st.get(uint32(m.TxSwIfIndex))
		if tx == nil {
			rep.Retval = errInvalidSwIfIndex // VPP 25.10 answers -2 for the tx side too
			return []api.Message{rep}
		}
		// One direction only, rx -> tx; the reverse is a second call, as in VPP.
		st.setXconnect(rx, tx)
		c.log.Info("l2 xconnect", "rx", rx.name, "tx", tx.name)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *l2.L2XconnectDump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if ifc.l2 == l2Xconnect {
				out = append(out, &l2.L2XconnectDetails{
					RxSwIfIndex: interface_types.InterfaceIndex(ifc.idx),
					TxSwIfIndex: interface_types.InterfaceIndex(ifc.xcTx),
				})
			}
		}
		return out
	})
	on(h, func(st *state, c *client, m *l2.BridgeDomainAddDelV2) []api.Message {
		rep := &l2.BridgeDomainAddDelV2Reply{BdID: m.BdID}
		if m.IsAdd {
			id := m.BdID
			if id == ^uint32(0) {
				id = st.unusedBDID()
			}
			rep.BdID = id
			switch {
			case id == 0:
				rep.Retval = errBDAlreadyExists // bd 0 always exists in VPP
			case id > bdIDMax:
				rep.Retval = errBDIDExceedMax
			case st.bds[id] != nil:
				rep.Retval = errBDAlreadyExists
			default:
				st.bds[id] = st.newBD(id, m.Flood, m.UuFlood, m.Forward, m.Learn, m.ArpTerm, m.ArpUfwd, m.MacAge, m.BdTag)
				c.log.Info("bridge domain added", "bd_id", id)
			}
			return []api.Message{rep}
		}
		bd := st.bds[m.BdID]
		switch {
		case m.BdID == 0:
			rep.Retval = errBDNotModifiable
		case bd == nil:
			rep.Retval = errNoSuchEntry
		case len(bd.members) > 0:
			rep.Retval = errBDInUse
		default:
			delete(st.bds, m.BdID)
			c.log.Info("bridge domain deleted", "bd_id", m.BdID)
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *l2.SwInterfaceSetL2Bridge) []api.Message {
		rep := &l2.SwInterfaceSetL2BridgeReply{}
		ifc := st.get(uint32(m.RxSwIfIndex))
		if ifc == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		if !m.Enable {
			st.clearL2(ifc)
			return []api.Message{rep}
		}
		if m.BdID > bdIDMax {
			rep.Retval = errBDIDExceedMax
			return []api.Message{rep}
		}
		bd := st.bds[m.BdID]
		if bd == nil {
			// l2_api.c uses bd_find_or_add_bd_index: joining creates the domain with
			// VPP's default flags.
			bd = st.newBD(m.BdID, true, true, true, true, false, false, 0, "")
			st.bds[m.BdID] = bd
		}
		if m.PortType == l2.L2_API_PORT_TYPE_BVI {
			for _, idx := range bd.members {
				if o := st.get(idx); o != nil && o != ifc && o.portType == uint32(l2.L2_API_PORT_TYPE_BVI) {
					rep.Retval = errBDAlreadyHasBVI
					return []api.Message{rep}
				}
			}
		}
		st.joinBridge(ifc, bd, m.Shg, uint32(m.PortType))
		c.log.Info("l2 bridge", "interface", ifc.name, "bd_id", bd.id)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *l2.BridgeDomainDump) []api.Message {
		// l2_api.c: a sw_if_index filter is unimplemented (no details), bd 0 is never
		// dumped, and domains come in bd_index order, not bd_id order.
		if m.SwIfIndex != ^interface_types.InterfaceIndex(0) || m.BdID == 0 {
			return nil
		}
		bds := make([]*bdState, 0, len(st.bds))
		for _, bd := range st.bds {
			bds = append(bds, bd)
		}
		sort.Slice(bds, func(i, j int) bool { return bds[i].index < bds[j].index })
		var out []api.Message
		for _, bd := range bds {
			id := bd.id
			if m.BdID != ^uint32(0) && m.BdID != id {
				continue
			}
			d := &l2.BridgeDomainDetails{
				BdID: id, Flood: bd.flood, UuFlood: bd.uuFlood, Forward: bd.forward, Learn: bd.learn,
				ArpTerm: bd.arpTerm, ArpUfwd: bd.arpUfwd, MacAge: bd.macAge, BdTag: bd.tag,
				BviSwIfIndex: ^interface_types.InterfaceIndex(0), UuFwdSwIfIndex: ^interface_types.InterfaceIndex(0),
			}
			for _, idx := range bd.members {
				ifc := st.get(idx)
				if ifc == nil {
					continue
				}
				switch l2.L2PortType(ifc.portType) {
				case l2.L2_API_PORT_TYPE_BVI:
					d.BviSwIfIndex = interface_types.InterfaceIndex(idx)
				case l2.L2_API_PORT_TYPE_UU_FWD:
					d.UuFwdSwIfIndex = interface_types.InterfaceIndex(idx)
				}
				d.SwIfDetails = append(d.SwIfDetails, l2.BridgeDomainSwIf{SwIfIndex: interface_types.InterfaceIndex(idx), Shg: ifc.shg})
			}
			d.NSwIfs = uint32(len(d.SwIfDetails))
			out = append(out, d)
		}
		return out
	})
	on(h, func(st *state, c *client, m *l2.L2fibAddDel) []api.Message {
		return []api.Message{&l2.L2fibAddDelReply{Retval: st.l2fibAddDel(m)}}
	})
}

func newBDState(id uint32, flood, uuFlood, forward, learn, arpTerm, arpUfwd bool, macAge uint8, tag string) *bdState {
	bd := &bdState{id: id, flood: flood, uuFlood: uuFlood, forward: forward, learn: learn,
		arpTerm: arpTerm, arpUfwd: arpUfwd, macAge: macAge, tag: tag, static: map[[6]byte]uint32{}}
	bd.fwd = newBridge(id)
	bd.fwd.flood, bd.fwd.uuFlood, bd.fwd.forwardOn, bd.fwd.learn = flood, uuFlood, forward, learn
	return bd
}

// newBD creates a bridge domain whose learned entries carry the simulator's clock, so
// the housekeeping loop can age them by mac_age.
func (st *state) newBD(id uint32, flood, uuFlood, forward, learn, arpTerm, arpUfwd bool, macAge uint8, tag string) *bdState {
	bd := newBDState(id, flood, uuFlood, forward, learn, arpTerm, arpUfwd, macAge, tag)
	bd.fwd.clock = st.clock
	// VPP's bd_index: the lowest free one, 0 being the placeholder bd 0.
	used := make(map[uint32]bool, len(st.bds))
	for _, o := range st.bds {
		used[o.index] = true
	}
	for bd.index = 1; used[bd.index]; bd.index++ {
	}
	return bd
}

// unusedBDID is bd_get_unused_id: clib's random_u32 from seed 0, cut to 24 bits,
// drawn again while taken.
func (st *state) unusedBDID() uint32 {
	seed := uint32(0)
	for {
		id := lcgNext(&seed) & bdIDMax
		if id != 0 && st.bds[id] == nil {
			return id
		}
	}
}

// l2fibAddDel mirrors vl_api_l2fib_add_del_t_handler: the domain must exist and, for an
// add, the interface must be in bridge mode.
func (st *state) l2fibAddDel(m *l2.L2fibAddDel) int32 {
	bd := st.bds[m.BdID]
	if bd == nil {
		return errNoSuchEntry
	}
	mac := [6]byte(m.Mac)
	if !m.IsAdd {
		bd.fwd.mu.Lock()
		defer bd.fwd.mu.Unlock()
		if _, ok := bd.fwd.fib[mac]; !ok {
			return errNoSuchEntry
		}
		delete(bd.static, mac)
		delete(bd.fwd.fib, mac)
		return 0
	}
	if m.FilterMac {
		// A filter entry drops frames to the MAC; VPP takes any sw_if_index.
		bd.fwd.mu.Lock()
		bd.fwd.fib[mac] = fibEntry{static: true, filter: true}
		bd.fwd.mu.Unlock()
		return 0
	}
	ifc := st.get(uint32(m.SwIfIndex))
	if ifc == nil || ifc.l2 != l2Bridge {
		return errInvalidSwIfIndex
	}
	if m.StaticMac {
		bd.static[mac] = ifc.idx
	}
	bd.fwd.mu.Lock()
	bd.fwd.fib[mac] = fibEntry{port: ifc.port, static: m.StaticMac, bvi: m.BviMac}
	bd.fwd.mu.Unlock()
	return 0
}
