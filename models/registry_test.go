package models

import (
	"strings"
	"testing"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/models/vpp/l2"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

func TestUnmarshalLigatoJSON(t *testing.T) {
	// A Ligato user's etcdctl value, with snake_case names and an enum name.
	v, err := Unmarshal("config/vpp/v2/interfaces/memif1",
		[]byte(`{"name":"memif1","type":"MEMIF","enabled":true,"memif":{"master":true,"id":1,"socket_filename":"/run/vpp/memif.sock"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ifc := v.(*interfaces.Interface)
	if ifc.GetType() != interfaces.Interface_MEMIF || !ifc.GetMemif().GetMaster() || ifc.GetMemif().GetSocketFilename() != "/run/vpp/memif.sock" {
		t.Fatalf("decoded %v", ifc)
	}
	// lowerCamel names and enum numbers work too.
	v, err = Unmarshal("config/vpp/v2/interfaces/vh1",
		[]byte(`{"name":"vh1","type":100,"vhostUser":{"socketFilename":"/tmp/vh.sock","server":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if v.(*interfaces.Interface).GetVhostUser().GetSocketFilename() != "/tmp/vh.sock" {
		t.Fatalf("decoded %v", v)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	cases := map[string]struct{ key, val, want string }{
		"malformed":     {"config/vpp/v2/interfaces/a", `{"name":`, "invalid"},
		"unknown field": {"config/vpp/v2/interfaces/a", `{"name":"a","colour":"red"}`, "unknown field"},
		"unknown enum":  {"config/vpp/v2/interfaces/a", `{"name":"a","type":"WORMHOLE"}`, "WORMHOLE"},
		"key mismatch":  {"config/vpp/v2/interfaces/a", `{"name":"b"}`, "does not match"},
		"unknown model": {"config/vpp/v9/things/a", `{}`, "no model"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Unmarshal(c.key, []byte(c.val))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	got, err := KeyOf(&l2.XConnectPair{ReceiveInterface: "m1", TransmitInterface: "m2"})
	if err != nil || got != "config/vpp/l2/v2/xconnect/m1" {
		t.Fatalf("xconnect key %q, %v", got, err)
	}
	got, err = KeyOf(&vppmeshv1.CrossConnect{Name: "xc1"})
	if err != nil || got != "config/vppmesh/v1/xconnect/xc1" {
		t.Fatalf("crossconnect key %q, %v", got, err)
	}
	if _, err := KeyOf(&l2.BridgeDomain{}); err == nil {
		t.Fatal("empty name accepted")
	}
	if StatusKey("config/vpp/v2/interfaces/m1") != "status/vpp/v2/interfaces/m1" {
		t.Fatal(StatusKey("config/vpp/v2/interfaces/m1"))
	}
}
