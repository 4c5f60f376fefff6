package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/arp"
	"go.fd.io/govpp/binapi/fib_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_neighbor"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/l2"
)

// ligatoConfig is a Ligato v3.5 user's NFV config, keys and JSON as they
// would put them with etcdctl: interfaces (memif, loopbacks, a dot1q
// sub-interface, one in a VRF, one unnumbered that takes the VRF of the
// interface it borrows from, as in Ligato, rx modes), a bridge domain
// with a BVI, xconnects, a static L2 FIB entry, a VRF table, a route (key
// spelled as in Ligato's docs, without "if/"; an inter-VRF, a drop and an
// IPv6 recursive route too), a static ARP entry and proxy ARP. It is
// put dependants first, so values wait PENDING and then resolve.
func ligatoConfig(sock string) [][2]string {
	mem := func(name string, id int) string {
		return fmt.Sprintf(`{"name":%q,"type":"MEMIF","enabled":true,"memif":{"master":true,"id":%d,"socket_filename":%q}}`, name, id, sock)
	}
	return [][2]string{
		{"config/vpp/v2/arp/lo-vrf/198.51.100.2", `{"interface":"lo-vrf","ip_address":"198.51.100.2","phys_address":"02:00:00:00:aa:01","static":true}`},
		{"config/vpp/v2/route/vrf/10/dst/192.0.2.0/24/gw/198.51.100.2", `{"type":"INTRA_VRF","vrf_id":10,"dst_network":"192.0.2.0/24","next_hop_addr":"198.51.100.2","outgoing_interface":"lo-vrf","weight":5}`},
		{"config/vpp/v2/proxyarp-global/settings", `{"interfaces":[{"name":"lo-vrf"}],"ranges":[{"first_ip_addr":"198.51.100.10","last_ip_addr":"198.51.100.20","vrf_id":10}]}`},
		{"config/vpp/v2/route/vrf/10/dst/203.0.113.128/25", `{"type":"INTER_VRF","vrf_id":10,"dst_network":"203.0.113.128/25","via_vrf_id":0}`},
		{"config/vpp/v2/route/vrf/10/dst/192.0.2.128/25", `{"type":"DROP","dst_network":"192.0.2.128/25"}`},
		{"config/vpp/v2/route/vrf/0/dst/2001:db8:1::/48/gw/2001:db8::2", `{"dst_network":"2001:db8:1::/48","next_hop_addr":"2001:db8::2"}`},
		{"config/vpp/l2/v2/fib/bd1/mac/02:00:00:00:bb:01", `{"phys_address":"02:00:00:00:bb:01","bridge_domain":"bd1","action":"FORWARD","outgoing_interface":"memif3","static_config":true}`},
		{"config/vpp/l2/v2/xconnect/memif1", `{"receive_interface":"memif1","transmit_interface":"memif2"}`},
		{"config/vpp/l2/v2/xconnect/memif2", `{"receive_interface":"memif2","transmit_interface":"memif1"}`},
		{"config/vpp/v2/interfaces/sub1", `{"name":"sub1","type":"SUB_INTERFACE","enabled":true,"vrf":10,"ip_addresses":["203.0.113.1/24"],"sub":{"parent_name":"lo-trunk","sub_id":100}}`},
		{"config/vpp/v2/interfaces/lo-vrf", `{"name":"lo-vrf","type":"SOFTWARE_LOOPBACK","enabled":true,"vrf":10,"ip_addresses":["198.51.100.1/24"]}`},
		{"config/vpp/v2/interfaces/lo-un", `{"name":"lo-un","type":"SOFTWARE_LOOPBACK","enabled":true,"unnumbered":{"interface_with_ip":"lo-vrf"}}`},
		{"config/vpp/v2/vrf-table/id/10/protocol/IPV4", `{"id":10,"protocol":"IPV4","label":"blue"}`},
		{"config/vpp/v2/interfaces/lo-trunk", `{"name":"lo-trunk","type":"SOFTWARE_LOOPBACK","enabled":true}`},
		{"config/vpp/l2/v2/bridge-domain/bd1", `{"name":"bd1","flood":true,"unknown_unicast_flood":true,"forward":true,"learn":true,"interfaces":[{"name":"memif3"},{"name":"lo-bvi","bridged_virtual_interface":true}]}`},
		{"config/vpp/v2/interfaces/lo-bvi", `{"name":"lo-bvi","type":"SOFTWARE_LOOPBACK","enabled":true}`},
		{"config/vpp/v2/interfaces/memif1", mem("memif1", 1)},
		{"config/vpp/v2/interfaces/memif2", strings.Replace(mem("memif2", 2), `"enabled":true`, `"enabled":true,"rx_modes":[{"default_mode":true,"mode":"ADAPTIVE"}]`, 1)},
		{"config/vpp/v2/interfaces/memif3", mem("memif3", 3)},
	}
}

