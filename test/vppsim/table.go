package vppsim

import "iter"

// memifKey names a memif the way VPP's memif_create checks for duplicates.
type memifKey struct{ socketID, id uint32 }

// memifSocketUse is what the interfaces on one memif socket id have in common: a socket
// file is either listened on or connected to, and cannot be deleted while in use.
type memifSocketUse struct {
	master bool
	n      int
}

// instanceSet is VPP's per-class instance bitmap (loopback, tap, vhost-user).
type instanceSet struct {
	used map[uint32]bool
	// low is at or below the lowest free instance, so allocation does not rescan the
	// instances it has already handed out.
	low uint32
}

func (s *instanceSet) lowestFree() uint32 {
	for s.used[s.low] {
		s.low++
	}
	return s.low
}

func (s *instanceSet) take(inst uint32) { s.used[inst] = true }

func (s *instanceSet) release(inst uint32) {
	delete(s.used, inst)
	s.low = min(s.low, inst)
}

// ifTable is the interface table with the indexes VPP keeps beside it, so that every
// API call costs what it costs in VPP (a vector or hash lookup) and not a scan.
type ifTable struct {
	// byIndex is a vector indexed by sw_if_index, holes nil, like VPP's pool: walking it
	// yields sw_if_index order without sorting, and indexes are reused so it stays dense.
	byIndex   []*iface
	count     int
	byName    map[string]*iface
	memifs    map[memifKey]*iface
	memifUse  map[uint32]*memifSocketUse // by socket id
	vhostSock map[string]*iface          // by socket filename
	afpHost   map[string]*iface          // by host interface name
	instances [len(kindNames)]instanceSet
}

func newIfTable() ifTable {
	t := ifTable{
		byName:    map[string]*iface{},
		memifs:    map[memifKey]*iface{},
		memifUse:  map[uint32]*memifSocketUse{},
		vhostSock: map[string]*iface{},
		afpHost:   map[string]*iface{},
	}
	for k := range t.instances {
		t.instances[k].used = map[uint32]bool{}
	}
	return t
}

// numbered reports whether the kind's names carry an instance from instanceSet.
func (k ifKind) numbered() bool {
	return k == kindLoopback || k == kindTap || k == kindVhostUser || k == kindVxlan
}

func (t *ifTable) insert(ifc *iface) {
	for uint32(len(t.byIndex)) <= ifc.idx {
		t.byIndex = append(t.byIndex, nil)
	}
	t.byIndex[ifc.idx] = ifc
	t.count++
	t.byName[ifc.name] = ifc
	if ifc.kind.numbered() {
		t.instances[ifc.kind].take(ifc.instance)
	}
	switch {
	case ifc.memif != nil:
		t.memifs[memifKey{ifc.memif.SocketID, ifc.memif.ID}] = ifc
		u := t.memifUse[ifc.memif.SocketID]
		if u == nil {
			u = &memifSocketUse{master: ifc.memif.Master}
			t.memifUse[ifc.memif.SocketID] = u
		}
		u.n++
	case ifc.vhost != nil:
		t.vhostSock[ifc.vhost.SocketFile] = ifc
	case ifc.afp != nil:
		t.afpHost[ifc.afp.hostIfName] = ifc
	}
}

func (t *ifTable) delete(ifc *iface) {
	if t.get(ifc.idx) != ifc {
		return
	}
	t.byIndex[ifc.idx] = nil
	t.count--
	if t.byName[ifc.name] == ifc {
		delete(t.byName, ifc.name)
	}
	if ifc.kind.numbered() {
		t.instances[ifc.kind].release(ifc.instance)
	}
	switch {
	case ifc.memif != nil:
		delete(t.memifs, memifKey{ifc.memif.SocketID, ifc.memif.ID})
		if u := t.memifUse[ifc.memif.SocketID]; u != nil {
			if u.n--; u.n <= 0 {
				delete(t.memifUse, ifc.memif.SocketID)
			}
		}
	case ifc.vhost != nil:
		if t.vhostSock[ifc.vhost.SocketFile] == ifc {
			delete(t.vhostSock, ifc.vhost.SocketFile)
		}
	case ifc.afp != nil:
		delete(t.afpHost, ifc.afp.hostIfName)
	}
}

// reindexVhost follows a vhost-user modify: new instance, name and socket file.
func (t *ifTable) reindexVhost(ifc *iface, oldName, oldSocket string, oldInst uint32) {
	if t.byName[oldName] == ifc {
		delete(t.byName, oldName)
	}
	t.byName[ifc.name] = ifc
	if t.vhostSock[oldSocket] == ifc {
		delete(t.vhostSock, oldSocket)
	}
	t.vhostSock[ifc.vhost.SocketFile] = ifc
	if oldInst != ifc.instance {
		t.instances[kindVhostUser].release(oldInst)
		t.instances[kindVhostUser].take(ifc.instance)
	}
}

func (t *ifTable) get(idx uint32) *iface {
	if uint64(idx) >= uint64(len(t.byIndex)) {
		return nil
	}
	return t.byIndex[idx]
}

// all yields the interfaces in sw_if_index order. The caller must not add or delete
// interfaces while iterating.
func (t *ifTable) all() iter.Seq[*iface] {
	return func(yield func(*iface) bool) {
		for _, ifc := range t.byIndex {
			if ifc != nil && !yield(ifc) {
				return
			}
		}
	}
}
