package orchestrator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

func readStatus(t *testing.T, cli *clientv3.Client, label, rel string) (KeyStatus, bool) {
	t.Helper()
	raw, ok := mustGet(t, cli, "/vnf-agent/"+label+"/status/"+strings.TrimPrefix(rel, "config/"))
	if !ok {
		return KeyStatus{}, false
	}
	var ks KeyStatus
	if err := json.Unmarshal([]byte(raw), &ks); err != nil {
		t.Fatalf("status of %s: %v: %s", rel, err, raw)
	}
	return ks, true
}

func TestInitialLoadThenWatchInOrder(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	for i, n := range []string{"m1", "m2", "m3", "m4", "m5"} {
		mustPut(t, cli, ifKey("a", n), memifJSON(n, i+1))
	}
	mustPut(t, cli, ifKey("other", "x"), memifJSON("x", 9)) // another agent's key
	s := newMemSched()
	r := runOrch(t, cli, "a", s, func(o *Options) { o.ListPageSize = 2 })
	waitFor(t, "ready", r.o.Ready)

	txns := s.txnList()
	if len(txns) != 1 || txns[0].Kind != kvscheduler.TxnFullResync || len(txns[0].Values) != 5 {
		t.Fatalf("want one full resync of 5 keys (listed in pages of 2), got %+v", txns)
	}

	mustPut(t, cli, ifKey("a", "m6"), memifJSON("m6", 6))
	mustPut(t, cli, ifKey("a", "m1"), strings.Replace(memifJSON("m1", 1), `"enabled":true`, `"enabled":false`, 1))
	mustPut(t, cli, ifKey("a", "m3"), memifJSON("m3", 3)) // same value: no change
	if _, err := cli.Delete(context.Background(), ifKey("a", "m2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delete of m2", func() bool { _, ok := s.snapshot()[ifRel("m2")]; return !ok })

	var seq []string
	for _, tx := range s.txnList()[1:] {
		if tx.Kind != kvscheduler.TxnChange {
			t.Fatalf("unexpected %s txn", tx.Kind)
		}
		for _, kv := range tx.Values {
			op := "put"
			if kv.Value == nil {
				op = "del"
			}
			seq = append(seq, op+" "+kv.Key)
		}
	}
	want := []string{"put " + ifRel("m6"), "put " + ifRel("m1"), "del " + ifRel("m2")}
	if strings.Join(seq, ",") != strings.Join(want, ",") {
		t.Fatalf("changes reached the scheduler as %v, want %v", seq, want)
	}
	if m1 := s.snapshot()[ifRel("m1")].(*interfaces.Interface); m1.GetEnabled() {
		t.Fatal("update of m1 not applied")
	}
	if st := r.o.Stats(); st.EtcdEvents != 4 || st.ParseErrors != 0 || st.Resyncs != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Status keys follow: CONFIGURED for live keys, gone for the deleted one.
	waitFor(t, "status of m6", func() bool {
		ks, ok := readStatus(t, cli, "a", ifRel("m6"))
		return ok && ks.State == kvscheduler.StateConfigured
	})
	waitFor(t, "status of m2 deleted", func() bool { _, ok := readStatus(t, cli, "a", ifRel("m2")); return !ok })
	if n := countPrefix(t, cli, "/vnf-agent/other/status/"); n != 0 {
		t.Fatalf("wrote %d status keys for another agent", n)
	}
}

func TestBadKeysInOneEtcdTxnOnlyAffectThemselves(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	s := newMemSched()
	r := runOrch(t, cli, "a", s, nil)
	waitFor(t, "ready", r.o.Ready)

	bad := map[string]string{
		ifKey("a", "badjson"):                  `{"name":"badjson",`,
		ifKey("a", "unknownf"):                 `{"name":"unknownf","colour":"red"}`,
		ifKey("a", "badenum"):                  `{"name":"badenum","type":"WARP_DRIVE"}`,
		ifKey("a", "mismatch"):                 memifJSON("other-name", 1),
		"/vnf-agent/a/config/nosuchmodel/v1/x": `{}`,
	}
	ops := []clientv3.Op{clientv3.OpPut(ifKey("a", "good1"), memifJSON("good1", 1))}
	for k, v := range bad {
		ops = append(ops, clientv3.OpPut(k, v))
	}
	ops = append(ops, clientv3.OpPut(ifKey("a", "good2"), memifJSON("good2", 2)))
	if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "good keys", func() bool { return len(s.snapshot()) == 2 })
	if got := keysOf(s.snapshot()); got[0] != ifRel("good1") || got[1] != ifRel("good2") {
		t.Fatalf("desired %v", got)
	}
	if st := r.o.Stats(); st.ParseErrors != uint64(len(bad)) {
		t.Fatalf("parse errors %d, want %d", st.ParseErrors, len(bad))
	}
	for k := range bad {
		rel := strings.TrimPrefix(k, "/vnf-agent/a/")
		waitFor(t, "status of "+rel, func() bool { _, ok := readStatus(t, cli, "a", rel); return ok })
		ks, _ := readStatus(t, cli, "a", rel)
		if ks.State != kvscheduler.StateInvalid || ks.Error == "" || ks.Key != rel || ks.LastChange == "" {
			t.Errorf("status of %s: %+v", rel, ks)
		}
	}
	ks, _ := readStatus(t, cli, "a", ifRel("mismatch"))
	if !strings.Contains(ks.Error, "does not match") {
		t.Errorf("mismatch error not explained: %q", ks.Error)
	}
	waitFor(t, "status of good1", func() bool {
		ks, ok := readStatus(t, cli, "a", ifRel("good1"))
		return ok && ks.State == kvscheduler.StateConfigured
	})

	// Deleting a key that never was valid removes its status; nothing is
	// sent to the scheduler for it.
	before := len(s.txnList())
	if _, err := cli.Delete(context.Background(), ifKey("a", "badjson")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "status of badjson deleted", func() bool { _, ok := readStatus(t, cli, "a", ifRel("badjson")); return !ok })
	if len(s.txnList()) != before {
		t.Fatal("deleting an invalid key reached the scheduler")
	}
}