// The done-when of issue 13: a Ligato-style config put as-is ends
// CONFIGURED, on vppsim and on FD.io VPP, and VPP's own dumps show it.
func TestLigatoNFVConfig(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		cfg := ligatoConfig(filepath.Join(e.vpp.Dir, "memif.sock"))
		// The route's VRF table is put last but one: first the route is
		// PENDING and says which key it waits for.
		for _, kv := range cfg {
			e.put(kv[0], kv[1])
		}
		for _, kv := range cfg {
			e.waitState(kv[0], "CONFIGURED")
		}
		checkDumps(t, e.vpp.APISocket)

		// A value waiting for a missing table says which key it misses.
		e.put("config/vpp/v2/route/vrf/20/dst/192.0.2.0/25", `{"type":"DROP","vrf_id":20,"dst_network":"192.0.2.0/25"}`)
		e.waitState("config/vpp/v2/route/vrf/20/dst/192.0.2.0/25", "PENDING")
		if m := missing(t, e, "config/vpp/v2/route/vrf/20/dst/192.0.2.0/25"); len(m) != 1 || m[0] != "config/vpp/v2/vrf-table/id/20/protocol/IPV4" {
			t.Fatalf("PENDING route names %v as missing, want the VRF 20 table key", m)
		}
		// A Ligato model vppmesh lacks: INVALID, naming the model.
		e.put("config/vpp/acls/v2/acl/acl1", `{"name":"acl1"}`)
		e.waitState("config/vpp/acls/v2/acl/acl1", "INVALID")
		if st, _ := e.status("config/vpp/acls/v2/acl/acl1"); !strings.Contains(st.Error, "model vpp.acls is not supported by vppmesh (supported: ") ||
			!strings.Contains(st.Error, "vpp.route") {
			t.Fatalf("unsupported model error: %q", st.Error)
		}

		// Deleting the VRF table takes the interfaces and route in it back
		// to PENDING and out of VPP; putting it back restores them.
		e.del("config/vpp/v2/vrf-table/id/10/protocol/IPV4")
		e.waitState("config/vpp/v2/route/vrf/10/dst/192.0.2.0/24/gw/198.51.100.2", "PENDING")
		e.waitState("config/vpp/v2/interfaces/lo-vrf", "PENDING")
		if _, ok := e.vppIf("lo-vrf"); ok {
			t.Fatal("lo-vrf still in VPP after its VRF table was deleted")
		}
		e.put("config/vpp/v2/vrf-table/id/10/protocol/IPV4", `{"id":10,"protocol":"IPV4","label":"blue"}`)
		for _, kv := range cfg {
			e.waitState(kv[0], "CONFIGURED")
		}
		checkDumps(t, e.vpp.APISocket)

		// An agent restart finds all of it in VPP (Retrieve of every
		// descriptor) and changes nothing.
		before := e.vppIfs()
		e.stopAgent()
		if err := e.vpp.ResetCalls(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.startAgent()
		for _, kv := range cfg {
			e.waitState(kv[0], "CONFIGURED")
		}
		calls, err := e.vpp.Calls(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) == 0 {
			t.Fatal("no VPP calls seen at all: the call count does not work")
		}
		for name := range calls {
			if strings.Contains(name, "_get_") { // sw_interface_get_table reads
				delete(calls, name)
			}
		}
		if n, names := writeCalls(calls); n != 0 {
			t.Fatalf("agent restart made %d VPP write calls: %v", n, names)
		}
		if after := e.vppIfs(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("interfaces changed across the restart:\n%v\n%v", before, after)
		}
		checkDumps(t, e.vpp.APISocket)
	})
}

