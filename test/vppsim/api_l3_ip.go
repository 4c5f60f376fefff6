package vppsim

import (
	"fmt"
	"net/netip"
	"sort"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_neighbor"
	"go.fd.io/govpp/binapi/ip_types"
)

// Return values VPP 25.10 gives for the IP calls below (seen on the real
// thing, see README): no such table, a route via an unknown interface, an
// interface that still has an address, unnumbered across tables.
const (
	errNoSuchFib                int32 = -3
	errNoMatchingInterface      int32 = -54
	errAddressFoundForInterface int32 = -114
)

// tableID names one IP table.
type tableID struct {
	id uint32
	v6 bool
}

// ipTable is one VPP FIB table as the API sees it.
type ipTable struct {
	name string
	// api: the table was added by ip_table_add_del (or is table 0); binds
	// counts interfaces in it. VPP frees a table when both are gone.
	api    bool
	binds  int
	routes map[netip.Prefix]*ipRoute
}

type ipRoute struct {
	stats uint32
	paths []fib_types.FibPath
}

type neighKey struct {
	sw   uint32
	addr ip_types.Address
}

// ipTables is the simulator's IP control plane: tables, API routes, IP
// neighbors and unnumbered bindings. It is state, reset on a restart.
type ipTables struct {
	tables    map[tableID]*ipTable
	neighbors map[neighKey]ip_neighbor.IPNeighbor
	// unnumbered maps an unnumbered interface to the one it borrows from.
	unnumbered map[uint32]uint32
	stats      uint32
	proxy      proxyARP // api_l3_proxyarp.go
}

func newIPTables() *ipTables {
	t := &ipTables{tables: map[tableID]*ipTable{}, neighbors: map[neighKey]ip_neighbor.IPNeighbor{}, unnumbered: map[uint32]uint32{}}
	t.tables[tableID{0, false}] = &ipTable{name: "ipv4-VRF:0", api: true, routes: map[netip.Prefix]*ipRoute{}}
	t.tables[tableID{0, true}] = &ipTable{name: "ipv6-VRF:0", api: true, routes: map[netip.Prefix]*ipRoute{}}
	return t
}

// forget drops what hangs on a deleted interface: its neighbors, its
// unnumbered binding, its table binding and route paths through it. VPP
// keeps an unnumbered binding whose address source was deleted (its dump
// still shows it), so those stay.
func (t *ipTables) forget(ifc *iface) {
	sw := ifc.idx
	t.bind(ifc, false, 0)
	t.bind(ifc, true, 0)
	for k := range t.neighbors {
		if k.sw == sw {
			delete(t.neighbors, k)
		}
	}
	delete(t.unnumbered, sw)
	for _, tb := range t.tables {
		for pf, r := range tb.routes {
			kept := r.paths[:0]
			for _, p := range r.paths {
				if p.SwIfIndex != sw {
					kept = append(kept, p)
				}
			}
			r.paths = kept
			if len(kept) == 0 {
				delete(tb.routes, pf)
			}
		}
	}
}

// bind moves an interface's binding from one table to another.
func (t *ipTables) bind(ifc *iface, v6 bool, id uint32) {
	af := 0
	if v6 {
		af = 1
	}
	if old := ifc.table[af]; old != 0 {
		if tb := t.tables[tableID{old, v6}]; tb != nil {
			tb.binds--
			if tb.binds <= 0 && !tb.api {
				delete(t.tables, tableID{old, v6})
			}
		}
	}
	if id != 0 {
		t.tables[tableID{id, v6}].binds++
	}
	ifc.table[af] = id
}

