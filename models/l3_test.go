package models

import (
	"errors"
	"strings"
	"testing"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/models/vpp/l3"
)

// Keys and values exactly as Ligato v3.5's documentation and users put them.
func TestLigatoL2L3Keys(t *testing.T) {
	cases := map[string]string{
		"config/vpp/l2/v2/fib/bd1/mac/62:89:C6:A3:6D:5E":                   `{"phys_address":"62:89:C6:A3:6D:5E","bridge_domain":"bd1","outgoing_interface":"tap1","static_config":true,"bridged_virtual_interface":false}`,
		"config/vpp/v2/vrf-table/id/1/protocol/IPV6":                       `{"id":1,"protocol":"IPV6","label":"v6-table"}`,
		"config/vpp/v2/vrf-table/id/0/protocol/IPV4":                       `{"label":"default"}`,
		"config/vpp/v2/arp/tap1/192.168.10.21":                             `{"interface":"tap1","ip_address":"192.168.10.21","phys_address":"59:6C:45:59:8E:BD","static":true}`,
		"config/vpp/v2/route/vrf/0/dst/10.1.1.3/32/gw/192.168.1.13":        `{"type":"INTRA_VRF","dst_network":"10.1.1.3/32","next_hop_addr":"192.168.1.13","outgoing_interface":"tap1","weight":6}`,
		"config/vpp/v2/route/if/tap1/vrf/0/dst/10.1.1.0/24/gw/192.168.1.1": `{"dst_network":"10.1.1.0/24","next_hop_addr":"192.168.1.1","outgoing_interface":"tap1"}`,
		"config/vpp/v2/route/vrf/1/dst/1.2.3.4/32/":                        `{"type":"INTER_VRF","dst_network":"1.2.3.4/32","via_vrf_id":1}`,
		"config/vpp/v2/route/vrf/0/dst/10.10.0.0/24/gw/0.0.0.0":            `{"dst_network":"10.10.0.10/24","outgoing_interface":"tap1"}`,
		"config/vpp/v2/proxyarp-global/settings":                           `{"interfaces":[{"name":"tap1"},{"name":"tap2"}],"ranges":[{"first_ip_addr":"10.0.0.1","last_ip_addr":"10.0.0.3"}]}`,
		"config/vpp/v2/interfaces/sub1":                                    `{"name":"sub1","type":"SUB_INTERFACE","enabled":true,"vrf":1,"sub":{"parent_name":"memif1","sub_id":10,"tag_rw_option":"POP1"}}`,
		"config/vpp/v2/interfaces/un1":                                     `{"name":"un1","type":"SOFTWARE_LOOPBACK","unnumbered":{"interface_with_ip":"lo1"},"rx_modes":[{"queue":0,"mode":"INTERRUPT"}]}`,
	}
	for key, val := range cases {
		if _, err := Unmarshal(key, []byte(val)); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	// The key's VRF fills a route's zero vrf_id, as in Ligato.
	v, err := Unmarshal("config/vpp/v2/route/vrf/1/dst/1.2.3.4/32/", []byte(`{"type":"INTER_VRF","dst_network":"1.2.3.4/32","via_vrf_id":2}`))
	if err != nil || v.(*l3.Route).GetVrfId() != 1 {
		t.Fatalf("route vrf from key: %v %v", v, err)
	}
	sub, _ := Unmarshal("config/vpp/v2/interfaces/sub1", []byte(cases["config/vpp/v2/interfaces/sub1"]))
	if s := sub.(*interfaces.Interface).GetSub(); s.GetParentName() != "memif1" || s.GetSubId() != 10 || s.GetTagRwOption() != interfaces.SubInterface_POP1 {
		t.Fatalf("sub-interface decoded as %v", s)
	}
}

func TestLigatoL2L3KeyMismatch(t *testing.T) {
	cases := map[string]struct{ key, val, want string }{
		"fib mac":     {"config/vpp/l2/v2/fib/bd1/mac/02:00:00:00:00:01", `{"phys_address":"02:00:00:00:00:02","bridge_domain":"bd1"}`, "does not match"},
		"vrf proto":   {"config/vpp/v2/vrf-table/id/1/protocol/IPV4", `{"id":1,"protocol":"IPV6"}`, "does not match"},
		"arp ip":      {"config/vpp/v2/arp/tap1/192.0.2.1", `{"interface":"tap1","ip_address":"192.0.2.2"}`, "does not match"},
		"route dst":   {"config/vpp/v2/route/vrf/0/dst/10.0.0.0/24", `{"dst_network":"10.0.1.0/24","outgoing_interface":"a"}`, "dst"},
		"route vrf":   {"config/vpp/v2/route/vrf/2/dst/10.0.0.0/24", `{"vrf_id":3,"dst_network":"10.0.0.0/24","outgoing_interface":"a"}`, "vrf_id 3"},
		"route gw":    {"config/vpp/v2/route/vrf/0/dst/10.0.0.0/24/gw/10.1.1.1", `{"dst_network":"10.0.0.0/24","next_hop_addr":"10.1.1.2"}`, "next_hop_addr"},
		"route if":    {"config/vpp/v2/route/if/a/vrf/0/dst/10.0.0.0/24", `{"dst_network":"10.0.0.0/24","outgoing_interface":"b"}`, "outgoing_interface"},
		"route shape": {"config/vpp/v2/route/10.0.0.0/24", `{"dst_network":"10.0.0.0/24"}`, "form"},
		"route dstv":  {"config/vpp/v2/route/vrf/0/dst/10.0.0.0/24", `{"dst_network":"10.0.0.0"}`, "dst_network"},
	}
	for name, c := range cases {
		_, err := Unmarshal(c.key, []byte(c.val))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestKeyOfL2L3(t *testing.T) {
	got, _ := KeyOf(&l2.FIBEntry{BridgeDomain: "bd1", PhysAddress: "02:00:00:00:00:01"})
	if got != "config/vpp/l2/v2/fib/bd1/mac/02:00:00:00:00:01" {
		t.Error(got)
	}
	got, _ = KeyOf(&l3.VrfTable{Id: 4, Protocol: l3.VrfTable_IPV6})
	if got != "config/vpp/v2/vrf-table/id/4/protocol/IPV6" {
		t.Error(got)
	}
	got, _ = KeyOf(&l3.Route{VrfId: 1, DstNetwork: "10.0.0.9/24", NextHopAddr: "10.0.0.1", OutgoingInterface: "a"})
	if got != "config/vpp/v2/route/if/a/vrf/1/dst/10.0.0.0/24/gw/10.0.0.1" {
		t.Error(got)
	}
	got, _ = KeyOf(&l3.Route{DstNetwork: "2001:DB8::1/32", OutgoingInterface: ""})
	if got != "config/vpp/v2/route/vrf/0/dst/2001:db8::/32" {
		t.Error(got)
	}
	if _, err := KeyOf(&l3.ARPEntry{Interface: "a"}); err == nil {
		t.Error("ARP entry without an IP got a key")
	}
	// Every key KeyOf makes parses back to its value.
	r := &l3.Route{VrfId: 1, DstNetwork: "10.0.0.0/24", NextHopAddr: "10.0.0.1", OutgoingInterface: "a"}
	k, _ := KeyOf(r)
	if err := matchRouteKey(strings.TrimPrefix(k, "config/vpp/v2/route/"), r); err != nil {
		t.Errorf("own key %s does not match: %v", k, err)
	}
}

func TestUnsupportedLigatoModel(t *testing.T) {
	_, err := Unmarshal("config/vpp/nat/v2/nat44-global/settings", []byte(`{}`))
	var u *UnsupportedModelError
	if !errors.As(err, &u) || u.Model != "vpp.nat" || !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "model vpp.nat is not supported by vppmesh (supported: vpp.interfaces, ") ||
		!strings.Contains(err.Error(), "vpp.l2.fib") {
		t.Fatalf("message %q", err)
	}
	_, err = Unmarshal("config/nonsense/x", []byte(`{}`))
	if !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "supported: ") {
		t.Fatalf("unknown key: %v", err)
	}
}
