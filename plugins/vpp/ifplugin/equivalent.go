package ifplugin

import (
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

// VPP's defaults for what a value may leave zero; Equivalent and Retrieve
// treat zero and the default alike so a resync never recreates for them.
const (
	defaultMemifRing   = 1024
	defaultMemifBuffer = 2048
	defaultMemifQueues = 1
	defaultTapRing     = 256
)

// equivalent reports whether no operation is needed to go from old to new.
// A zero MAC or MTU in new means "whatever VPP has", so it matches anything.
func (p *Plugin) equivalent(_ string, old, new *ifmodel.Interface) bool {
	a, b := p.normalize(old), p.normalize(new)
	if b.PhysAddress == "" {
		a.PhysAddress = ""
	}
	if b.Mtu == 0 {
		a.Mtu = 0
	}
	return proto.Equal(a, b)
}

// normalize returns a copy with defaults filled and spellings canonical.
func (p *Plugin) normalize(v *ifmodel.Interface) *ifmodel.Interface {
	n := proto.Clone(v).(*ifmodel.Interface)
	n.PhysAddress = strings.ToLower(n.PhysAddress)
	n.IpAddresses = canonicalPrefixes(n.IpAddresses)
	switch l := n.Link.(type) {
	case *ifmodel.Interface_Memif:
		m := l.Memif
		if m == nil {
			m = &ifmodel.MemifLink{}
			l.Memif = m
		}
		m.SocketFilename = p.sockets.normalize(m.SocketFilename)
		m.RingSize = orDefault(m.RingSize, defaultMemifRing)
		m.BufferSize = orDefault(m.BufferSize, defaultMemifBuffer)
		m.RxQueues = orDefault(m.RxQueues, defaultMemifQueues)
		m.TxQueues = orDefault(m.TxQueues, defaultMemifQueues)
	case *ifmodel.Interface_Tap:
		t := l.Tap
		if t == nil {
			t = &ifmodel.TapLink{}
			l.Tap = t
		}
		t.Version = orDefault(t.Version, 2)
		t.RxRingSize = orDefault(t.RxRingSize, defaultTapRing)
		t.TxRingSize = orDefault(t.TxRingSize, defaultTapRing)
	case nil:
		switch n.Type {
		case ifmodel.Interface_MEMIF:
			n.Link = &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{}}
			return p.normalize(n)
		case ifmodel.Interface_TAP:
			n.Link = &ifmodel.Interface_Tap{Tap: &ifmodel.TapLink{}}
			return p.normalize(n)
		}
	}
	return n
}

func orDefault(v, def uint32) uint32 {
	if v == 0 {
		return def
	}
	return v
}

// canonicalPrefixes sorts addresses and spells them the way netip does, so
// "10.0.0.1/24" and a dump's rendering compare equal.
func canonicalPrefixes(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, a := range in {
		if pf, err := netip.ParsePrefix(a); err == nil {
			a = pf.String()
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
