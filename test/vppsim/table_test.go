package vppsim

import (
	"math/rand"
	"testing"

	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/memif"
)

// Random creates, deletes and cross-connects keep the indexes equal to what a scan of
// the table finds: the reference model is the table itself, walked naively.
func TestTableIndexesMatchScan(t *testing.T) {
	st := newState(nil, nil, quietLog)
	rng := rand.New(rand.NewSource(7))
	var live []*iface
	for step := 0; step < 3000; step++ {
		switch op := rng.Intn(10); {
		case op < 4 || len(live) < 2:
			ifc, rv := st.createMemif(&memif.MemifCreateV2{SocketID: 0, ID: uint32(rng.Intn(400))})
			if rv == 0 {
				live = append(live, ifc)
			} else if rv != errSubifAlreadyExists {
				t.Fatalf("create memif: retval %d", rv)
			}
		case op < 6:
			live = append(live, st.createLoopback(st.freeInstance(kindLoopback), [6]byte{}))
		case op < 8:
			st.setXconnect(live[rng.Intn(len(live))], live[rng.Intn(len(live))])
		default:
			i := rng.Intn(len(live))
			st.remove(live[i])
			live = append(live[:i], live[i+1:]...)
		}
	}
	var prev int64 = -1
	n := 0
	for ifc := range st.all() {
		if int64(ifc.idx) <= prev {
			t.Fatalf("walk out of order: %d after %d", ifc.idx, prev)
		}
		prev = int64(ifc.idx)
		n++
		if st.tbl.byName[ifc.name] != ifc {
			t.Errorf("name index misses %s", ifc.name)
		}
		if ifc.memif != nil && st.tbl.memifs[memifKey{ifc.memif.SocketID, ifc.memif.ID}] != ifc {
			t.Errorf("memif index misses %s", ifc.name)
		}
		if ifc.kind == kindLoopback && !st.instanceUsed(kindLoopback, ifc.instance) {
			t.Errorf("instance %d of %s not marked used", ifc.instance, ifc.name)
		}
		if ifc.l2 == l2Xconnect {
			tx := st.get(ifc.xcTx)
			if tx == nil {
				t.Fatalf("%s cross-connected to deleted sw_if_index %d", ifc.name, ifc.xcTx)
			}
			found := false
			for _, rx := range tx.xcIn {
				found = found || rx == ifc.idx
			}
			if !found {
				t.Errorf("%s missing from xcIn of %s", ifc.name, tx.name)
			}
		}
	}
	if n != len(live)+1 || n != st.tbl.count || len(st.tbl.byName) != n {
		t.Errorf("walk %d, live %d+local0, count %d, names %d", n, len(live), st.tbl.count, len(st.tbl.byName))
	}
	memifs := 0
	for _, ifc := range live {
		if ifc.kind == kindMemif {
			memifs++
		}
	}
	if u := st.tbl.memifUse[0]; (u == nil && memifs > 0) || (u != nil && u.n != memifs) {
		t.Errorf("memif socket 0 use = %+v, want %d", u, memifs)
	}
	// The lowest free loopback instance is reused, as VPP's bitmap does.
	for inst := uint32(0); ; inst++ {
		if !st.instanceUsed(kindLoopback, inst) {
			if got := st.freeInstance(kindLoopback); got != inst {
				t.Errorf("free instance = %d, want %d", got, inst)
			}
			break
		}
	}
}

func TestAddressOwnerFollowsDeleteAndDelAll(t *testing.T) {
	st := newState(nil, nil, quietLog)
	a := st.createLoopback(0, [6]byte{})
	b := st.createLoopback(1, [6]byte{})
	pfx := ip_types.AddressWithPrefix{Address: ip_types.Address{Af: ip_types.ADDRESS_IP4,
		Un: ip_types.AddressUnionIP4(ip_types.IP4Address{10, 0, 0, 1})}, Len: 24}
	add := func(ifc *iface, isAdd, delAll bool) int32 {
		return st.addDelAddress(&interfaces.SwInterfaceAddDelAddress{SwIfIndex: interface_types.InterfaceIndex(ifc.idx),
			IsAdd: isAdd, DelAll: delAll, Prefix: pfx})
	}
	if rv := add(a, true, false); rv != 0 {
		t.Fatalf("add = %d", rv)
	}
	if rv := add(b, true, false); rv != errAddressInUse {
		t.Errorf("same address on another interface = %d, want %d", rv, errAddressInUse)
	}
	add(a, false, true)
	if rv := add(b, true, false); rv != 0 {
		t.Errorf("after del_all the address is free: %d", rv)
	}
	st.remove(b)
	if rv := add(a, true, false); rv != 0 {
		t.Errorf("after deleting its interface the address is free: %d", rv)
	}
}
