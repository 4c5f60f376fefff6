package mesh

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/mesh/naming"
)

// recSched is a reportSched that keeps every change transaction.
type recSched struct {
	reportSched
	mu   sync.Mutex
	txns [][]kvscheduler.KeyValue
}

func (r *recSched) Commit(ctx context.Context, txn kvscheduler.Txn) (kvscheduler.TxnRecord, error) {
	if txn.Kind == kvscheduler.TxnChange {
		r.mu.Lock()
		r.txns = append(r.txns, append([]kvscheduler.KeyValue(nil), txn.Values...))
		r.mu.Unlock()
	}
	return r.reportSched.Commit(ctx, txn)
}

func (r *recSched) log() [][]kvscheduler.KeyValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]kvscheduler.KeyValue(nil), r.txns...)
}

// find returns the index of the first transaction from `from` on with a
// value at key matching ok, or -1.
func find(txns [][]kvscheduler.KeyValue, from int, key string, ok func(kvscheduler.KeyValue) bool) int {
	for i := from; i < len(txns); i++ {
		for _, kv := range txns[i] {
			if kv.Key == key && ok(kv) {
				return i
			}
		}
	}
	return -1
}

func startOne(t *testing.T, o Options) (*recSched, *Controller, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &recSched{reportSched: reportSched{desired: map[string]*vppmeshv1.CrossConnect{}}}
	o.Label, o.Scheduler = "n1", f
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := m.WrapScheduler(f).Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnFullResync}); err != nil && ctx.Err() == nil {
			t.Error(err)
		}
	})
	wg.Go(func() { _ = m.Run(ctx) })
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return f, m, stop
}

