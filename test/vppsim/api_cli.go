package vppsim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/vlib"
)

func registerCLIHandlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *vlib.CliInband) []api.Message {
		out, ok := st.cli(c.sim.cfg.Version, m.Cmd)
		rep := &vlib.CliInbandReply{Reply: out}
		if !ok {
			// VPP answers an unknown command with retval -1 and the parse error as text.
			c.log.Debug("unknown cli command", "cmd", m.Cmd)
			rep.Retval = errUnspecified
		}
		return []api.Message{rep}
	})
}

// cli runs one debug CLI command. Only show commands are known.
func (st *state) cli(version, cmd string) (string, bool) {
	f := strings.Fields(cmd)
	switch {
	case len(f) == 0:
		return "", true
	case matches(f, "show", "version"):
		return fmt.Sprintf("vpp v%s built by vppsim on vppsim at vppsim\n", version), true
	case matches(f, "show", "interface"):
		return st.showInterface(f[2:]), true
	case matches(f, "show", "memif"):
		return st.showMemif(), true
	case matches(f, "show", "vhost-user"):
		return st.showVhost(), true
	case matches(f, "show", "l2xconnect"), matches(f, "show", "mode"):
		return st.showMode(), true
	case matches(f, "show", "bridge-domain"):
		return st.showBridgeDomain(), true
	case matches(f, "show", "errors"):
		return st.showErrors(), true
	}
	return fmt.Sprintf("unknown input `%s'\n", cmd), false
}

// matches accepts VPP's unique-prefix abbreviations ("sh int").
func matches(f []string, words ...string) bool {
	if len(f) < len(words) {
		return false
	}
	for i, w := range words {
		if !strings.HasPrefix(w, f[i]) {
			return false
		}
	}
	return true
}

// center pads s to width w, as clib's %=Ns does.
func center(s string, w int) string {
	if len(s) >= w {
		return s
	}
	left := (w - len(s)) / 2
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", w-len(s)-left)
}

