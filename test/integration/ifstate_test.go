package integration

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	gomemif "github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// ifState reads the agent's Ligato oper-state key of an interface.
func (e *env) ifState(name string) (*ifmodel.InterfaceState, bool) {
	e.t.Helper()
	resp, err := e.etcd.Get(context.Background(), root("vpp/status/v2/interface/"+name))
	if err != nil || len(resp.Kvs) == 0 {
		return nil, false
	}
	st := &ifmodel.InterfaceState{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(resp.Kvs[0].Value, st); err != nil {
		e.t.Fatalf("state of %s: %v: %s", name, err, resp.Kvs[0].Value)
	}
	return st, true
}

func (e *env) waitIfState(name string, admin, oper ifmodel.InterfaceState_Status) {
	e.t.Helper()
	var last *ifmodel.InterfaceState
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := e.ifState(name)
		if ok && st.GetAdminStatus() == admin && st.GetOperStatus() == oper {
			return
		}
		last = st
		if time.Now().After(deadline) {
			e.t.Fatalf("state of %s: %v, want admin %v oper %v", name, last, admin, oper)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// VPP's sw_interface_event carries only the "went up" bits of its batch
// (a peer connecting on an admin-up memif: LINK_UP alone; a link going
// down: 0), so the status key must come from VPP's flags, not from the
// event's bits: admin UP + oper UP with a peer, admin UP + oper DOWN when
// it leaves, admin DOWN once disabled.
func TestInterfaceStatusFollowsMemifPeer(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := filepath.Join(e.vpp.Dir, "st.sock")
		e.put("config/vpp/v2/interfaces/mst", memif("mst", 3, sock))
		e.waitState("config/vpp/v2/interfaces/mst", "CONFIGURED")
		e.waitIfState("mst", ifmodel.InterfaceState_UP, ifmodel.InterfaceState_DOWN)

		peer, err := gomemif.NewSlave(sock, gomemif.Config{ID: 3, Log2RingSize: 9, BufferSize: 1024,
			RetryInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		if err := peer.Connect(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := peer.WaitUp(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitIfState("mst", ifmodel.InterfaceState_UP, ifmodel.InterfaceState_UP)

		if err := peer.Close(); err != nil {
			t.Fatal(err)
		}
		e.waitIfState("mst", ifmodel.InterfaceState_UP, ifmodel.InterfaceState_DOWN)

		e.put("config/vpp/v2/interfaces/mst", `{"name":"mst","type":"MEMIF","enabled":false,"memif":{"master":true,"id":3,"socket_filename":"`+sock+`"}}`)
		e.waitIfState("mst", ifmodel.InterfaceState_DOWN, ifmodel.InterfaceState_DOWN)
	})
}
