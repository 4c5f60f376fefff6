package vppsim

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"go.fd.io/govpp/binapi/ip_types"
)

// l3Fixture is an AF_PACKET-like port with 198.51.100.1/24 and one tunnel
// 198.51.100.1 ← 198.51.100.2 vni 5, both with in-memory drivers.
func l3Fixture(t *testing.T) (*state, *iface, *memPort, *iface, *memPort) {
	t.Helper()
	st, ifs, drv := newTestState(t, 2)
	up, tun := ifs[0], ifs[1]
	up.kind, up.mac = kindAfPacket, [6]byte{2, 0xfe, 0, 0, 0, 1}
	up.addrs = append(up.addrs, mustPrefix("198.51.100.1/24"))
	tun.vxlan = &vxlanSpec{src: netip.MustParseAddr("198.51.100.1"), dst: netip.MustParseAddr("198.51.100.2"), vni: 5, dstPort: vxlanPort}
	st.syncL3()
	st.setXconnect(tun, tun) // decapsulated frames leave through the tunnel's own driver (the test's)
	return st, up, drv[0], tun, drv[1]
}

// vxlanPacket builds what a peer 198.51.100.2 sends: Ethernet, IPv4, UDP, VXLAN, inner.
func vxlanPacket(dstMAC [6]byte, vni uint32, inner []byte) []byte {
	d := &vxlanDriver{spec: vxlanSpec{src: netip.MustParseAddr("198.51.100.2"), dst: netip.MustParseAddr("198.51.100.1"), vni: vni, dstPort: vxlanPort}}
	return d.encap(nil, [6]byte{2, 0, 0, 0, 0, 2}, dstMAC, inner)
}

func TestL3DecapChecksAndCounts(t *testing.T) {
	_, up, _, tun, tunDrv := l3Fixture(t)
	inner := frame(0xaa, 0xbb)
	good := vxlanPacket(up.mac, 5, inner)
	up.port.Receive(good)
	if len(tunDrv.frames) != 1 || !bytes.Equal(tunDrv.frames[0], inner) {
		t.Fatalf("decapsulated %d frames, want the inner frame once", len(tunDrv.frames))
	}
	if c := tun.port.Counters(); c.RxPackets != 1 {
		t.Errorf("tunnel rx %d, want 1", c.RxPackets)
	}
	bad := func(mut func(p []byte)) []byte { p := bytes.Clone(good); mut(p); return p }
	for _, c := range []struct {
		name string
		pkt  []byte
		want DropReason
	}{
		{"unknown vni", vxlanPacket(up.mac, 6, inner), DropVxlanNoTunnel},
		{"other mac", vxlanPacket([6]byte{2, 9, 9, 9, 9, 9}, 5, inner), DropL2NotForUs},
		{"ip checksum", bad(func(p []byte) { p[14+8]-- }), DropIP4Checksum},
		{"udp checksum (partial, as from a veth offload)", bad(func(p []byte) { binary.BigEndian.PutUint16(p[14+20+6:], 0x1234) }), DropUDPChecksum},
		{"udp port", bad(func(p []byte) {
			binary.BigEndian.PutUint16(p[14+20+2:], 4790)
		}), DropUDPNoListener},
		{"not for us", bad(func(p []byte) {
			p[14+19] = 9
			binary.BigEndian.PutUint16(p[14+10:], 0)
			binary.BigEndian.PutUint16(p[14+10:], checksum(p[14:34]))
		}), DropIP4NotForUs},
		{"I flag clear", bad(func(p []byte) { p[14+28] = 0 }), DropVxlanBadHeader},
		{"truncated", good[:40], DropIP4Malformed},
		{"ipv6", bad(func(p []byte) { p[12], p[13] = 0x86, 0xdd }), DropUnknownEtherType},
	} {
		before := up.port.Drops()[c.want]
		up.port.Receive(c.pkt)
		if got := up.port.Drops()[c.want]; got != before+1 {
			t.Errorf("%s: %q drops %d → %d, want one more", c.name, c.want, before, got)
		}
	}
	if len(tunDrv.frames) != 1 {
		t.Errorf("a bad packet reached the tunnel: %d frames", len(tunDrv.frames))
	}
	// A correct non-zero UDP checksum passes.
	withSum := bytes.Clone(good)
	udp := withSum[34:]
	binary.BigEndian.PutUint16(udp[6:], 0)
	binary.BigEndian.PutUint16(udp[6:], udpChecksum(withSum[26:30], withSum[30:34], udp))
	up.port.Receive(withSum)
	if len(tunDrv.frames) != 2 {
		t.Errorf("a packet with a correct UDP checksum was dropped: %v", up.port.Drops())
	}
}

