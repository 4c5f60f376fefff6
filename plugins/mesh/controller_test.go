package mesh

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/orchestrator"
)

// fakeSched records what the controller commits.
type fakeSched struct {
	mu      sync.Mutex
	desired map[string]*vppmeshv1.CrossConnect
}

func (f *fakeSched) Commit(_ context.Context, txn kvscheduler.Txn) (kvscheduler.TxnRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if txn.Kind == kvscheduler.TxnFullResync {
		f.desired = map[string]*vppmeshv1.CrossConnect{}
	}
	for _, kv := range txn.Values {
		if kv.Value == nil {
			delete(f.desired, kv.Key)
		} else if v, ok := kv.Value.(*vppmeshv1.CrossConnect); ok {
			f.desired[kv.Key] = v
		}
	}
	return kvscheduler.TxnRecord{}, nil
}

func (f *fakeSched) Watch(kvscheduler.Watcher) func() { return func() {} }

func (f *fakeSched) keys() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for k := range f.desired {
		out[k] = true
	}
	return out
}

func port(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	e, err := orchestrator.StartEmbedded(context.Background(), orchestrator.EmbeddedConfig{
		DataDir:   filepath.Join(t.TempDir(), "etcd"),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", port(t)),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", port(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := orchestrator.NewClient(context.Background(), e.Endpoints(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func put(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	if _, err := cli.Put(context.Background(), key, val); err != nil {
		t.Fatal(err)
	}
}

// Two agents decide the connections of their own nodes at the same time
// from one IP pool and a shared endpoint socket namespace: the etcd
// transactions make every /31 and every memif id unique, and each agent
// renders only its own node's connections.
func TestTwoAgentsNeverShareAnAllocation(t *testing.T) {
	cli := startEtcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scheds := map[string]*fakeSched{}
	var ctrls []*Controller
	var wg sync.WaitGroup
	for _, node := range []string{"n1", "n2"} {
		f := &fakeSched{desired: map[string]*vppmeshv1.CrossConnect{}}
		scheds[node] = f
		m, err := New(Options{Client: cli, Label: node, Scheduler: f})
		if err != nil {
			t.Fatal(err)
		}
		ctrls = append(ctrls, m)
		// What the orchestrator's first full resync does: it lets the
		// controller commit its renderings from then on.
		go func() {
			if _, err := m.WrapScheduler(f).Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnFullResync}); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}()
		wg.Go(func() { _ = m.Run(ctx) })
	}
	defer wg.Wait()
	defer cancel()

	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s","payload":"IP","ip_pool":"198.51.100.0/24"}`)
	for _, node := range []string{"n1", "n2"} {
		put(t, cli, models.MeshEndpointPrefix+"ep-"+node, fmt.Sprintf(`{"name":"ep-%s","network_services":["s"],"node":%q,"memif":{"socket_filename":"/run/ep-%s.sock"}}`, node, node, node))
	}
	const n = 60
	// One txn puts them all, so both agents see them at once and race for
	// the same /31s.
	var ops []clientv3.Op
	for i := 0; i < n; i++ {
		node := []string{"n1", "n2"}[i%2]
		ops = append(ops, clientv3.OpPut(models.MeshConnectionPrefix+fmt.Sprintf("c%d", i),
			fmt.Sprintf(`{"id":"c%d","network_service":"s","node":%q,"memif":{"socket_filename":"/run/c%d.sock"}}`, i, node, i)))
	}
	if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}

	var statuses map[string]*vppmeshv1.ConnectionStatus
	deadline := time.Now().Add(15 * time.Second)
	for {
		statuses = map[string]*vppmeshv1.ConnectionStatus{}
		resp, err := cli.Get(context.Background(), models.MeshStatusPrefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			_, v, err := models.UnmarshalMesh(string(kv.Key), kv.Value)
			if err != nil {
				t.Fatal(err)
			}
			if st := v.(*vppmeshv1.ConnectionStatus); st.GetIpContext().GetClientIp() != "" {
				statuses[st.GetId()] = st
			}
		}
		if len(statuses) == n && len(scheds["n1"].keys())+len(scheds["n2"].keys()) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections decided, rendered %d+%d", len(statuses), n, len(scheds["n1"].keys()), len(scheds["n2"].keys()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ips := map[string]string{}
	memifs := map[string]string{}
	for id, st := range statuses {
		if other, dup := ips[st.GetIpContext().GetClientIp()]; dup {
			t.Fatalf("%s and %s share %s", id, other, st.GetIpContext().GetClientIp())
		}
		ips[st.GetIpContext().GetClientIp()] = id
		mk := fmt.Sprintf("%s/%d", st.GetEndpoint(), st.GetEndpointLink().GetMemif().GetId())
		if other, dup := memifs[mk]; dup {
			t.Fatalf("%s and %s share memif %s", id, other, mk)
		}
		memifs[mk] = id
		if st.GetEndpointNode() != st.GetClientNode() {
			t.Fatalf("%s: client on %s went to the remote endpoint %s", id, st.GetClientNode(), st.GetEndpoint())
		}
		if !scheds[st.GetClientNode()].keys()[RenderKey(id)] {
			t.Fatalf("%s not rendered by its node %s", id, st.GetClientNode())
		}
	}
	t.Logf("decision conflicts resolved: %d + %d", ctrls[0].Stats().Conflicts.Load(), ctrls[1].Stats().Conflicts.Load())
	resp, err := cli.Get(context.Background(), models.MeshAllocPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 2*n {
		t.Fatalf("%d allocation keys, want %d (one /31 and one memif id each)", resp.Count, 2*n)
	}
}

// The decision transaction's guards: an allocation key another agent
// created first, or a status rewritten since it was read, refuses the
// write, the cache is corrected from etcd, and a batch with one refused
// write still lands the others.
func TestDecisionGuards(t *testing.T) {
	cli := startEtcd(t)
	m, err := New(Options{Client: cli, Label: "n1", Scheduler: &fakeSched{desired: map[string]*vppmeshv1.CrossConnect{}}})
	if err != nil {
		t.Fatal(err)
	}
	m.c = newCache()
	ctx := context.Background()
	now := time.Now()
	st := func(id string) *vppmeshv1.ConnectionStatus {
		return &vppmeshv1.ConnectionStatus{Id: id, ClientNode: "n1", Endpoint: "ep", State: vppmeshv1.ConnectionStatus_PENDING}
	}
	// Another agent took ip/s/198.51.100.0 after this one last looked.
	put(t, cli, models.MeshAllocPrefix+"ip/s/198.51.100.0", "theirs")
	if m.writeStatus(ctx, "c1", nil, st("c1"), map[string]bool{"ip/s/198.51.100.0": true}, now, false) {
		t.Fatal("write with a taken allocation succeeded")
	}
	if m.c.allocs["ip/s/198.51.100.0"] != "theirs" || m.stats.Conflicts.Load() != 1 {
		t.Fatalf("after the refusal: allocs %v, conflicts %d", m.c.allocs, m.stats.Conflicts.Load())
	}
	// A batch: c2 reserves a free key, c3 the taken one; c2 lands, c3
	// does not, and its reservation is dropped from the cache.
	m.c.allocs = map[string]string{}
	m.writeStatus(ctx, "c2", nil, st("c2"), map[string]bool{"ip/s/198.51.100.2": true}, now, true)
	m.writeStatus(ctx, "c3", nil, st("c3"), map[string]bool{"ip/s/198.51.100.0": true}, now, true)
	failed := m.flushStatus(ctx)
	if !failed["c3"] || failed["c2"] || len(failed) != 1 {
		t.Fatalf("failed writes %v, want only c3", failed)
	}
	resp, err := cli.Get(ctx, models.MeshAllocPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	for _, kv := range resp.Kvs {
		owners[string(kv.Key)] = string(kv.Value)
	}
	if owners[models.MeshAllocPrefix+"ip/s/198.51.100.2"] != "c2" || owners[models.MeshAllocPrefix+"ip/s/198.51.100.0"] != "theirs" || len(owners) != 2 {
		t.Fatalf("allocations in etcd: %v", owners)
	}
	if m.c.allocs["ip/s/198.51.100.0"] != "theirs" {
		t.Fatalf("c3's failed reservation still in the cache: %v", m.c.allocs)
	}
	if _, ok := m.c.status["c2"]; !ok {
		t.Fatal("c2's status not in the cache after it landed")
	}
	// A status rewritten by someone else since it was read: refused.
	put(t, cli, models.MeshStatusPrefix+"c2", `{"id":"c2","client_node":"elsewhere"}`)
	if m.writeStatus(ctx, "c2", m.c.status["c2"], st("c2-changed"), nil, now, false) {
		t.Fatal("write over a status changed since it was read succeeded")
	}
	if m.c.status["c2"].GetClientNode() != "elsewhere" {
		t.Fatalf("cache not refreshed: %v", m.c.status["c2"])
	}
}

// Connections that arrive together are decided in one pass and still
// spread by fewest connections: the pass's own decisions count.
func TestOnePassSpreads(t *testing.T) {
	cli, _, _ := runOne(t)
	ctx := context.Background()
	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s"}`)
	for _, ep := range []string{"ep1", "ep2"} {
		put(t, cli, models.MeshEndpointPrefix+ep, fmt.Sprintf(`{"name":%q,"network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/%s.sock"}}`, ep, ep))
	}
	time.Sleep(200 * time.Millisecond)
	var ops []clientv3.Op
	for i := 0; i < 8; i++ {
		ops = append(ops, clientv3.OpPut(models.MeshConnectionPrefix+fmt.Sprintf("c%d", i),
			fmt.Sprintf(`{"id":"c%d","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c%d.sock"}}`, i, i)))
	}
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := cli.Get(ctx, models.MeshStatusPrefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, kv := range resp.Kvs {
			_, v, err := models.UnmarshalMesh(string(kv.Key), kv.Value)
			if err != nil {
				t.Fatal(err)
			}
			per[v.(*vppmeshv1.ConnectionStatus).GetEndpoint()]++
		}
		if per["ep1"]+per["ep2"] == 8 {
			if per["ep1"] != 4 {
				t.Fatalf("spread %v, want 4 and 4", per)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("decided %v of 8", per)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// When every endpoint of many connections goes at once, the connections go
// PENDING in a few batched etcd transactions (each guarded on its status),
// not one transaction per connection.
func TestMassLossIsBatched(t *testing.T) {
	cli, f, m := runOne(t)
	ctx := context.Background()
	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s"}`)
	for _, ep := range []string{"ep1", "ep2"} {
		put(t, cli, models.MeshEndpointPrefix+ep, fmt.Sprintf(`{"name":%q,"network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/%s.sock"}}`, ep, ep))
	}
	const n = 60
	var ops []clientv3.Op
	for i := 0; i < n; i++ {
		ops = append(ops, clientv3.OpPut(models.MeshConnectionPrefix+fmt.Sprintf("c%d", i),
			fmt.Sprintf(`{"id":"c%d","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c%d.sock"}}`, i, i)))
	}
	if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	// statuses returns how many statuses satisfy ok, and etcd's revision.
	statuses := func(ok func(*vppmeshv1.ConnectionStatus) bool) (int, int64) {
		resp, err := cli.Get(ctx, models.MeshStatusPrefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		c := 0
		for _, kv := range resp.Kvs {
			_, v, err := models.UnmarshalMesh(string(kv.Key), kv.Value)
			if err != nil {
				t.Fatal(err)
			}
			if ok(v.(*vppmeshv1.ConnectionStatus)) {
				c++
			}
		}
		return c, resp.Header.Revision
	}
	waitAll := func(what string, ok func(*vppmeshv1.ConnectionStatus) bool) int64 {
		deadline := time.Now().Add(15 * time.Second)
		for {
			c, rev := statuses(ok)
			if c == n {
				// Settled: nothing more is written.
				time.Sleep(300 * time.Millisecond)
				if _, again := statuses(ok); again == rev {
					return rev
				}
				continue
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d", what, c, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAll("decided", func(st *vppmeshv1.ConnectionStatus) bool { return st.GetEndpoint() != "" })
	resp, err := cli.Txn(ctx).Then(clientv3.OpDelete(models.MeshEndpointPrefix+"ep1"), clientv3.OpDelete(models.MeshEndpointPrefix+"ep2")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	gone := resp.Header.Revision
	conflicts := m.Stats().Conflicts.Load()
	end := waitAll("pending after the loss", func(st *vppmeshv1.ConnectionStatus) bool {
		return st.GetEndpoint() == "" && st.GetState() == vppmeshv1.ConnectionStatus_PENDING && st.GetHeals() == 1
	})
	// One revision per etcd transaction: 60 connections (status put and
	// memif id release each) fit in two.
	if txns := end - gone; txns > 4 {
		t.Fatalf("%d transactions for %d connections losing their endpoint, want a few", txns, n)
	}
	if c := m.Stats().Conflicts.Load(); c != conflicts {
		t.Fatalf("%d conflicts during the loss", c-conflicts)
	}
	for k := range f.keys() {
		t.Fatalf("still rendered after the loss: %s", k)
	}
}

// Many clients leaving at once (their connection keys deleted) have their
// statuses, side reports and allocations removed in a few batched etcd
// transactions, not one per connection, and their renderings go.
func TestMassRemovalIsBatched(t *testing.T) {
	cli, f, _ := runOne(t)
	ctx := context.Background()
	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s","payload":"IP","ip_pool":"198.51.100.0/24"}`)
	put(t, cli, models.MeshEndpointPrefix+"ep1", `{"name":"ep1","network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/ep1.sock"}}`)
	const n = 60
	var puts, dels []clientv3.Op
	for i := 0; i < n; i++ {
		key := models.MeshConnectionPrefix + fmt.Sprintf("c%d", i)
		puts = append(puts, clientv3.OpPut(key, fmt.Sprintf(`{"id":"c%d","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c%d.sock"}}`, i, i)))
		dels = append(dels, clientv3.OpDelete(key))
	}
	if _, err := cli.Txn(ctx).Then(puts...).Commit(); err != nil {
		t.Fatal(err)
	}
	count := func(prefix string) (int64, int64) {
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count, resp.Header.Revision
	}
	waitFor(t, "all decided with their allocations", func() error {
		if c, _ := count(models.MeshAllocPrefix); c != 2*n { // memif id + /31 each
			return fmt.Errorf("%d allocations", c)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // settled
	resp, err := cli.Txn(ctx).Then(dels...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	gone := resp.Header.Revision
	var end int64
	waitFor(t, "statuses and allocations removed", func() error {
		s, _ := count(models.MeshStatusPrefix)
		a, rev := count(models.MeshAllocPrefix)
		if s != 0 || a != 0 {
			return fmt.Errorf("%d statuses, %d allocations left", s, a)
		}
		end = rev
		return nil
	})
	// Each removal is 1 compare and 4 operations (status, side report,
	// two allocations): 60 of them fit in three transactions of ≤ 120.
	if txns := end - gone; txns > 4 {
		t.Fatalf("%d transactions to remove %d connections, want a few", txns, n)
	}
	for k := range f.keys() {
		t.Fatalf("still rendered after the removal: %s", k)
	}
}

// runOne runs a controller for node n1 on a fresh etcd with a fake
// scheduler, until the test ends.
func runOne(t *testing.T) (*clientv3.Client, *fakeSched, *Controller) {
	t.Helper()
	cli := startEtcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeSched{desired: map[string]*vppmeshv1.CrossConnect{}}
	m, err := New(Options{Client: cli, Label: "n1", Scheduler: f})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return cli, f, m
}