func (st *state) showInterface(args []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-32s%s%s%s%s%s\n", center("Name", 32)[:32], center("Idx", 5), center("State", 10),
		center("MTU (L3/IP4/IP6/MPLS)", 21), center("Counter", 16), center("Count", 16))
	pad := strings.Repeat(" ", 32+5+10+21)
	// VPP lists interfaces sorted by name.
	var sorted []*iface
	for ifc := range st.all() {
		sorted = append(sorted, ifc)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	ifcs := slices.Values(sorted)
	if len(args) > 0 {
		ifcs = func(yield func(*iface) bool) {
			if ifc := st.tbl.byName[args[0]]; ifc != nil {
				yield(ifc)
			}
		}
	}
	for ifc := range ifcs {
		state := "down"
		if ifc.adminUp {
			state = "up"
		}
		mtu := fmt.Sprintf("%d/%d/%d/%d", ifc.mtu[0], ifc.mtu[1], ifc.mtu[2], ifc.mtu[3])
		fmt.Fprintf(&b, "%-32s%s%s%s", ifc.name, center(itoa(ifc.idx), 5), center(state, 10), center(mtu, 21))
		cnt := ifc.port.Counters()
		rows := []struct {
			name string
			v    uint64
		}{{"rx packets", cnt.RxPackets}, {"rx bytes", cnt.RxBytes}, {"tx packets", cnt.TxPackets},
			{"tx bytes", cnt.TxBytes}, {"drops", cnt.Drops}, {"tx-error", ifc.port.txErrors()}}
		first := true
		for _, r := range rows {
			if r.v == 0 {
				continue
			}
			if !first {
				b.WriteString(pad)
			}
			fmt.Fprintf(&b, "%-16s%16d\n", r.name, r.v)
			first = false
		}
		if first {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func (st *state) showMemif() string {
	var b strings.Builder
	b.WriteString("sockets\n  id  listener    filename\n")
	ids := make([]uint32, 0, len(st.sockets))
	for id := range st.sockets {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		listeners := 0
		if u := st.tbl.memifUse[id]; u != nil && u.master {
			listeners = u.n
		}
		l := "no"
		if listeners > 0 {
			l = fmt.Sprintf("yes (%d)", listeners)
		}
		fmt.Fprintf(&b, "  %-4d%-12s%s\n", id, l, st.sockets[id])
	}
	b.WriteString("\n")
	for ifc := range st.all() {
		if ifc.kind != kindMemif {
			continue
		}
		ms := ifc.memif
		role := "slave"
		if ms.Master {
			role = "master"
		}
		mode := [...]string{"ethernet", "ip", "punt-inject"}[ms.Mode%3]
		var flags []string
		if ifc.adminUp {
			flags = append(flags, "admin-up")
		}
		if ifc.linkUp {
			flags = append(flags, "connected")
		}
		if ifc.memifZeroCopy {
			flags = append(flags, "zero-copy")
		}
		fmt.Fprintf(&b, "interface %s\n  socket-id %d id %d mode %s\n  role %s\n  flags %s\n"+
			"  num-s2m-rings %d num-m2s-rings %d buffer-size %d ring-size %d\n",
			ifc.name, ms.SocketID, ms.ID, mode, role, strings.Join(flags, " "),
			ms.TxQueues, ms.RxQueues, ms.BufferSize, ms.RingSize)
	}
	return b.String()
}

func (st *state) showVhost() string {
	var b strings.Builder
	b.WriteString("Virtio vhost-user interfaces\n")
	for ifc := range st.all() {
		if ifc.kind != kindVhostUser {
			continue
		}
		typ := "client"
		if ifc.vhost.IsServer {
			typ = "server"
		}
		fmt.Fprintf(&b, "Interface: %s (ifindex %d)\n", ifc.name, ifc.idx)
		if ifc.vhost.EnableGSO {
			b.WriteString("  GSO enable\n")
		}
		if ifc.vhost.Packed {
			b.WriteString("  Packed ring\n")
		}
		errno := "Success"
		if !ifc.vhost.IsServer && !ifc.linkUp {
			errno = syscall.Errno(vhostConnectErrno(ifc.vhost.SocketFile)).Error()
			errno = strings.ToUpper(errno[:1]) + errno[1:]
		}
		fmt.Fprintf(&b, "  socket filename %s type %s errno \"%s\"\n", ifc.vhost.SocketFile, typ, errno)
	}
	return b.String()
}

func (st *state) showMode() string {
	var b strings.Builder
	for ifc := range st.all() {
		switch ifc.l2 {
		case l2Xconnect:
			tx := "?"
			if t := st.get(ifc.xcTx); t != nil {
				tx = t.name
			}
			fmt.Fprintf(&b, "l2 xconnect %s %s\n", ifc.name, tx)
		case l2Bridge:
			bvi := ""
			if ifc.portType == 1 {
				bvi = " bvi"
			}
			fmt.Fprintf(&b, "l2 bridge %s bd_id %d%s shg %d\n", ifc.name, ifc.bdID, bvi, ifc.shg)
		default:
			fmt.Fprintf(&b, "l3 %s\n", ifc.name)
		}
	}
	return b.String()
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

func (st *state) showBridgeDomain() string {
	var b strings.Builder
	// rows in bd_index order, as VPP walks its bd vector
	bds := make([]*bdState, 0, len(st.bds))
	for _, bd := range st.bds {
		bds = append(bds, bd)
	}
	sort.Slice(bds, func(i, j int) bool { return bds[i].index < bds[j].index })
	b.WriteString("  BD-ID   Index   BSN  Age(min)  Learning  U-Forwrd   UU-Flood   Flooding  ARP-Term  arp-ufwd Learn-co Learn-li   BVI-Intf\n")
	for _, bd := range bds {
		id := bd.id
		age := "off"
		if bd.macAge > 0 {
			age = itoa(uint32(bd.macAge))
		}
		uu := "drop"
		if bd.uuFlood {
			uu = "flood"
		}
		bvi := "N/A"
		for _, idx := range bd.members {
			if ifc := st.get(idx); ifc != nil && ifc.portType == 1 {
				bvi = ifc.name
			}
		}
		// Learn-co(unt) and Learn-li(mit): vppsim does not limit learning; VPP's
		// default limit is 16777216.
		fmt.Fprintf(&b, "%s%s%s%s%s%s%s%s%s%s%s%s%s\n", center(itoa(id), 9), center(itoa(bd.index), 7),
			center("0", 6), center(age, 10), center(onOff(bd.learn), 10), center(onOff(bd.forward), 10),
			center(uu, 11), center(onOff(bd.flood), 10), center(onOff(bd.arpTerm), 10),
			center(onOff(bd.arpUfwd), 10), center("0", 9), center("16777216", 10), center(bvi, 11))
	}
	return b.String()
}

// showErrors lists drop counters by interface and reason, in the shape of VPP's
// "show errors" (VPP names the graph node where vppsim names the interface).
func (st *state) showErrors() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%12s  %-32s%-40s%s\n", "Count", "Node", "Reason", "Severity")
	for ifc := range st.all() {
		for r := DropReason(0); r < numDropReasons; r++ {
			if v := ifc.port.drops[r].Load(); v != 0 {
				fmt.Fprintf(&b, "%12d  %-32s%-40s%s\n", v, ifc.name, r.String(), "error")
			}
		}
	}
	return b.String()
}
