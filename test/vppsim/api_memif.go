package vppsim

import (
	"path/filepath"
	"sort"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"
)

// vppRuntimeDir is where VPP resolves relative memif socket names.
const vppRuntimeDir = "/run/vpp"

func registerMemifHandlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *memif.MemifSocketFilenameAddDelV2) []api.Message {
		rep := &memif.MemifSocketFilenameAddDelV2Reply{}
		id := m.SocketID
		if m.IsAdd && id == ^uint32(0) {
			id = st.unusedSocketID()
		}
		rep.SocketID = id
		rep.Retval = st.socketAddDel(m.IsAdd, id, m.SocketFilename)
		if rep.Retval == 0 {
			c.log.Info("memif socket", "add", m.IsAdd, "socket_id", id, "file", st.sockets[id])
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *memif.MemifSocketFilenameAddDel) []api.Message {
		return []api.Message{&memif.MemifSocketFilenameAddDelReply{Retval: st.socketAddDel(m.IsAdd, m.SocketID, m.SocketFilename)}}
	})
	on(h, func(st *state, c *client, m *memif.MemifSocketFilenameDump) []api.Message {
		ids := make([]uint32, 0, len(st.sockets))
		for id := range st.sockets {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		out := make([]api.Message, 0, len(ids))
		for _, id := range ids {
			out = append(out, &memif.MemifSocketFilenameDetails{SocketID: id, SocketFilename: st.sockets[id]})
		}
		return out
	})
	on(h, func(st *state, c *client, m *memif.MemifCreateV2) []api.Message {
		rep := &memif.MemifCreateV2Reply{}
		ifc, rv := st.createMemif(m)
		rep.Retval = rv
		if rv == 0 {
			rep.SwIfIndex = interface_types.InterfaceIndex(ifc.idx)
			c.log.Info("memif created", "sw_if_index", ifc.idx, "name", ifc.name,
				"master", ifc.memif.Master, "socket", ifc.memif.SocketFile)
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *memif.MemifCreate) []api.Message {
		v2 := &memif.MemifCreateV2{Role: m.Role, Mode: m.Mode, RxQueues: m.RxQueues, TxQueues: m.TxQueues,
			ID: m.ID, SocketID: m.SocketID, RingSize: m.RingSize, BufferSize: m.BufferSize,
			NoZeroCopy: m.NoZeroCopy, HwAddr: m.HwAddr, Secret: m.Secret}
		ifc, rv := st.createMemif(v2)
		rep := &memif.MemifCreateReply{Retval: rv}
		if rv == 0 {
			rep.SwIfIndex = interface_types.InterfaceIndex(ifc.idx)
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *memif.MemifDelete) []api.Message {
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil || ifc.kind != kindMemif {
			return []api.Message{&memif.MemifDeleteReply{Retval: errInvalidSwIfIndex}}
		}
		st.remove(ifc)
		c.log.Info("memif deleted", "sw_if_index", ifc.idx, "name", ifc.name)
		return []api.Message{&memif.MemifDeleteReply{}}
	})
	on(h, func(st *state, c *client, m *memif.MemifDump) []api.Message {
		var out []api.Message
		for ifc := range st.all() {
			if ifc.kind != kindMemif {
				continue
			}
			ms := ifc.memif
			role := memif.MEMIF_ROLE_API_MASTER
			if !ms.Master {
				role = memif.MEMIF_ROLE_API_SLAVE
			}
			// VPP reports the running ring and buffer sizes, which only a slave
			// sets (from the master's hello): 1 << 0 and 0 on a master and on a
			// slave that is not connected.
			ring, buf := uint32(1), uint16(0)
			if ifc.linkUp && !ms.Master {
				ring, buf = ms.RingSize, ms.BufferSize
			}
			out = append(out, &memif.MemifDetails{
				SwIfIndex:  interface_types.InterfaceIndex(ifc.idx),
				HwAddr:     ifc.mac,
				ID:         ms.ID,
				Role:       role,
				Mode:       memif.MemifMode(ms.Mode),
				ZeroCopy:   ifc.memifZeroCopy,
				SocketID:   ms.SocketID,
				RingSize:   ring,
				BufferSize: buf,
				Flags:      interface_types.IfStatusFlags(ifc.flags()),
				IfName:     ifc.name,
			})
		}
		return out
	})
}

// unusedSocketID picks a free socket id as VPP does: clib's random_u32 (a linear
// congruential generator) from seed 0, drawing again while the id is taken.
func (st *state) unusedSocketID() uint32 {
	seed := uint32(0)
	for {
		id := lcgNext(&seed)
		if _, used := st.sockets[id]; !used && id != 0 && id != ^uint32(0) {
			return id
		}
	}
}

// lcgNext is clib's random_u32: seed = seed*1664525 + 1013904223.
func lcgNext(seed *uint32) uint32 {
	*seed = *seed*1664525 + 1013904223
	return *seed
}

// socketAddDel mirrors memif_socket_filename_add_del in VPP's memif.c.
func (st *state) socketAddDel(isAdd bool, id uint32, file string) int32 {
	if id == 0 || id == ^uint32(0) {
		return errInvalidArgument
	}
	if !isAdd {
		if _, ok := st.sockets[id]; !ok {
			return errInvalidArgument
		}
		if st.tbl.memifUse[id] != nil {
			return errUnexpectedIntfState
		}
		delete(st.sockets, id)
		return 0
	}
	if file == "" {
		return errInvalidArgument
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(vppRuntimeDir, file)
	}
	if cur, ok := st.sockets[id]; ok {
		if cur == file {
			return 0 // VPP silently accepts an identical add
		}
		return errEntryAlreadyExists
	}
	st.sockets[id] = file
	return 0
}

func (st *state) createMemif(m *memif.MemifCreateV2) (*iface, int32) {
	file, ok := st.sockets[m.SocketID]
	if !ok {
		return nil, errInvalidArgument
	}
	if m.RingSize != 0 && m.RingSize&(m.RingSize-1) != 0 {
		return nil, errInvalidArgument
	}
	// VPP treats any role but master as slave. It crashes (SIGSEGV, 25.10) on a mode
	// it does not know; vppsim refuses it instead.
	if m.Mode > memif.MEMIF_MODE_API_PUNT_INJECT {
		return nil, errInvalidArgument
	}
	master := m.Role == memif.MEMIF_ROLE_API_MASTER
	// One id per socket, and a socket file is either listened on or connected to.
	if st.tbl.memifs[memifKey{m.SocketID, m.ID}] != nil {
		return nil, errSubifAlreadyExists
	}
	if u := st.tbl.memifUse[m.SocketID]; u != nil && u.master != master {
		return nil, errSubifAlreadyExists
	}
	spec := &MemifSpec{
		ID: m.ID, SocketID: m.SocketID, SocketFile: file, Master: master, Mode: uint8(m.Mode),
		RxQueues: m.RxQueues, TxQueues: m.TxQueues, RingSize: m.RingSize, BufferSize: m.BufferSize,
		Secret: m.Secret, MAC: m.HwAddr,
	}
	if spec.RxQueues == 0 {
		spec.RxQueues = 1
	}
	if spec.TxQueues == 0 {
		spec.TxQueues = 1
	}
	if spec.RingSize == 0 {
		spec.RingSize = 1024
	}
	if spec.BufferSize == 0 {
		spec.BufferSize = 2048
	}
	if spec.MAC == [6]byte{} {
		spec.MAC = st.newMAC()
	}
	ifc := &iface{name: "memif" + itoa(m.SocketID) + "/" + itoa(m.ID), kind: kindMemif, instance: m.ID, memif: spec, mac: spec.MAC}
	// Zero copy is a slave-side feature in VPP; masters always copy.
	ifc.memifZeroCopy = !master && !m.NoZeroCopy
	if m.Mode == memif.MEMIF_MODE_API_IP {
		// An IP-mode memif is not an Ethernet interface in VPP: no MAC, no MTU.
		ifc.mac = [6]byte{}
	}
	st.add(ifc)
	if m.Mode == memif.MEMIF_MODE_API_IP {
		ifc.mtu, ifc.linkMtu = [4]uint32{}, 0
	}
	st.attachDriver(ifc, PortInfo{Memif: spec})
	return ifc, 0
}