// healTo puts c1 on ep1, brings it UP, then kills ep1 with ep2 registered:
// it returns once c1's status names ep2.
func healTo(t *testing.T, o Options) (*recSched, *Controller, *clientv3.Client, func()) {
	cli := startEtcd(t)
	o.Client = cli
	f, m, stop := startOne(t, o)
	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s"}`)
	put(t, cli, models.MeshEndpointPrefix+"ep1", `{"name":"ep1","network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/ep1.sock"}}`)
	put(t, cli, models.MeshConnectionPrefix+"c1", `{"id":"c1","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c1.sock"}}`)
	upOnEp1(t, cli, m)
	put(t, cli, models.MeshEndpointPrefix+"ep2", `{"name":"ep2","network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/ep2.sock"}}`)
	if _, err := cli.Delete(context.Background(), models.MeshEndpointPrefix+"ep1"); err != nil {
		t.Fatal(err)
	}
	linkUp(m, "mesh-c1-b", false)
	waitFor(t, "c1 moved to ep2 on mesh-c1-c", func() error {
		if st, _ := getStatus(t, cli, "c1"); st.GetEndpoint() != "ep2" || st.GetEndpointLink().GetInterface() != "mesh-c1-c" || st.GetHeals() != 1 {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	return f, m, cli, stop
}

// A connection that moves to another endpoint on its node is rendered with
// the other endpoint-side name, and its old interface is handed to a
// retiring value in the same transaction: the old interface is deleted only
// in a later transaction of its own, once the connection is UP again.
func TestMoveRetiresOldInterfaceAfterHeal(t *testing.T) {
	f, m, cli, stop := healTo(t, Options{})
	retireKey := naming.RetirePrefix + "mesh-c1-b"
	txns := f.log()
	move := find(txns, 0, RenderKey("c1"), func(kv kvscheduler.KeyValue) bool {
		v, _ := kv.Value.(*vppmeshv1.CrossConnect)
		return v.GetName() == "mesh-c1"+naming.AltSuffix && v.GetB().GetMemif().GetSocketFilename() == "/run/ep2.sock"
	})
	if move < 0 {
		t.Fatalf("no transaction renders c1 on ep2 as mesh-c1-c: %v", txns)
	}
	if find(txns[move:move+1], 0, retireKey, func(kv kvscheduler.KeyValue) bool {
		v, _ := kv.Value.(*vppmeshv1.CrossConnect)
		return v.GetName() == "mesh-c1-b" && v.GetA() == nil && v.GetB().GetMemif().GetSocketFilename() == "/run/ep1.sock"
	}) < 0 {
		t.Fatalf("the move transaction does not retire mesh-c1-b: %v", txns[move])
	}
	// Not UP yet on ep2 (its link is down): the old interface stays.
	time.Sleep(300 * time.Millisecond)
	if i := find(f.log(), move+1, retireKey, func(kv kvscheduler.KeyValue) bool { return kv.Value == nil }); i >= 0 {
		t.Fatalf("mesh-c1-b retired while c1 was still coming up (transaction %d)", i)
	}
	linkUp(m, "mesh-c1-c", true)
	var del int
	waitFor(t, "mesh-c1-b retired", func() error {
		if del = find(f.log(), move+1, retireKey, func(kv kvscheduler.KeyValue) bool { return kv.Value == nil }); del < 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	for _, kv := range f.log()[del] {
		if kv.Key != retireKey {
			t.Errorf("the retiring transaction also holds %s", kv.Key)
		}
	}
	// The new decision keeps its name: nothing more is rendered for c1.
	time.Sleep(200 * time.Millisecond)
	if i := find(f.log(), move+1, RenderKey("c1"), func(kvscheduler.KeyValue) bool { return true }); i >= 0 {
		t.Fatalf("c1 rendered again in transaction %d: %v", i, f.log()[i])
	}
	// A restarted agent renders the -c name from the status: its full
	// resync carries the same value, and it commits no change for c1.
	want := f.get(RenderKey("c1"))
	stop()
	f2, m2, _ := startOne(t, Options{Client: cli})
	linkUp(m2, "mesh-c1-a", true)
	linkUp(m2, "mesh-c1-c", true)
	waitFor(t, "the restarted agent's rendering", func() error {
		if got := f2.get(RenderKey("c1")); !proto.Equal(got, want) {
			return fmt.Errorf("renders %v, want %v", got, want)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	if i := find(f2.log(), 0, RenderKey("c1"), func(kvscheduler.KeyValue) bool { return true }); i >= 0 {
		t.Fatalf("the restarted agent changed c1's rendering: %v", f2.log()[i])
	}
	if st, _ := getStatus(t, cli, "c1"); st.GetState() != vppmeshv1.ConnectionStatus_UP || st.GetEndpointLink().GetInterface() != "mesh-c1-c" {
		t.Fatalf("after the restart: %v", st)
	}
}

// A moved connection that does not come up does not keep its old interface
// in VPP for ever: it is retired after RetireAfter.
func TestRetireAfterBoundsTheWait(t *testing.T) {
	f, _, _, _ := healTo(t, Options{RetireAfter: 300 * time.Millisecond})
	waitFor(t, "mesh-c1-b retired although c1 is not UP", func() error {
		if find(f.log(), 0, naming.RetirePrefix+"mesh-c1-b", func(kv kvscheduler.KeyValue) bool { return kv.Value == nil }) < 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// The echo of the agent's own write is no news (follow runs no pass for
// it); another writer's change, or a later change of the same key, is.
func TestOwnWriteEchoIsNoNews(t *testing.T) {
	m, err := New(Options{Client: &clientv3.Client{}, Label: "n1", Scheduler: &fakeSched{}})
	if err != nil {
		t.Fatal(err)
	}
	m.c = newCache()
	key := models.MeshStatusPrefix + "c1"
	data := []byte(`{"id":"c1","state":"UP"}`)
	m.c.applyOwn(m.log, key, data, 7, false)
	ev := func(k string, rev int64) *clientv3.Event {
		return &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(k), Value: data, ModRevision: rev}}
	}
	if m.applyEvents([]*clientv3.Event{ev(key, 7)}) {
		t.Error("the echo of the agent's own write was news")
	}
	if !m.applyEvents([]*clientv3.Event{ev(key, 7), ev(models.MeshStatusPrefix+"c2", 8)}) {
		t.Error("a response with another writer's change was not news")
	}
	if !m.applyEvents([]*clientv3.Event{ev(key, 9)}) {
		t.Error("a later change of an own key was not news")
	}
}

// upOnEp1 waits until c1 is decided for ep1 on mesh-c1-b, reports both
// links up and waits for c1 UP.
func upOnEp1(t *testing.T, cli *clientv3.Client, m *Controller) {
	t.Helper()
	waitFor(t, "c1 on ep1", func() error {
		if st, _ := getStatus(t, cli, "c1"); st.GetEndpoint() != "ep1" || st.GetEndpointLink().GetInterface() != "mesh-c1-b" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	linkUp(m, "mesh-c1-a", true)
	linkUp(m, "mesh-c1-b", true)
	waitFor(t, "c1 UP", func() error {
		if st, _ := getStatus(t, cli, "c1"); st.GetState() != vppmeshv1.ConnectionStatus_UP {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
}
