package xconnect

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

func memifEP(id uint32) *vppmeshv1.Endpoint {
	return &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: id, SocketFilename: "/run/cnf.sock"}}, Mtu: 1500}
}

func TestValidate(t *testing.T) {
	ok := &vppmeshv1.CrossConnect{Name: "x1", A: memifEP(1), B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: "/run/vm.sock", Server: true}}}}
	if err := Validate(Key("x1"), ok); err != nil {
		t.Fatalf("valid cross-connect rejected: %v", err)
	}
	cases := map[string]*vppmeshv1.CrossConnect{
		"empty name":  {A: memifEP(1), B: memifEP(2)},
		"long name":   {Name: strings.Repeat("n", 62), A: memifEP(1), B: memifEP(2)},
		"missing b":   {Name: "x", A: memifEP(1)},
		"no link":     {Name: "x", A: memifEP(1), B: &vppmeshv1.Endpoint{Mtu: 1500}},
		"empty vhost": {Name: "x", A: memifEP(1), B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_VhostUser{VhostUser: &ifmodel.VhostUserLink{}}}},
		"nil memif":   {Name: "x", A: memifEP(1), B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{}}},
	}
	for name, v := range cases {
		if err := Validate(Key(v.GetName()), v); err == nil {
			t.Errorf("%s: accepted, want an error", name)
		}
	}
	if err := Validate("k", &vppmeshv1.CrossConnect{Name: strings.Repeat("n", 61), A: memifEP(1), B: memifEP(2)}); err != nil {
		t.Errorf("61-byte name (derived names 63 bytes) rejected: %v", err)
	}
}

func TestDerive(t *testing.T) {
	v := &vppmeshv1.CrossConnect{Name: "web", A: memifEP(7), B: &vppmeshv1.Endpoint{
		Link:        &vppmeshv1.Endpoint_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: "/run/vm.sock"}},
		PhysAddress: "02:00:00:00:00:0b",
	}}
	got := Derive(v)
	if len(got) != 4 {
		t.Fatalf("derived %d values, want 4", len(got))
	}
	wantA := &ifmodel.Interface{Name: "web-a", Type: ifmodel.Interface_MEMIF, Enabled: true, Mtu: 1500,
		Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 7, SocketFilename: "/run/cnf.sock"}}}
	wantB := &ifmodel.Interface{Name: "web-b", Type: ifmodel.Interface_VHOST_USER, Enabled: true, PhysAddress: "02:00:00:00:00:0b",
		Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: "/run/vm.sock"}}}
	want := map[string]proto.Message{
		"config/vpp/v2/interfaces/web-a":  wantA,
		"config/vpp/v2/interfaces/web-b":  wantB,
		"config/vpp/l2/v2/xconnect/web-a": &l2model.XConnectPair{ReceiveInterface: "web-a", TransmitInterface: "web-b"},
		"config/vpp/l2/v2/xconnect/web-b": &l2model.XConnectPair{ReceiveInterface: "web-b", TransmitInterface: "web-a"},
	}
	for _, kv := range got {
		w, ok := want[kv.Key]
		if !ok {
			t.Errorf("unexpected derived key %s", kv.Key)
			continue
		}
		if !proto.Equal(w, kv.Value) {
			t.Errorf("%s = %v, want %v", kv.Key, kv.Value, w)
		}
	}
	// An rx_mode applies to all queues of the memif or vhost-user
	// interface; a vxlan end has no queues of its own and ignores it.
	v.A.RxMode, v.B.RxMode = ifmodel.Interface_RxMode_ADAPTIVE, ifmodel.Interface_RxMode_INTERRUPT
	for _, kv := range Derive(v)[:2] {
		modes := kv.Value.(*ifmodel.Interface).GetRxModes()
		if len(modes) != 1 || !modes[0].GetDefaultMode() || (kv.Key == "config/vpp/v2/interfaces/web-a") != (modes[0].GetMode() == ifmodel.Interface_RxMode_ADAPTIVE) {
			t.Errorf("%s rx modes %v, want the endpoint's mode for all queues", kv.Key, modes)
		}
	}
	x := &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Vxlan{Vxlan: &vppmeshv1.VxlanEnd{Remote: "198.51.100.2", Vni: 5, Uplink: "up"}}, RxMode: ifmodel.Interface_RxMode_INTERRUPT}
	if m := endpointInterface("x", x).GetRxModes(); len(m) != 0 {
		t.Errorf("vxlan end got rx modes %v", m)
	}
	v.A.RxMode, v.B.RxMode = 0, 0
	// Deriving must not alias the parent's link: changing the derived value
	// would otherwise silently change the desired CrossConnect.
	got[0].Value.(*ifmodel.Interface).GetMemif().Id = 99
	if v.GetA().GetMemif().GetId() != 7 {
		t.Error("derived interface shares the parent's memif link")
	}
}
