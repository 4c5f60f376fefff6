package xconnect

import (
	"context"
	"strings"
	"testing"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/sockdir"
)

// TestSocketPolicyMarksKeyInvalid: a cross-connect whose endpoint names a
// socket outside the allowed directories (the attack: a memif master over
// /var/run/docker.sock) ends INVALID with an error naming the path and the
// flag, while a compliant one is accepted.
func TestSocketPolicyMarksKeyInvalid(t *testing.T) {
	pol, err := sockdir.New([]string{"/run/vppmesh/sockets"})
	if err != nil {
		t.Fatal(err)
	}
	s := kvscheduler.New(kvscheduler.Options{})
	defer s.Close()
	if err := NewWith(Options{SocketPolicy: pol}).Register(s); err != nil {
		t.Fatal(err)
	}
	ep := func(path string) *vppmeshv1.Endpoint {
		return &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 1, SocketFilename: path}}}
	}
	vh := &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: "/tmp/x", Server: true}}}
	vals := []kvscheduler.KeyValue{
		{Key: Key("bad"), Value: &vppmeshv1.CrossConnect{Name: "bad", A: ep("/var/run/docker.sock"), B: ep("/run/vppmesh/sockets/m.sock")}},
		{Key: Key("dotdot"), Value: &vppmeshv1.CrossConnect{Name: "dotdot", A: ep("/run/vppmesh/sockets/../../vpp/api.sock"), B: ep("/run/vppmesh/sockets/m.sock")}},
		{Key: Key("vh"), Value: &vppmeshv1.CrossConnect{Name: "vh", A: ep("/run/vppmesh/sockets/m.sock"), B: vh}},
		{Key: Key("mtu"), Value: &vppmeshv1.CrossConnect{Name: "mtu", A: ep("/run/vppmesh/sockets/m.sock"), B: &vppmeshv1.Endpoint{Link: ep("/run/vppmesh/sockets/n.sock").Link, Mtu: 65000}}},
		{Key: Key("rxmode"), Value: &vppmeshv1.CrossConnect{Name: "rxmode", A: ep("/run/vppmesh/sockets/m.sock"), B: &vppmeshv1.Endpoint{Link: ep("/run/vppmesh/sockets/n.sock").Link, RxMode: 9}}},
		{Key: Key("good"), Value: &vppmeshv1.CrossConnect{Name: "good", A: ep("/run/vppmesh/sockets/m.sock"), B: ep("/run/vppmesh/sockets/n.sock")}},
	}
	if _, err := s.Commit(context.Background(), kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: vals}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		Key("bad"):    "/var/run/docker.sock",
		Key("dotdot"): "clean path",
		Key("vh"):     "vhost_user socket_filename \"/tmp/x\"",
		Key("mtu"):    "mtu 65000 out of range",
		Key("rxmode"): "rx_mode 9 is not",
	} {
		st, ok := s.StatusOf(key)
		if !ok || st.State != kvscheduler.StateInvalid || !strings.Contains(st.Error, want) {
			t.Errorf("%s: state %s error %q, want INVALID naming %q", key, st.State, st.Error, want)
		}
	}
	if st, _ := s.StatusOf(Key("good")); st.State == kvscheduler.StateInvalid {
		t.Errorf("compliant cross-connect: %s %s", st.State, st.Error)
	}
}