func TestInvalidOverwriteKeepsLastValidValue(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	s := newMemSched()
	r := runOrch(t, cli, "a", s, nil)
	waitFor(t, "ready", r.o.Ready)
	valid := memifJSON("m1", 1)
	mustPut(t, cli, ifKey("a", "m1"), valid)
	waitFor(t, "m1 applied", func() bool { _, ok := s.snapshot()[ifRel("m1")]; return ok })
	applied := s.snapshot()[ifRel("m1")]

	mustPut(t, cli, ifKey("a", "m1"), `{"name":"m1","type":"MEMIF","memif":{"id":"not-a-number"}}`)
	waitFor(t, "value_error in status", func() bool { ks, _ := readStatus(t, cli, "a", ifRel("m1")); return ks.ValueError != "" })
	ks, _ := readStatus(t, cli, "a", ifRel("m1"))
	if ks.State != kvscheduler.StateConfigured {
		t.Fatalf("the kept value should still show its state, got %+v", ks)
	}
	if !proto.Equal(s.snapshot()[ifRel("m1")], applied) {
		t.Fatal("invalid overwrite changed the applied value")
	}
	// A resync keeps it too.
	if err := r.o.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := s.txnList()[len(s.txnList())-1]
	if last.Kind != kvscheduler.TxnFullResync || len(last.Values) != 1 || !proto.Equal(last.Values[0].Value, applied) {
		t.Fatalf("resync after invalid overwrite: %+v", last)
	}
	// Fixing the value applies it and clears the error.
	mustPut(t, cli, ifKey("a", "m1"), memifJSON("m1", 7))
	waitFor(t, "fixed value", func() bool {
		v, ok := s.snapshot()[ifRel("m1")].(*interfaces.Interface)
		return ok && v.GetMemif().GetId() == 7
	})
	waitFor(t, "value_error cleared", func() bool {
		ks, _ := readStatus(t, cli, "a", ifRel("m1"))
		return ks.ValueError == "" && ks.State == kvscheduler.StateConfigured
	})
	// Deleting removes value and status.
	if _, err := cli.Delete(context.Background(), ifKey("a", "m1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "status deleted", func() bool { _, ok := readStatus(t, cli, "a", ifRel("m1")); return !ok })
	if len(s.snapshot()) != 0 {
		t.Fatal("m1 still desired")
	}
}

func TestCompactionWhileBehindResyncs(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	for i, n := range []string{"k1", "k2"} {
		mustPut(t, cli, ifKey("a", n), memifJSON(n, i+1))
	}
	s := newMemSched()
	held, release := s.pause()
	r := runOrch(t, cli, "a", s, nil)
	<-held // the first full resync is listed and waits in Commit

	ctx := context.Background()
	mustPut(t, cli, ifKey("a", "k3"), memifJSON("k3", 3))
	mustPut(t, cli, ifKey("a", "k2"), memifJSON("k2", 22))
	if _, err := cli.Delete(ctx, ifKey("a", "k1")); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	release()

	waitFor(t, "second full resync", func() bool { return s.count(kvscheduler.TxnFullResync) == 2 })
	got := keysOf(s.snapshot())
	if strings.Join(got, ",") != ifRel("k2")+","+ifRel("k3") {
		t.Fatalf("final desired %v", got)
	}
	if id := s.snapshot()[ifRel("k2")].(*interfaces.Interface).GetMemif().GetId(); id != 22 {
		t.Fatalf("k2 id %d", id)
	}
	if r.o.Stats().WatchRestarts == 0 {
		t.Fatal("no watch restart counted")
	}
	// Watching continues after the resync.
	mustPut(t, cli, ifKey("a", "k4"), memifJSON("k4", 4))
	waitFor(t, "k4", func() bool { _, ok := s.snapshot()[ifRel("k4")]; return ok })
}

func TestStatusBurstIsBatched(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	s := newMemSched()
	r := runOrch(t, cli, "a", s, nil)
	waitFor(t, "ready", r.o.Ready)
	const n = 1000
	ctx := context.Background()
	var ops []clientv3.Op
	for i := range n {
		name := "b" + strings.Repeat("0", 4-len(itoa(i))) + itoa(i)
		ops = append(ops, clientv3.OpPut(ifKey("a", name), memifJSON(name, i+1)))
		if len(ops) == 125 {
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	waitFor(t, "1000 status keys", func() bool { return countPrefix(t, cli, "/vnf-agent/a/status/") == n })
	// The keys are visible in etcd before the writer counts its last txn:
	// wait for the count to cover them (at least 8 txns of 128 for 1,000).
	waitFor(t, "status txns counted", func() bool { return r.o.Stats().StatusTxns >= 8 })
	st := r.o.Stats()
	// 1,000 keys fit in 8 txns of 128; the etcd side arrives as 8 txns, so
	// the worst case is a flush per etcd txn: 8 + rounding.
	if st.StatusTxns < 8 || st.StatusTxns > 16 {
		t.Fatalf("1000 status writes took %d etcd txns", st.StatusTxns)
	}
	if len(s.txnList()) > 9 {
		t.Fatalf("1000 puts in 8 etcd txns became %d scheduler txns", len(s.txnList()))
	}
	if _, err := cli.Delete(ctx, "/vnf-agent/a/config/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "status keys deleted", func() bool { return countPrefix(t, cli, "/vnf-agent/a/status/") == 0 })
	if d := r.o.Stats().StatusTxns - st.StatusTxns; d > 9 {
		t.Fatalf("1000 status deletes took %d etcd txns", d)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestDerivedStatusShownOnParent(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	s := newMemSched()
	r := runOrch(t, cli, "a", s, nil)
	waitFor(t, "ready", r.o.Ready)
	rel := "config/vppmesh/v1/xconnect/x1"
	mustPut(t, cli, "/vnf-agent/a/"+rel, `{"name":"x1"}`)
	waitFor(t, "derived in status", func() bool { ks, _ := readStatus(t, cli, "a", rel); return len(ks.Derived) == 1 })
	ks, _ := readStatus(t, cli, "a", rel)
	if d := ks.Derived[0]; d.Key != "derived/"+rel || d.State != kvscheduler.StateFailed || d.Error != "boom" {
		t.Fatalf("derived %+v", d)
	}
	if _, ok := readStatus(t, cli, "a", "derived/"+rel); ok {
		t.Fatal("a derived value got its own status key")
	}
}

func TestInterfaceStatePublished(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	r := runOrch(t, cli, "a", newMemSched(), nil)
	key := "/vnf-agent/a/vpp/status/v2/interface/memif1"
	for i := range 50 {
		r.o.PublishInterfaceState(&interfaces.InterfaceState{Name: "memif1", InternalName: "memif1/1",
			Type: interfaces.Interface_MEMIF, IfIndex: 1, OperStatus: interfaces.InterfaceState_UP, Mtu: uint32(1000 + i)})
	}
	waitFor(t, "latest state", func() bool { v, _ := mustGet(t, cli, key); return strings.Contains(v, `"mtu":1049`) })
	v, _ := mustGet(t, cli, key)
	for _, want := range []string{`"internal_name":"memif1/1"`, `"oper_status":"UP"`, `"type":"MEMIF"`} {
		if !strings.Contains(v, want) {
			t.Errorf("state %s lacks %s", v, want)
		}
	}
	if w := r.o.Stats().StatusWrites; w >= 50 {
		t.Errorf("50 updates of one key made %d writes", w)
	}
	r.o.PublishInterfaceState(&interfaces.InterfaceState{Name: "memif1", OperStatus: interfaces.InterfaceState_DELETED})
	waitFor(t, "state deleted", func() bool { _, ok := mustGet(t, cli, key); return !ok })
	r.o.PublishInterfaceState(nil) // must not panic
}

func TestQueuedEventsCoalesceIntoFewTxns(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	s := newMemSched()
	r := runOrch(t, cli, "a", s, nil)
	waitFor(t, "ready", r.o.Ready)
	held, release := s.pause()
	mustPut(t, cli, ifKey("a", "c0"), memifJSON("c0", 1))
	<-held // the orchestrator is busy committing c0
	const n = 300
	for i := 1; i <= n; i++ {
		name := "c" + itoa(i)
		mustPut(t, cli, ifKey("a", name), memifJSON(name, i+1))
	}
	mustPut(t, cli, ifKey("a", "c1"), memifJSON("c1", 999)) // a later update of the same key wins
	release()
	waitFor(t, "all keys", func() bool { return len(s.snapshot()) == n+1 })
	waitFor(t, "c1 update", func() bool { return s.snapshot()[ifRel("c1")].(*interfaces.Interface).GetMemif().GetId() == 999 })
	changes := s.count(kvscheduler.TxnChange)
	// 302 etcd events (one put each) queue while the scheduler is busy; they
	// must not become 302 transactions.
	if changes > 20 {
		t.Fatalf("%d events became %d scheduler txns", n+2, changes)
	}
	if ev := r.o.Stats().EtcdEvents; ev != n+2 {
		t.Fatalf("counted %d events, want %d", ev, n+2)
	}
	t.Logf("%d etcd events -> %d scheduler txns", n+2, changes)
}

// A state equal to the one etcd holds (time and, when the new one has
// none, counters aside) is not written again, also by a restarted
// orchestrator: an agent restart re-publishes every interface's state.
func TestUnchangedInterfaceStateNotRewritten(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	key := "/vnf-agent/a/vpp/status/v2/interface/memif1"
	up := func(last int64, oper interfaces.InterfaceState_Status) *interfaces.InterfaceState {
		return &interfaces.InterfaceState{Name: "memif1", IfIndex: 1, AdminStatus: interfaces.InterfaceState_UP,
			OperStatus: oper, LastChange: last}
	}
	r := runOrch(t, cli, "a", newMemSched(), nil)
	waitFor(t, "ready", r.o.Ready)
	r.o.PublishInterfaceState(up(1, interfaces.InterfaceState_UP))
	waitFor(t, "state written", func() bool { _, ok := mustGet(t, cli, key); return ok })
	withStats := up(2, interfaces.InterfaceState_UP)
	withStats.Statistics = &interfaces.InterfaceState_Statistics{InPackets: 7}
	r.o.PublishInterfaceState(withStats)
	waitFor(t, "counters written", func() bool { v, _ := mustGet(t, cli, key); return strings.Contains(v, `"in_packets"`) })
	r.stop()

	rev := func() int64 {
		resp, err := cli.Get(context.Background(), key)
		if err != nil || len(resp.Kvs) == 0 {
			t.Fatalf("get %s: %v", key, err)
		}
		return resp.Kvs[0].ModRevision
	}
	before := rev()
	r2 := runOrch(t, cli, "a", newMemSched(), nil)
	waitFor(t, "ready again", r2.o.Ready)
	r2.o.PublishInterfaceState(up(3, interfaces.InterfaceState_UP)) // no counters: equal
	r2.o.PublishInterfaceState(up(4, interfaces.InterfaceState_UP))
	time.Sleep(300 * time.Millisecond)
	if got := rev(); got != before {
		t.Fatalf("an unchanged state was rewritten (mod revision %d → %d)", before, got)
	}
	r2.o.PublishInterfaceState(up(5, interfaces.InterfaceState_DOWN))
	waitFor(t, "a change is written", func() bool { v, _ := mustGet(t, cli, key); return strings.Contains(v, `"oper_status":"DOWN"`) })
}