func missing(t *testing.T, e *env, key string) []string {
	t.Helper()
	resp, err := e.etcd.Get(context.Background(), root("status/"+strings.TrimPrefix(key, "config/")))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("status of %s: %v", key, err)
	}
	var st struct {
		Missing []string `json:"missing"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	return st.Missing
}

// vppDump drains one dump over ch.
func vppDump[T api.Message](t *testing.T, ch api.Channel, req api.Message, newT func() T) []T {
	t.Helper()
	var out []T
	r := ch.SendMultiRequest(req)
	for {
		m := newT()
		last, err := r.ReceiveReply(m)
		if err != nil {
			t.Fatalf("%s: %v", req.GetMessageName(), err)
		}
		if last {
			return out
		}
		out = append(out, m)
	}
}

// checkDumps reads what ligatoConfig should have made from VPP's own
// dumps, over a connection of the test's own.
func checkDumps(t *testing.T, socket string) {
	t.Helper()
	conn, err := govpp.Connect(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	ch, err := conn.NewAPIChannel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ch.SetReplyTimeout(10 * time.Second)

	byTag := map[string]*interfaces.SwInterfaceDetails{}
	for _, d := range vppDump(t, ch, &interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)}, func() *interfaces.SwInterfaceDetails { return &interfaces.SwInterfaceDetails{} }) {
		if d.Tag != "" {
			byTag[d.Tag] = d
		}
	}
	for _, n := range []string{"memif1", "memif2", "memif3", "lo-bvi", "lo-trunk", "sub1", "lo-vrf", "lo-un"} {
		if byTag[n] == nil {
			t.Fatalf("interface %s not in sw_interface_dump (tags: %v)", n, keys(byTag))
		}
	}
	idx := func(n string) uint32 { return uint32(byTag[n].SwIfIndex) }
	sub := byTag["sub1"]
	if sub.Type != interface_types.IF_API_TYPE_SUB || sub.SupSwIfIndex != idx("lo-trunk") || sub.SubID != 100 || sub.SubOuterVlanID != 100 ||
		sub.SubNumberOfTags != 1 || sub.InterfaceName != byTag["lo-trunk"].InterfaceName+".100" {
		t.Errorf("sub1 in VPP: %+v", sub)
	}
	for _, n := range []string{"lo-vrf", "sub1", "lo-un"} {
		r := &interfaces.SwInterfaceGetTableReply{}
		if err := ch.SendRequest(&interfaces.SwInterfaceGetTable{SwIfIndex: byTag[n].SwIfIndex}).ReceiveReply(r); err != nil || r.VrfID != 10 {
			t.Errorf("%s table: %d, %v; want 10", n, r.VrfID, err)
		}
	}

	var blue bool
	for _, d := range vppDump(t, ch, &ip.IPTableDump{}, func() *ip.IPTableDetails { return &ip.IPTableDetails{} }) {
		blue = blue || (d.Table.TableID == 10 && !d.Table.IsIP6 && d.Table.Name == "blue")
	}
	if !blue {
		t.Error("ip_table_dump lacks table 10 \"blue\"")
	}
	var route bool
	for _, d := range vppDump(t, ch, &ip.IPRouteDump{Table: ip.IPTable{TableID: 10}}, func() *ip.IPRouteDetails { return &ip.IPRouteDetails{} }) {
		if d.Route.Prefix.String() != "192.0.2.0/24" {
			continue
		}
		for _, p := range d.Route.Paths {
			nh := ip_types.Address{Af: ip_types.ADDRESS_IP4, Un: p.Nh.Address}
			route = route || (p.SwIfIndex == idx("lo-vrf") && nh.String() == "198.51.100.2" && p.Weight == 5 && p.Type == fib_types.FIB_API_PATH_TYPE_NORMAL)
		}
	}
	if !route {
		t.Error("ip_route_dump of table 10 lacks 192.0.2.0/24 via 198.51.100.2 on lo-vrf, weight 5")
	}
	var neighOK bool
	for _, d := range vppDump(t, ch, &ip_neighbor.IPNeighborDump{SwIfIndex: ^interface_types.InterfaceIndex(0), Af: ip_types.ADDRESS_IP4}, func() *ip_neighbor.IPNeighborDetails { return &ip_neighbor.IPNeighborDetails{} }) {
		n := d.Neighbor
		neighOK = neighOK || (uint32(n.SwIfIndex) == idx("lo-vrf") && n.IPAddress.String() == "198.51.100.2" &&
			n.MacAddress.String() == "02:00:00:00:aa:01" && n.Flags&ip_neighbor.IP_API_NEIGHBOR_FLAG_STATIC != 0)
	}
	if !neighOK {
		t.Error("ip_neighbor_dump lacks the static 198.51.100.2 → 02:00:00:00:aa:01 on lo-vrf")
	}
	var unnum bool
	for _, d := range vppDump(t, ch, &ip.IPUnnumberedDump{SwIfIndex: ^interface_types.InterfaceIndex(0)}, func() *ip.IPUnnumberedDetails { return &ip.IPUnnumberedDetails{} }) {
		unnum = unnum || (uint32(d.SwIfIndex) == idx("lo-un") && uint32(d.IPSwIfIndex) == idx("lo-vrf"))
	}
	if !unnum {
		t.Error("ip_unnumbered_dump lacks lo-un borrowing from lo-vrf")
	}

	var proxyRange, proxyOn bool
	for _, d := range vppDump(t, ch, &arp.ProxyArpDump{}, func() *arp.ProxyArpDetails { return &arp.ProxyArpDetails{} }) {
		proxyRange = proxyRange || (d.Proxy.TableID == 10 && d.Proxy.Low.String() == "198.51.100.10" && d.Proxy.Hi.String() == "198.51.100.20")
	}
	for _, d := range vppDump(t, ch, &arp.ProxyArpIntfcDump{}, func() *arp.ProxyArpIntfcDetails { return &arp.ProxyArpIntfcDetails{} }) {
		proxyOn = proxyOn || d.SwIfIndex == idx("lo-vrf")
	}
	if !proxyRange || !proxyOn {
		t.Errorf("proxy ARP in VPP: range %v, on lo-vrf %v", proxyRange, proxyOn)
	}

	var bdID uint32
	for _, d := range vppDump(t, ch, &l2.BridgeDomainDump{BdID: ^uint32(0), SwIfIndex: ^interface_types.InterfaceIndex(0)}, func() *l2.BridgeDomainDetails { return &l2.BridgeDomainDetails{} }) {
		if d.BdTag == "bd1" {
			bdID = d.BdID
			if uint32(d.BviSwIfIndex) != idx("lo-bvi") || len(d.SwIfDetails) != 2 {
				t.Errorf("bd1 in VPP: %+v", d)
			}
		}
	}
	if bdID == 0 {
		t.Fatal("bridge_domain_dump lacks bd1")
	}
	var fib bool
	for _, d := range vppDump(t, ch, &l2.L2FibTableDump{BdID: bdID}, func() *l2.L2FibTableDetails { return &l2.L2FibTableDetails{} }) {
		fib = fib || (d.Mac.String() == "02:00:00:00:bb:01" && uint32(d.SwIfIndex) == idx("memif3") && d.StaticMac && !d.FilterMac)
	}
	if !fib {
		t.Error("l2_fib_table_dump lacks the static 02:00:00:00:bb:01 → memif3")
	}
	xc := map[uint32]uint32{}
	for _, d := range vppDump(t, ch, &l2.L2XconnectDump{}, func() *l2.L2XconnectDetails { return &l2.L2XconnectDetails{} }) {
		xc[uint32(d.RxSwIfIndex)] = uint32(d.TxSwIfIndex)
	}
	if xc[idx("memif1")] != idx("memif2") || xc[idx("memif2")] != idx("memif1") {
		t.Errorf("l2_xconnect_dump: %v, want memif1 ⇄ memif2", xc)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
