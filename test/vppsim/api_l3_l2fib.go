package vppsim

import (
	"bytes"
	"sort"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
)

// registerL2FibDump serves l2_fib_table_dump: every entry of one bridge
// domain (or all, bd_id ~0), learned ones included, as VPP lists them.
func registerL2FibDump(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *l2.L2FibTableDump) []api.Message {
		ids := make([]uint32, 0, len(st.bds))
		for id := range st.bds {
			if m.BdID == ^uint32(0) || m.BdID == id {
				ids = append(ids, id)
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		var out []api.Message
		for _, id := range ids {
			bd := st.bds[id]
			bd.fwd.mu.RLock()
			macs := make([][6]byte, 0, len(bd.fwd.fib))
			for mac := range bd.fwd.fib {
				macs = append(macs, mac)
			}
			sort.Slice(macs, func(i, j int) bool { return bytes.Compare(macs[i][:], macs[j][:]) < 0 })
			for _, mac := range macs {
				e := bd.fwd.fib[mac]
				d := &l2.L2FibTableDetails{BdID: id, Mac: ethernet_types.MacAddress(mac), SwIfIndex: ^interface_types.InterfaceIndex(0),
					StaticMac: e.static, FilterMac: e.filter, BviMac: e.bvi}
				if e.port != nil {
					d.SwIfIndex = interface_types.InterfaceIndex(e.port.swIfIndex)
				}
				out = append(out, d)
			}
			bd.fwd.mu.RUnlock()
		}
		return out
	})
}
