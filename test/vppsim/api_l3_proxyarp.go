package vppsim

import (
	"sort"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/arp"
)

// proxyARP is VPP's proxy ARP state: ranges in the order they were added
// (a second add of one range is a no-op) and the interfaces with proxy ARP
// on. As in VPP 25.10, the flag of a deleted interface stays in the dump.
type proxyARP struct {
	ranges []arp.ProxyArp
	on     map[uint32]bool
}

func registerProxyARPHandlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *arp.ProxyArpAddDel) []api.Message {
		rep := &arp.ProxyArpAddDelReply{}
		pa := &st.ipt.proxy
		i := -1
		for j, r := range pa.ranges {
			if r == m.Proxy {
				i = j
			}
		}
		switch {
		case !m.IsAdd && i < 0:
			rep.Retval = errNoSuchEntry
		case !m.IsAdd:
			pa.ranges = append(pa.ranges[:i:i], pa.ranges[i+1:]...)
		case st.ipt.tables[tableID{m.Proxy.TableID, false}] == nil:
			rep.Retval = errNoSuchFib
		case i < 0:
			pa.ranges = append(pa.ranges, m.Proxy)
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *arp.ProxyArpDump) []api.Message {
		out := make([]api.Message, 0, len(st.ipt.proxy.ranges))
		for _, r := range st.ipt.proxy.ranges {
			out = append(out, &arp.ProxyArpDetails{Proxy: r})
		}
		return out
	})
	on(h, func(st *state, c *client, m *arp.ProxyArpIntfcEnableDisable) []api.Message {
		rep := &arp.ProxyArpIntfcEnableDisableReply{}
		if st.get(uint32(m.SwIfIndex)) == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		if st.ipt.proxy.on == nil {
			st.ipt.proxy.on = map[uint32]bool{}
		}
		if m.Enable {
			st.ipt.proxy.on[uint32(m.SwIfIndex)] = true
		} else {
			delete(st.ipt.proxy.on, uint32(m.SwIfIndex))
		}
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *arp.ProxyArpIntfcDump) []api.Message {
		sws := make([]uint32, 0, len(st.ipt.proxy.on))
		for sw := range st.ipt.proxy.on {
			sws = append(sws, sw)
		}
		sort.Slice(sws, func(i, j int) bool { return sws[i] < sws[j] })
		out := make([]api.Message, 0, len(sws))
		for _, sw := range sws {
			out = append(out, &arp.ProxyArpIntfcDetails{SwIfIndex: sw})
		}
		return out
	})
}
