package vpptarget

import (
	"context"
	"os"
	"testing"
	"time"

	"go.fd.io/govpp"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
)

func TestImplsFromEnv(t *testing.T) {
	for env, want := range map[string]int{"vppsim": 1, "vpp": 1, "both": 2, "": 2} {
		t.Setenv("VPP_IMPL", env)
		got, err := Impls()
		if err != nil || len(got) != want {
			t.Errorf("VPP_IMPL=%q: %v %v", env, got, err)
		}
	}
	t.Setenv("VPP_IMPL", "dpdk")
	if _, err := Impls(); err == nil {
		t.Error("VPP_IMPL=dpdk accepted")
	}
}

func call(t *testing.T, ch api.Channel, req, rep api.Message) {
	t.Helper()
	if err := ch.SendRequest(req).ReceiveReply(rep); err != nil {
		t.Fatalf("%s: %v", req.GetMessageName(), err)
	}
}

// TestDumpsAgreeOnBoth programs two loopbacks, an xconnect and a bridge
// domain straight through govpp, reads them back through the Target's
// dumps, then kills and restarts the implementation: state is gone.
func TestDumpsAgreeOnBoth(t *testing.T) {
	ForEach(t, Options{}, func(t *testing.T, tg *Target) {
		ctx := context.Background()
		conn, err := govpp.Connect(tg.APISocket)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := conn.NewAPIChannel()
		if err != nil {
			t.Fatal(err)
		}
		var idx [3]interface_types.InterfaceIndex
		for i := range idx {
			rep := &interfaces.CreateLoopbackReply{}
			call(t, ch, &interfaces.CreateLoopback{}, rep)
			idx[i] = rep.SwIfIndex
			call(t, ch, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: rep.SwIfIndex, Tag: []string{"a", "b", "c"}[i]}, &interfaces.SwInterfaceTagAddDelReply{})
		}
		call(t, ch, &interfaces.SwInterfaceSetFlags{SwIfIndex: idx[0], Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}, &interfaces.SwInterfaceSetFlagsReply{})
		call(t, ch, &l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: idx[0], TxSwIfIndex: idx[1], Enable: true}, &l2.SwInterfaceSetL2XconnectReply{})
		call(t, ch, &l2.BridgeDomainAddDelV2{BdID: 7, Flood: true, Learn: true, Forward: true, IsAdd: true}, &l2.BridgeDomainAddDelV2Reply{})
		call(t, ch, &l2.SwInterfaceSetL2Bridge{RxSwIfIndex: idx[2], BdID: 7, Enable: true}, &l2.SwInterfaceSetL2BridgeReply{})
		ch.Close()
		conn.Disconnect()

		a, ok, err := tg.InterfaceByTag(ctx, "a")
		if err != nil || !ok || !a.AdminUp || a.SwIfIndex != uint32(idx[0]) {
			t.Fatalf("a: %+v %v %v", a, ok, err)
		}
		b, _, _ := tg.InterfaceByTag(ctx, "b")
		c, _, _ := tg.InterfaceByTag(ctx, "c")
		if a.L2 != "xconnect "+b.Name || b.AdminUp || c.L2 != "bridge 7" {
			t.Fatalf("l2: a=%+v b=%+v c=%+v", a, b, c)
		}
		bds, err := tg.BridgeDomains(ctx)
		if err != nil || len(bds) != 1 || bds[0].ID != 7 || !bds[0].Flood || len(bds[0].Members) != 1 {
			t.Fatalf("bridge domains %+v %v", bds, err)
		}
		if _, err := tg.CLI(ctx, "show interface"); err != nil {
			t.Fatal(err)
		}
		if !tg.CanRestart() {
			return
		}
		tg.Kill()
		if tg.Ping() == nil {
			t.Fatal("answers after Kill")
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := tg.Restart(rctx); err != nil {
			t.Fatal(err)
		}
		ifs, err := tg.Interfaces(ctx)
		if err != nil || len(ifs) != 1 || ifs[0].Name != "local0" {
			t.Fatalf("after restart: %+v %v", ifs, err)
		}
		if _, err := os.Stat(tg.StatsSocket); err != nil {
			t.Fatalf("stats socket after restart: %v", err)
		}
	})
}
