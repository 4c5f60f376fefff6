package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// memSched is a small real in-memory scheduler: it keeps the desired state,
// records every transaction and reports statuses the way the contract says
// (CONFIGURED for a value, REMOVED for a deleted one, in commit order).
type memSched struct {
	mu       sync.Mutex
	desired  map[string]proto.Message
	txns     []kvscheduler.Txn
	watchers map[int]kvscheduler.Watcher
	nextW    int
	hold     chan struct{} // while non-nil, Commit waits for it to close
	held     chan struct{} // signalled when a Commit starts waiting
	notifyMu sync.Mutex    // keeps watcher calls in commit order
	failNext error         // returned (once) by the next Commit, as a closed scheduler would
}

func newMemSched() *memSched {
	return &memSched{desired: map[string]proto.Message{}, watchers: map[int]kvscheduler.Watcher{}}
}

func (s *memSched) pause() (held <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := make(chan struct{})
	s.hold, s.held = h, make(chan struct{}, 1)
	return s.held, func() {
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		close(h)
	}
}

func (s *memSched) Commit(ctx context.Context, txn kvscheduler.Txn) (kvscheduler.TxnRecord, error) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	if h := s.hold; h != nil {
		s.held <- struct{}{}
		s.mu.Unlock()
		select {
		case <-h:
		case <-ctx.Done():
			return kvscheduler.TxnRecord{}, ctx.Err()
		}
		s.mu.Lock()
	}
	if err := s.failNext; err != nil {
		s.failNext = nil
		s.mu.Unlock()
		return kvscheduler.TxnRecord{}, err
	}
	now := time.Now()
	var changed []kvscheduler.ValueStatus
	if txn.Kind == kvscheduler.TxnFullResync {
		want := map[string]bool{}
		for _, kv := range txn.Values {
			want[kv.Key] = true
		}
		for k := range s.desired {
			if !want[k] {
				delete(s.desired, k)
				changed = append(changed, kvscheduler.ValueStatus{Key: k, State: kvscheduler.StateRemoved, LastChange: now})
			}
		}
	}
	for _, kv := range txn.Values {
		if kv.Value == nil {
			if _, ok := s.desired[kv.Key]; ok {
				delete(s.desired, kv.Key)
				changed = append(changed, kvscheduler.ValueStatus{Key: kv.Key, State: kvscheduler.StateRemoved, LastChange: now})
			}
			continue
		}
		s.desired[kv.Key] = kv.Value
		changed = append(changed, kvscheduler.ValueStatus{Key: kv.Key, State: kvscheduler.StateConfigured, Value: kv.Value, LastChange: now})
		// Values of the cross-connect model derive a child, to exercise
		// derived statuses.
		if len(kv.Key) > len("config/vppmesh/") && kv.Key[:len("config/vppmesh/")] == "config/vppmesh/" {
			changed = append(changed, kvscheduler.ValueStatus{Key: "derived/" + kv.Key, Derived: true, Parent: kv.Key, State: kvscheduler.StateFailed, Error: "boom", LastChange: now})
		}
	}
	s.txns = append(s.txns, txn)
	seq := len(s.txns)
	ws := make([]kvscheduler.Watcher, 0, len(s.watchers))
	for _, w := range s.watchers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w(changed)
	}
	return kvscheduler.TxnRecord{Seq: uint64(seq), Kind: txn.Kind, Start: now}, nil
}

func (s *memSched) Watch(w kvscheduler.Watcher) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextW
	s.nextW++
	s.watchers[id] = w
	return func() {
		s.mu.Lock()
		delete(s.watchers, id)
		s.mu.Unlock()
	}
}

func (s *memSched) snapshot() map[string]proto.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]proto.Message, len(s.desired))
	for k, v := range s.desired {
		out[k] = v
	}
	return out
}

func (s *memSched) txnList() []kvscheduler.Txn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]kvscheduler.Txn(nil), s.txns...)
}

func (s *memSched) count(kind kvscheduler.TxnKind) int {
	n := 0
	for _, t := range s.txnList() {
		if t.Kind == kind {
			n++
		}
	}
	return n
}

func keysOf(m map[string]proto.Message) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type etcdSite struct {
	dir          string
	cport, pport int
}

func newEtcdSite(t testing.TB) etcdSite {
	return etcdSite{dir: t.TempDir(), cport: freePort(t), pport: freePort(t)}
}

func (s etcdSite) start(t testing.TB) *Embedded {
	t.Helper()
	e, err := StartEmbedded(context.Background(), EmbeddedConfig{
		DataDir:   s.dir,
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", s.cport),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", s.pport),
		Logger:    testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func testLogger() *slog.Logger {
	if os.Getenv("ORCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func newTestClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := NewClient(context.Background(), endpoints, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

type running struct {
	o    *Orchestrator
	stop func()
}

func runOrch(t *testing.T, cli *clientv3.Client, label string, s Scheduler, tweak func(*Options)) running {
	t.Helper()
	opts := Options{Client: cli, Label: label, Scheduler: s, Logger: testLogger(),
		WriteTimeout: 500 * time.Millisecond, RetryMax: 300 * time.Millisecond}
	if tweak != nil {
		tweak(&opts)
	}
	o, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return running{o: o, stop: stop}
}

// waitFor polls cond; the deadline only bounds a hung test, it asserts
// nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustPut(t *testing.T, cli *clientv3.Client, key, val string) {
	t.Helper()
	if _, err := cli.Put(context.Background(), key, val); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, cli *clientv3.Client, key string) (string, bool) {
	t.Helper()
	r, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) == 0 {
		return "", false
	}
	return string(r.Kvs[0].Value), true
}

func countPrefix(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	r, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return r.Count
}

func ifKey(label, name string) string {
	return "/vnf-agent/" + label + "/config/vpp/v2/interfaces/" + name
}

func ifRel(name string) string { return "config/vpp/v2/interfaces/" + name }

func memifJSON(name string, id int) string {
	return fmt.Sprintf(`{"name":%q,"type":"MEMIF","enabled":true,"memif":{"master":true,"id":%d,"socket_filename":"/run/vpp/%s.sock"}}`, name, id, name)
}