// specialRoutes4 are the entries VPP puts in every IPv4 table.
var specialRoutes4 = []string{"0.0.0.0/0", "0.0.0.0/32", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32"}

func registerIPHandlers(h map[string]handlerFunc) {
	registerProxyARPHandlers(h)
	on(h, func(st *state, c *client, m *ip.IPTableAddDel) []api.Message {
		t := st.ipt
		k := tableID{m.Table.TableID, m.Table.IsIP6}
		tb := t.tables[k]
		if m.IsAdd {
			if tb == nil {
				name := m.Table.Name
				if name == "" {
					fam := "ipv4"
					if k.v6 {
						fam = "ipv6"
					}
					name = fmt.Sprintf("%s-VRF:%d", fam, k.id)
				}
				tb = &ipTable{name: name, routes: map[netip.Prefix]*ipRoute{}}
				t.tables[k] = tb
				c.log.Info("ip table added", "table_id", k.id, "ipv6", k.v6)
			}
			tb.api = true // VPP keeps the first name a table got
			return []api.Message{&ip.IPTableAddDelReply{}}
		}
		// Deleting table 0 or an unknown table succeeds and does nothing.
		if k.id != 0 && tb != nil {
			tb.api = false
			clear(tb.routes) // the API's routes go with the API's lock
			if tb.binds <= 0 {
				delete(t.tables, k)
			}
			c.log.Info("ip table deleted", "table_id", k.id, "ipv6", k.v6)
		}
		return []api.Message{&ip.IPTableAddDelReply{}}
	})
	on(h, func(st *state, c *client, m *ip.IPTableDump) []api.Message {
		ids := make([]tableID, 0, len(st.ipt.tables))
		for k := range st.ipt.tables {
			ids = append(ids, k)
		}
		sort.Slice(ids, func(i, j int) bool {
			if ids[i].v6 != ids[j].v6 {
				return !ids[i].v6
			}
			return ids[i].id < ids[j].id
		})
		out := make([]api.Message, 0, len(ids))
		for _, k := range ids {
			out = append(out, &ip.IPTableDetails{Table: ip.IPTable{TableID: k.id, IsIP6: k.v6, Name: st.ipt.tables[k].name}})
		}
		return out
	})
	on(h, func(st *state, c *client, m *ip.SetIPFlowHashV2) []api.Message {
		rep := &ip.SetIPFlowHashV2Reply{}
		if st.ipt.tables[tableID{m.TableID, m.Af == ip_types.ADDRESS_IP6}] == nil {
			rep.Retval = errNoSuchFib
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *ip.IPRouteAddDel) []api.Message {
		rv, stats := st.routeAddDel(m)
		return []api.Message{&ip.IPRouteAddDelReply{Retval: rv, StatsIndex: stats}}
	})
	on(h, func(st *state, c *client, m *ip.IPRouteDump) []api.Message {
		tb := st.ipt.tables[tableID{m.Table.TableID, m.Table.IsIP6}]
		if tb == nil {
			return nil
		}
		var out []api.Message
		if !m.Table.IsIP6 {
			for _, s := range specialRoutes4 {
				pf, _ := ip_types.ParsePrefix(s)
				out = append(out, &ip.IPRouteDetails{Route: ip.IPRoute{TableID: m.Table.TableID, Prefix: pf, NPaths: 1,
					Paths: []fib_types.FibPath{{SwIfIndex: ^uint32(0), Weight: 1, Type: fib_types.FIB_API_PATH_TYPE_DROP, Proto: fib_types.FIB_API_PATH_NH_PROTO_IP4}}}})
			}
		}
		pfs := make([]netip.Prefix, 0, len(tb.routes))
		for pf := range tb.routes {
			pfs = append(pfs, pf)
		}
		sort.Slice(pfs, func(i, j int) bool { return pfs[i].String() < pfs[j].String() })
		for _, pf := range pfs {
			r := tb.routes[pf]
			p, _ := ip_types.ParsePrefix(pf.String())
			out = append(out, &ip.IPRouteDetails{Route: ip.IPRoute{TableID: m.Table.TableID, StatsIndex: r.stats, Prefix: p,
				NPaths: uint8(len(r.paths)), Paths: append([]fib_types.FibPath(nil), r.paths...)}})
		}
		return out
	})
	on(h, func(st *state, c *client, m *ip_neighbor.IPNeighborAddDel) []api.Message {
		rep := &ip_neighbor.IPNeighborAddDelReply{StatsIndex: ^uint32(0)}
		sw := uint32(m.Neighbor.SwIfIndex)
		if st.get(sw) == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		k := neighKey{sw, m.Neighbor.IPAddress}
		if !m.IsAdd {
			if _, ok := st.ipt.neighbors[k]; !ok {
				rep.Retval = errNoSuchEntry
			}
			delete(st.ipt.neighbors, k)
			return []api.Message{rep}
		}
		st.ipt.neighbors[k] = m.Neighbor
		rep.StatsIndex = sw
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *ip_neighbor.IPNeighborDump) []api.Message {
		keys := make([]neighKey, 0, len(st.ipt.neighbors))
		for k := range st.ipt.neighbors {
			if (m.SwIfIndex == ^interface_types.InterfaceIndex(0) || uint32(m.SwIfIndex) == k.sw) && k.addr.Af == m.Af {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].sw != keys[j].sw {
				return keys[i].sw < keys[j].sw
			}
			return keys[i].addr.String() < keys[j].addr.String()
		})
		out := make([]api.Message, 0, len(keys))
		for _, k := range keys {
			out = append(out, &ip_neighbor.IPNeighborDetails{Neighbor: st.ipt.neighbors[k]})
		}
		return out
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceSetTable) []api.Message {
		rep := &interfaces.SwInterfaceSetTableReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		switch {
		case ifc == nil:
			rep.Retval = errInvalidSwIfIndex
		case m.VrfID != 0 && st.ipt.tables[tableID{m.VrfID, m.IsIPv6}] == nil:
			rep.Retval = errNoSuchFib
		case hasAddress(ifc, m.IsIPv6):
			// Even when the table does not change.
			rep.Retval = errAddressFoundForInterface
		default:
			st.ipt.bind(ifc, m.IsIPv6, m.VrfID)
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceGetTable) []api.Message {
		rep := &interfaces.SwInterfaceGetTableReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		if m.IsIPv6 {
			rep.VrfID = ifc.table[1]
		} else {
			rep.VrfID = ifc.table[0]
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceSetUnnumbered) []api.Message {
		rep := &interfaces.SwInterfaceSetUnnumberedReply{}
		src, un := st.get(uint32(m.SwIfIndex)), st.get(uint32(m.UnnumberedSwIfIndex))
		switch {
		case un == nil:
			rep.Retval = errInvalidSwIfIndex
		case src == nil:
			rep.Retval = errInvalidSwIfIndex2
		case !m.IsAdd:
			delete(st.ipt.unnumbered, un.idx) // succeeds whether bound or not
		case src.table != un.table:
			rep.Retval = errUnexpectedIntfState
		default:
			st.ipt.unnumbered[un.idx] = src.idx
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *ip.IPUnnumberedDump) []api.Message {
		sws := make([]uint32, 0, len(st.ipt.unnumbered))
		for sw := range st.ipt.unnumbered {
			if m.SwIfIndex == ^interface_types.InterfaceIndex(0) || uint32(m.SwIfIndex) == sw {
				sws = append(sws, sw)
			}
		}
		sort.Slice(sws, func(i, j int) bool { return sws[i] < sws[j] })
		out := make([]api.Message, 0, len(sws))
		for _, sw := range sws {
			out = append(out, &ip.IPUnnumberedDetails{SwIfIndex: interface_types.InterfaceIndex(sw),
				IPSwIfIndex: interface_types.InterfaceIndex(st.ipt.unnumbered[sw])})
		}
		return out
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceSetRxMode) []api.Message {
		rep := &interfaces.SwInterfaceSetRxModeReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		switch {
		case ifc == nil:
			rep.Retval = errInvalidSwIfIndex
		case m.QueueIDValid && m.QueueID >= rxQueues(ifc):
			// VPP 25.10 for a queue the interface does not have (a
			// loopback, a memif without its peer).
			rep.Retval = errUnimplemented
		case m.QueueIDValid:
			if ifc.rxModes == nil {
				ifc.rxModes = map[uint32]interface_types.RxMode{}
			}
			ifc.rxModes[m.QueueID] = m.Mode
		case rxQueues(ifc) == 0 && (ifc.kind == kindMemif || ifc.kind == kindVhostUser):
			// VPP 25.10: accepted, and without effect: a memif's queues
			// are created when its peer connects, in the interface's
			// default mode, which only a set with queues present changes.
		default:
			// Every queue, and the ones to come.
			ifc.rxModes = map[uint32]interface_types.RxMode{^uint32(0): m.Mode}
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.SwInterfaceRxPlacementDump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if m.SwIfIndex != ^interface_types.InterfaceIndex(0) && uint32(m.SwIfIndex) != ifc.idx {
				continue
			}
			for q := uint32(0); q < rxQueues(ifc); q++ {
				out = append(out, &interfaces.SwInterfaceRxPlacementDetails{SwIfIndex: interface_types.InterfaceIndex(ifc.idx),
					QueueID: q, Mode: ifc.rxMode(q)})
			}
		}
		return out
	})
}

// rxQueues is how many rx queues VPP would have on the interface: none on
// a loopback or sub-interface, none on a memif or vhost-user interface
// until its peer connects.
func rxQueues(ifc *iface) uint32 {
	switch ifc.kind {
	case kindMemif:
		if !ifc.linkUp {
			return 0
		}
		if ifc.memif != nil && ifc.memif.RxQueues > 0 {
			return uint32(ifc.memif.RxQueues)
		}
		return 1
	case kindVhostUser:
		if !ifc.linkUp {
			return 0
		}
		return 1
	case kindTap, kindAfPacket:
		return 1
	}
	return 0
}

// rxMode is a queue's mode: set for it, set for all, or polling.
func (ifc *iface) rxMode(q uint32) interface_types.RxMode {
	if m, ok := ifc.rxModes[q]; ok {
		return m
	}
	if m, ok := ifc.rxModes[^uint32(0)]; ok && m != interface_types.RX_MODE_API_DEFAULT {
		return m
	}
	return interface_types.RX_MODE_API_POLLING
}

func hasAddress(ifc *iface, v6 bool) bool {
	for _, a := range ifc.addrs {
		if (a.Address.Af == ip_types.ADDRESS_IP6) == v6 {
			return true
		}
	}
	return false
}

// routeAddDel mirrors ip_route_add_del: the table must exist, every path's
// interface too; without is_multipath an add replaces the paths and a
// delete removes the prefix; deleting what is not there succeeds.
func (st *state) routeAddDel(m *ip.IPRouteAddDel) (int32, uint32) {
	v6 := m.Route.Prefix.Address.Af == ip_types.ADDRESS_IP6
	tb := st.ipt.tables[tableID{m.Route.TableID, v6}]
	if tb == nil {
		return errNoSuchFib, ^uint32(0)
	}
	pf, err := netip.ParsePrefix(m.Route.Prefix.String())
	if err != nil {
		return errInvalidValue, ^uint32(0)
	}
	pf = pf.Masked()
	paths := make([]fib_types.FibPath, 0, len(m.Route.Paths))
	for _, p := range m.Route.Paths {
		if p.SwIfIndex != ^uint32(0) {
			if st.get(p.SwIfIndex) == nil {
				return errNoMatchingInterface, ^uint32(0)
			}
			p.TableID = 0 // an attached path reports no table
		}
		if p.Weight == 0 {
			p.Weight = 1
		}
		paths = append(paths, p)
	}
	r := tb.routes[pf]
	if !m.IsAdd {
		if r == nil {
			return 0, ^uint32(0)
		}
		if !m.IsMultipath {
			delete(tb.routes, pf)
			return 0, ^uint32(0)
		}
		for _, p := range paths {
			for i, q := range r.paths {
				if samePath(p, q) {
					r.paths = append(r.paths[:i:i], r.paths[i+1:]...)
					break
				}
			}
		}
		if len(r.paths) == 0 {
			delete(tb.routes, pf)
		}
		return 0, ^uint32(0)
	}
	if r == nil {
		st.ipt.stats++
		r = &ipRoute{stats: st.ipt.stats}
		tb.routes[pf] = r
	}
	if !m.IsMultipath {
		r.paths = paths
		return 0, r.stats
	}
	for _, p := range paths {
		found := false
		for i, q := range r.paths {
			if samePath(p, q) {
				r.paths[i], found = p, true
				break
			}
		}
		if !found {
			r.paths = append(r.paths, p)
		}
	}
	return 0, r.stats
}

func samePath(a, b fib_types.FibPath) bool {
	return a.SwIfIndex == b.SwIfIndex && a.Type == b.Type && a.Nh.Address == b.Nh.Address &&
		(a.SwIfIndex != ^uint32(0) || a.TableID == b.TableID)
}
