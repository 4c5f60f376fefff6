package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"

	"github.com/vppmesh/vppmesh/test/etcdtest"
)

// programPair does in VPP what the agent does for cross-connect name: two
// memifs tagged <name>-a and <name>-b, admin up, and (when xc) the
// cross-connect both ways.
func programPair(ctx context.Context, t *testing.T, v *VPP, name string, sockID uint32, id uint32, xc bool) {
	t.Helper()
	var idx []interface_types.InterfaceIndex
	for i, side := range []string{"a", "b"} {
		r := &memif.MemifCreateV2Reply{}
		if err := v.ch.SendRequest(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, RxQueues: 1, TxQueues: 1,
			ID: id + uint32(i), SocketID: sockID, RingSize: 1024, BufferSize: 2048}).ReceiveReply(r); err != nil {
			t.Fatal(err)
		}
		idx = append(idx, r.SwIfIndex)
		msgs := []api.Message{
			&interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: r.SwIfIndex, Tag: name + "-" + side},
			&interfaces.SwInterfaceSetFlags{SwIfIndex: r.SwIfIndex, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP},
		}
		if _, err := v.pipeline(ctx, msgs, newGenericReply(msgs)); err != nil {
			t.Fatal(err)
		}
	}
	if !xc {
		return
	}
	msgs := []api.Message{
		&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: idx[0], TxSwIfIndex: idx[1], Enable: true},
		&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: idx[1], TxSwIfIndex: idx[0], Enable: true},
	}
	if _, err := v.pipeline(ctx, msgs, func() api.Message { return &l2.SwInterfaceSetL2XconnectReply{} }); err != nil {
		t.Fatal(err)
	}
}

// The observer reports a cross-connect programmed only when the agent's
// status says CONFIGURED and VPP announced both ends up; Verify catches a
// CONFIGURED claim VPP does not back.
func TestXCObserverAgainstVppsim(t *testing.T) {
	sim := quietSim(t)
	et := etcdtest.Start(t, etcdtest.Options{})
	cli := et.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := DialVPP(ctx, sim.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.ch.SendRequest(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 7,
		SocketFilename: filepath.Join(t.TempDir(), "o.sock")}).ReceiveReply(&memif.MemifSocketFilenameAddDelV2Reply{}); err != nil {
		t.Fatal(err)
	}
	o, err := NewXCObserver(ctx, v, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	// status writes name's document as the agent does: the cross-connect's
	// state and its four derived values, all in derivedState.
	status := func(name, state, derivedState string) {
		t.Helper()
		var derived []string
		for _, k := range []string{"interfaces/" + name + "-a", "interfaces/" + name + "-b", "l2/v2/xconnect/" + name + "-a", "l2/v2/xconnect/" + name + "-b"} {
			derived = append(derived, fmt.Sprintf(`{"key":"config/vpp/%s","state":%q}`, k, derivedState))
		}
		doc := fmt.Sprintf(`{"key":"config/vppmesh/v1/xconnect/%s","state":%q,"derived":[%s]}`, name, state, strings.Join(derived, ","))
		if _, err := cli.Put(ctx, XCStatusKey(name), doc); err != nil {
			t.Fatal(err)
		}
	}

	// p1: the agent says CONFIGURED only after programming; Wait sees both.
	start := time.Now()
	programPair(ctx, t, v, "p1", 7, 1, true)
	status("p1", "PENDING", "PENDING")
	status("p1", "CONFIGURED", "CONFIGURED")
	sg, err := o.Wait(ctx, "p1", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sg.BothUp.Before(start) || sg.Configured.Before(start) || time.Since(sg.Programmed()) < 0 {
		t.Fatalf("sighting %+v outside the put's window starting %v", sg, start)
	}
	// The status was written after VPP had both ends up: that is the later.
	if !sg.Programmed().Equal(sg.Configured) || sg.Configured.Before(sg.BothUp) {
		t.Fatalf("sighting %+v: CONFIGURED came last, Programmed must be it", sg)
	}
	if err := o.Verify(ctx, []string{"p1"}); err != nil {
		t.Fatal(err)
	}

	// p2: interfaces up, status CONFIGURED, no cross-connect in VPP: Wait
	// cannot tell, the final check must.
	programPair(ctx, t, v, "p2", 7, 3, false)
	status("p2", "CONFIGURED", "CONFIGURED")
	if _, err := o.Wait(ctx, "p2", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := o.Verify(ctx, []string{"p1", "p2"}); err == nil || !strings.Contains(err.Error(), "p2") || strings.Contains(err.Error(), "p1,") {
		t.Fatalf("Verify = %v, want p2 (only) reported missing", err)
	}

	// p4: the cross-connect itself CONFIGURED (it makes no VPP call and is
	// created before its derived values) while its derived values are
	// still PENDING: not programmed yet, no sighting.
	programPair(ctx, t, v, "p4", 7, 7, true)
	status("p4", "CONFIGURED", "PENDING")
	if _, err := o.Wait(ctx, "p4", 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "CONFIGURED false") {
		t.Fatalf("Wait(p4) = %v, want a timeout: derived values PENDING", err)
	}

	// p3: programmed in VPP but the agent never says CONFIGURED: no sighting.
	programPair(ctx, t, v, "p3", 7, 5, true)
	status("p3", "FAILED", "CONFIGURED")
	if _, err := o.Wait(ctx, "p3", 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "CONFIGURED false") {
		t.Fatalf("Wait(p3) = %v, want a timeout without CONFIGURED", err)
	}
}

// WaitAll returns when every named cross-connect's status says it and its
// derived values are CONFIGURED, at the time the last one did; a
// cross-connect whose derived values are still PENDING holds it back.
func TestStatusObserverWaitAll(t *testing.T) {
	et := etcdtest.Start(t, etcdtest.Options{})
	cli := et.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := NewStatusObserver(ctx, nil, cli)
	defer o.Close()
	doc := func(name, derived string) string {
		return fmt.Sprintf(`{"key":"config/vppmesh/v1/xconnect/%s","state":"CONFIGURED","derived":[{"key":"config/vpp/v2/interfaces/%s-a","state":%q}]}`, name, name, derived)
	}
	put := func(name, derived string) {
		t.Helper()
		if _, err := cli.Put(ctx, XCStatusKey(name), doc(name, derived)); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "CONFIGURED")
	put("b", "PENDING")
	if _, err := o.WaitAll(ctx, []string{"a", "b"}, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "1 of 2") || !strings.Contains(err.Error(), "first: b") {
		t.Fatalf("WaitAll with b PENDING = %v, want b reported missing", err)
	}
	before := time.Now()
	put("b", "CONFIGURED")
	last, err := o.WaitAll(ctx, []string{"a", "b"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if last.Before(before) || last.After(time.Now()) {
		t.Fatalf("WaitAll = %v, want the time b was seen (after %v)", last, before)
	}
}
