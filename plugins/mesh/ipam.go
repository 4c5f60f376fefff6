package mesh

import (
	"net/netip"
)

// PoolSize is the number of /31s in a pool.
func PoolSize(p netip.Prefix) uint64 { return uint64(1) << (31 - p.Bits()) }

// PairAt returns the i-th /31 of a pool as its lower (client) and upper
// (endpoint) addresses.
func PairAt(p netip.Prefix, i uint64) (client, endpoint netip.Addr) {
	b := p.Masked().Addr().As4()
	base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	a := base + uint32(i)*2
	client = netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
	return client, client.Next()
}

// NextPair returns the lowest /31 of the pool whose lower address is not in
// used; ok is false when the pool is exhausted.
func NextPair(p netip.Prefix, used map[netip.Addr]bool) (client, endpoint netip.Addr, ok bool) {
	n := PoolSize(p)
	for i := uint64(0); i < n; i++ {
		c, e := PairAt(p, i)
		if !used[c] {
			return c, e, true
		}
	}
	return netip.Addr{}, netip.Addr{}, false
}

// InPool reports whether a is the lower address of a /31 of p.
func InPool(p netip.Prefix, a netip.Addr) bool {
	if !a.Is4() || !p.Contains(a) {
		return false
	}
	return a.As4()[3]%2 == 0
}

// NextID returns the lowest id not in used.
func NextID(used map[uint32]bool) uint32 {
	for id := uint32(0); ; id++ {
		if !used[id] {
			return id
		}
	}
}
