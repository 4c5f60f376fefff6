package metrics

import (
	"bufio"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/orchestrator"
)

type fakeScheduler struct {
	mu      sync.Mutex
	status  []kvscheduler.ValueStatus
	history []kvscheduler.TxnRecord
	keep    int // history size, like the scheduler's HistorySize
}

func (f *fakeScheduler) Status() []kvscheduler.ValueStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kvscheduler.ValueStatus(nil), f.status...)
}

func (f *fakeScheduler) History(n int) []kvscheduler.TxnRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history
	if n < len(h) {
		h = h[len(h)-n:]
	}
	return append([]kvscheduler.TxnRecord(nil), h...)
}

func (f *fakeScheduler) commit(kind kvscheduler.TxnKind, d time.Duration, ops ...kvscheduler.Op) kvscheduler.TxnRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var seq uint64 = 1
	if n := len(f.history); n > 0 {
		seq = f.history[n-1].Seq + 1
	}
	rec := kvscheduler.TxnRecord{Seq: seq, Kind: kind, Duration: d, Ops: ops}
	f.history = append(f.history, rec)
	if f.keep > 0 && len(f.history) > f.keep {
		f.history = f.history[len(f.history)-f.keep:]
	}
	return rec
}

// scrape returns every sample of the exposition as "name{labels}" → value.
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func want(t *testing.T, got map[string]float64, series string, v float64) {
	t.Helper()
	g, ok := got[series]
	if !ok {
		t.Fatalf("series %s missing", series)
	}
	if g != v {
		t.Fatalf("%s = %v, want %v", series, g, v)
	}
}

func TestValuesVPPAndEtcdSources(t *testing.T) {
	f := &fakeScheduler{status: []kvscheduler.ValueStatus{
		{Key: "a", Descriptor: "vpp-interface", State: kvscheduler.StateConfigured},
		{Key: "b", Descriptor: "vpp-interface", State: kvscheduler.StateConfigured},
		{Key: "c", Descriptor: "vpp-interface", State: kvscheduler.StateFailed},
		{Key: "d", Descriptor: "vpp-xconnect", State: kvscheduler.StatePending},
	}}
	calls := map[string]uint64{"memif_create": 3, "sw_interface_set_l2_xconnect": 2, "bad\xff": 1}
	connected := true
	var mu sync.Mutex
	orch := OrchestratorStats{EtcdEvents: 17, StatusWrites: 9, StatusWriteErrors: 1, Resyncs: 2, ParseErrors: 3, WatchRestarts: 4, StatusTxns: 5, StatusQueued: 6}
	m := New(Options{
		Scheduler: f,
		VPPCalls: func() map[string]uint64 {
			mu.Lock()
			defer mu.Unlock()
			out := map[string]uint64{}
			for k, v := range calls {
				out[k] = v
			}
			return out
		},
		VPPConnected: func() bool { mu.Lock(); defer mu.Unlock(); return connected },
		Orchestrator: func() OrchestratorStats { mu.Lock(); defer mu.Unlock(); return orch },
		GoRuntime:    true,
	})
	got := scrape(t, m)
	want(t, got, `vppmesh_scheduler_values{descriptor="vpp-interface",state="CONFIGURED"}`, 2)
	want(t, got, `vppmesh_scheduler_values{descriptor="vpp-interface",state="FAILED"}`, 1)
	want(t, got, `vppmesh_scheduler_values{descriptor="vpp-interface",state="PENDING"}`, 0)
	want(t, got, `vppmesh_scheduler_values{descriptor="vpp-xconnect",state="PENDING"}`, 1)
	want(t, got, `vppmesh_scheduler_values{descriptor="vpp-xconnect",state="FAILED"}`, 0)
	want(t, got, `vppmesh_vpp_api_calls_total{message="memif_create"}`, 3)
	want(t, got, `vppmesh_vpp_api_calls_total{message="sw_interface_set_l2_xconnect"}`, 2)
	want(t, got, `vppmesh_vpp_connected`, 1)
	want(t, got, `vppmesh_etcd_events_total`, 17)
	want(t, got, `vppmesh_etcd_status_writes_total{result="ok"}`, 9)
	want(t, got, `vppmesh_etcd_status_writes_total{result="error"}`, 1)
	want(t, got, `vppmesh_etcd_resyncs_total`, 2)
	want(t, got, `vppmesh_etcd_parse_errors_total`, 3)
	want(t, got, `vppmesh_etcd_watch_restarts_total`, 4)
	want(t, got, `vppmesh_etcd_status_txns_total`, 5)
	want(t, got, `vppmesh_etcd_status_queued`, 6)
	if _, ok := got["go_goroutines"]; !ok {
		t.Fatal("go runtime collector missing")
	}

	// Sources are read at scrape time.
	mu.Lock()
	connected = false
	calls["memif_create"] = 5
	orch.EtcdEvents = 20
	mu.Unlock()
	f.mu.Lock()
	f.status[2].State = kvscheduler.StateConfigured
	f.mu.Unlock()
	got = scrape(t, m)
	want(t, got, `vppmesh_vpp_connected`, 0)
	want(t, got, `vppmesh_vpp_api_calls_total{message="memif_create"}`, 5)
	want(t, got, `vppmesh_etcd_events_total`, 20)
	want(t, got, `vppmesh_scheduler_values{descriptor="vpp-interface",state="CONFIGURED"}`, 3)
	want(t, got, `vppmesh_scheduler_values{descriptor="vpp-interface",state="FAILED"}`, 0)
}