func TestL3ARPAnswerResolveAndEncap(t *testing.T) {
	st, up, upDrv, tun, _ := l3Fixture(t)
	tun.port.setDriver(&vxlanDriver{pl: st.plane(), spec: *tun.vxlan})
	// Sending through the tunnel first asks who has 198.51.100.2.
	tun.port.transmit(tun.port, frame(0xaa, 0xbb))
	if tun.port.Drops()[DropARPPending] != 1 || len(upDrv.frames) != 1 {
		t.Fatalf("unresolved: drops %v, uplink sent %d", tun.port.Drops(), len(upDrv.frames))
	}
	req := upDrv.frames[0]
	if binary.BigEndian.Uint16(req[12:]) != etherTypeARP || binary.BigEndian.Uint16(req[20:]) != 1 ||
		!bytes.Equal(req[28:32], []byte{198, 51, 100, 1}) || !bytes.Equal(req[38:42], []byte{198, 51, 100, 2}) {
		t.Fatalf("ARP request %x", req)
	}
	// The peer asks for us: we answer and learn it.
	peer := [6]byte{2, 0, 0, 0, 0, 2}
	ask := buildARP(nil, 1, peer, netip.MustParseAddr("198.51.100.2"), [6]byte{}, netip.MustParseAddr("198.51.100.1"), [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	up.port.Receive(ask)
	if len(upDrv.frames) != 2 {
		t.Fatalf("no ARP reply")
	}
	rep := upDrv.frames[1]
	if !bytes.Equal(rep[0:6], peer[:]) || binary.BigEndian.Uint16(rep[20:]) != 2 || !bytes.Equal(rep[22:28], up.mac[:]) {
		t.Fatalf("ARP reply %x", rep)
	}
	// Now the tunnel encapsulates towards the learned MAC.
	inner := frame(0xaa, 0xbb)
	tun.port.transmit(tun.port, inner)
	if len(upDrv.frames) != 3 {
		t.Fatalf("nothing encapsulated: drops %v", tun.port.Drops())
	}
	p := upDrv.frames[2]
	ip := p[14:34]
	switch {
	case !bytes.Equal(p[0:6], peer[:]) || !bytes.Equal(p[6:12], up.mac[:]):
		t.Errorf("outer MACs %x", p[:12])
	case checksum(ip) != 0 || ip[8] != encapTTL || ip[9] != 17 || int(binary.BigEndian.Uint16(ip[2:])) != len(p)-14:
		t.Errorf("outer IPv4 header %x", ip)
	case binary.BigEndian.Uint16(p[36:]) != vxlanPort || binary.BigEndian.Uint16(p[34:]) < 49152:
		t.Errorf("UDP ports %x", p[34:38])
	case p[42] != 0x08 || p[46] != 0 || p[47] != 0 || p[48] != 5:
		t.Errorf("VXLAN header %x", p[42:50])
	case !bytes.Equal(p[50:], inner):
		t.Errorf("inner frame altered")
	}
}

func mustPrefix(s string) ip_types.AddressWithPrefix {
	a, err := ip_types.ParseAddressWithPrefix(s)
	if err != nil {
		panic(err)
	}
	return a
}

// FuzzL3Input feeds arbitrary frames to an AF_PACKET port with an address
// and a tunnel: nothing may panic, and every frame is forwarded, answered,
// learned from (an ARP reply) or dropped and counted, exactly one of them.
func FuzzL3Input(f *testing.F) {
	up0 := [6]byte{2, 0xfe, 0, 0, 0, 1}
	f.Add(vxlanPacket(up0, 5, frame(0xaa, 0xbb)))
	f.Add(buildARP(nil, 1, [6]byte{2, 0, 0, 0, 0, 2}, netip.MustParseAddr("198.51.100.2"), [6]byte{}, netip.MustParseAddr("198.51.100.1"), [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, up, upDrv, _, tunDrv := l3Fixture(t)
		up.port.Receive(b)
		c := up.port.Counters()
		out := len(upDrv.frames) + len(tunDrv.frames)
		// An ARP reply to us is consumed (learned), neither sent on nor dropped.
		arp := len(b) >= 14 && b[12] == 0x08 && b[13] == 0x06
		if c.RxPackets != 1 || c.Drops > 1 || (out > 0 && c.Drops != 0) || (out == 0 && c.Drops == 0 && !arp) {
			t.Fatalf("one frame in: rx %d, drops %d, %d frames out", c.RxPackets, c.Drops, out)
		}
	})
}

// TestL3TunnelInBridge: a VXLAN tunnel is an ordinary bridge port: what it
// decapsulates is flooded and its source learned, and a frame to that
// source leaves encapsulated through the uplink.
func TestL3TunnelInBridge(t *testing.T) {
	st, up, upDrv, tun, _ := l3Fixture(t)
	tun.port.setDriver(&vxlanDriver{pl: st.plane(), spec: *tun.vxlan})
	st.clearL2(tun)
	lp := st.createLoopback(st.freeInstance(kindLoopback), [6]byte{})
	st.setAdmin(lp, true)
	lpDrv := &memPort{}
	lp.port.setDriver(lpDrv)
	bd := st.newBD(7, true, true, true, true, false, false, 0, "")
	st.bds[7] = bd
	st.joinBridge(tun, bd, 0, 0)
	st.joinBridge(lp, bd, 0, 0)
	// The peer resolves us first (so we know its MAC), then sends.
	peer := [6]byte{2, 0, 0, 0, 0, 2}
	up.port.Receive(buildARP(nil, 1, peer, netip.MustParseAddr("198.51.100.2"), [6]byte{}, netip.MustParseAddr("198.51.100.1"), [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
	remote := frame(0xff, 0xcc) // group-addressed, from a host behind the peer
	up.port.Receive(vxlanPacket(up.mac, 5, remote))
	if len(lpDrv.frames) != 1 || !bytes.Equal(lpDrv.frames[0], remote) {
		t.Fatalf("bridge port got %d frames, want the decapsulated flood", len(lpDrv.frames))
	}
	sent := len(upDrv.frames)
	reply := frame(0xcc, 0xdd) // unicast to the learned host
	lp.port.Receive(reply)
	if len(upDrv.frames) != sent+1 {
		t.Fatalf("nothing left through the uplink: tunnel drops %v", tun.port.Drops())
	}
	if p := upDrv.frames[sent]; !bytes.Equal(p[50:], reply) || p[48] != 5 {
		t.Fatalf("encapsulated %x", p)
	}
}