func TestTxnsCountedOnceFromWatcherAndHistory(t *testing.T) {
	f := &fakeScheduler{}
	m := New(Options{Scheduler: f})
	ok := kvscheduler.Op{Op: kvscheduler.OpCreate}
	bad := kvscheduler.Op{Op: kvscheduler.OpCreate, Error: "retval -2"}
	del := kvscheduler.Op{Op: kvscheduler.OpDelete}

	r1 := f.commit(kvscheduler.TxnChange, 3*time.Millisecond, ok, ok, bad)
	m.ObserveTxn(r1) // as a watcher would
	f.commit(kvscheduler.TxnFullResync, 300*time.Millisecond, del)
	got := scrape(t, m) // history holds r1 again: it must not count twice
	want(t, got, `vppmesh_scheduler_txns_total{kind="change"}`, 1)
	want(t, got, `vppmesh_scheduler_txns_total{kind="full-resync"}`, 1)
	want(t, got, `vppmesh_scheduler_ops_total{op="CREATE",result="ok"}`, 2)
	want(t, got, `vppmesh_scheduler_ops_total{op="CREATE",result="error"}`, 1)
	want(t, got, `vppmesh_scheduler_ops_total{op="DELETE",result="ok"}`, 1)
	want(t, got, `vppmesh_scheduler_txn_duration_seconds_count{kind="change"}`, 1)
	want(t, got, `vppmesh_scheduler_txn_duration_seconds_sum{kind="full-resync"}`, 0.3)
	want(t, got, `vppmesh_scheduler_txn_duration_seconds_bucket{kind="change",le="0.002"}`, 0)
	want(t, got, `vppmesh_scheduler_txn_duration_seconds_bucket{kind="change",le="0.008"}`, 1)

	// Repeated scrapes and a late watcher call for an old record add nothing.
	m.ObserveTxn(r1)
	got = scrape(t, m)
	want(t, got, `vppmesh_scheduler_txns_total{kind="change"}`, 1)
	want(t, got, `vppmesh_scheduler_ops_total{op="CREATE",result="ok"}`, 2)
	want(t, got, `vppmesh_scheduler_txns_unobserved_total`, 0)
}

func TestTxnsLostFromShortHistoryAreCounted(t *testing.T) {
	f := &fakeScheduler{keep: 3}
	m := New(Options{Scheduler: f})
	f.commit(kvscheduler.TxnChange, time.Millisecond)
	scrape(t, m)
	for i := 0; i < 10; i++ {
		f.commit(kvscheduler.TxnRetry, time.Millisecond)
	}
	got := scrape(t, m)
	// Seq 2..8 left history before the scrape; 9..11 were counted.
	want(t, got, `vppmesh_scheduler_txns_total{kind="retry"}`, 3)
	want(t, got, `vppmesh_scheduler_txns_unobserved_total`, 7)
}

func TestNoSources(t *testing.T) {
	got := scrape(t, New(Options{}))
	if _, ok := got["vppmesh_vpp_connected"]; ok {
		t.Fatal("connected gauge without a source")
	}
	want(t, got, `vppmesh_scheduler_txns_unobserved_total`, 0)
}

// The real scheduler must fit the interface the team lead wires in.
var _ Scheduler = (*kvscheduler.Scheduler)(nil)

// OrchestratorStats must stay convertible from the orchestrator's Stats.
var _ = func(o *orchestrator.Orchestrator) OrchestratorStats { return OrchestratorStats(o.Stats()) }
