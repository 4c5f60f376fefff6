package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// fakeScheduler is an in-memory scheduler: statuses and a history that
// Resync appends to, like the real one does.
type fakeScheduler struct {
	mu       sync.Mutex
	status   []kvscheduler.ValueStatus
	history  []kvscheduler.TxnRecord
	retrieve func(ctx context.Context) ([]kvscheduler.RetrievedValue, error)
}

func (f *fakeScheduler) Retrieve(ctx context.Context) ([]kvscheduler.RetrievedValue, error) {
	if f.retrieve == nil {
		return nil, errors.New("fake: nothing to retrieve")
	}
	return f.retrieve(ctx)
}

func (f *fakeScheduler) Status() []kvscheduler.ValueStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kvscheduler.ValueStatus(nil), f.status...)
}

func (f *fakeScheduler) StatusOf(key string) (kvscheduler.ValueStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.status {
		if s.Key == key {
			return s, true
		}
	}
	return kvscheduler.ValueStatus{}, false
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

func (f *fakeScheduler) commit(kind kvscheduler.TxnKind, ops ...kvscheduler.Op) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = append(f.history, kvscheduler.TxnRecord{
		Seq: uint64(len(f.history) + 1), Kind: kind, Start: time.Unix(1700000000+int64(len(f.history)+1), 0).UTC(), Ops: ops,
	})
}

const (
	keyMemif = "config/vpp/v2/interfaces/memif1"
	keyXC    = "config/vpp/l2/v2/xconnect/memif1"
	keyBad   = "config/vpp/v2/interfaces/tap9"
)

func newFake() *fakeScheduler {
	f := &fakeScheduler{status: []kvscheduler.ValueStatus{
		{Key: keyXC, Descriptor: "vpp-xconnect", State: kvscheduler.StatePending, Missing: []string{"config/vpp/v2/interfaces/memif2"},
			Value: &l2.XConnectPair{ReceiveInterface: "memif1", TransmitInterface: "memif2"}},
		{Key: keyMemif, Descriptor: "vpp-interface", State: kvscheduler.StateConfigured,
			Value:    &interfaces.Interface{Name: "memif1", Type: interfaces.Interface_MEMIF, Enabled: true, Link: &interfaces.Interface_Memif{Memif: &interfaces.MemifLink{Master: true, Id: 1, SocketFilename: "/run/m.sock"}}},
			Metadata: map[string]uint32{"sw_if_index": 3}},
		{Key: keyBad, Descriptor: "vpp-interface", State: kvscheduler.StateFailed, Error: "VPP API tap_create_v3: retval -1",
			Value: &interfaces.Interface{Name: "tap9", Type: interfaces.Interface_TAP}, Metadata: make(chan int)},
	}}
	for i := 0; i < 5; i++ {
		f.commit(kvscheduler.TxnChange, kvscheduler.Op{Key: keyMemif, Op: kvscheduler.OpCreate, NewState: kvscheduler.StateConfigured})
	}
	return f
}

type env struct {
	f          *fakeScheduler
	srv        *httptest.Server
	ready      atomic.Bool
	resyncs    atomic.Int32
	resyncErr  error
	retrieveFn func(ctx context.Context) ([]kvscheduler.RetrievedValue, error)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{f: newFake()}
	e.f.retrieve = func(ctx context.Context) ([]kvscheduler.RetrievedValue, error) { return e.retrieveFn(ctx) }
	connected := true
	s, err := New(Options{
		Scheduler: e.f,
		Version:   "v1.2.3-test",
		Ready:     e.ready.Load,
		VPPConnected: func() bool {
			return connected
		},
		Resync: func(ctx context.Context) error {
			e.resyncs.Add(1)
			if e.resyncErr != nil {
				return e.resyncErr
			}
			e.f.commit(kvscheduler.TxnFullResync, kvscheduler.Op{Key: keyBad, Op: kvscheduler.OpCreate, NewState: kvscheduler.StateConfigured})
			return nil
		},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "vppmesh_test_metric 1\n")
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.retrieveFn = func(ctx context.Context) ([]kvscheduler.RetrievedValue, error) {
		return []kvscheduler.RetrievedValue{
			{Key: "config/vpp/v2/interfaces/local0", Descriptor: "vpp-interface", Origin: kvscheduler.FromSB, Value: &interfaces.Interface{Name: "local0"}},
			{Key: keyMemif, Descriptor: "vpp-interface", Origin: kvscheduler.FromNB, Value: &interfaces.Interface{Name: "memif1", Type: interfaces.Interface_MEMIF}, Metadata: map[string]int{"sw_if_index": 3}},
			{Key: keyXC, Descriptor: "vpp-xconnect", Value: &l2.XConnectPair{ReceiveInterface: "memif1", TransmitInterface: "memif2"}},
		}, nil
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// call does a request and decodes a JSON answer into out (when not nil).
func (e *env) call(t *testing.T, method, path string, wantCode int, out any) []byte {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("%s %s: code %d, want %d; body %s", method, path, resp.StatusCode, wantCode, body)
	}
	if out != nil {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: content type %q", method, path, ct)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	return body
}

func TestHealthAndReadinessFlip(t *testing.T) {
	e := newEnv(t)
	var m map[string]string
	e.call(t, "GET", "/healthz", 200, &m)
	if m["status"] != "ok" {
		t.Fatalf("healthz %v", m)
	}
	var errBody errorJSON
	e.call(t, "GET", "/readyz", 503, &errBody)
	if errBody.Error == "" {
		t.Fatal("readyz 503 without an error message")
	}
	// Liveness does not depend on readiness.
	e.call(t, "GET", "/healthz", 200, nil)
	e.ready.Store(true)
	e.call(t, "GET", "/readyz", 200, &m)
	e.ready.Store(false)
	e.call(t, "GET", "/readyz", 503, nil)
}

func TestVersionAndAgentStatus(t *testing.T) {
	e := newEnv(t)
	var v map[string]string
	e.call(t, "GET", "/version", 200, &v)
	if v["version"] != "v1.2.3-test" {
		t.Fatalf("version %v", v)
	}
	var st AgentStatus
	e.call(t, "GET", "/status", 200, &st)
	if st.Version != "v1.2.3-test" || st.Ready || st.VPPConnected == nil || !*st.VPPConnected || st.Values != 3 ||
		st.ValuesByState["CONFIGURED"] != 1 || st.ValuesByState["PENDING"] != 1 || st.ValuesByState["FAILED"] != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestSchedulerStatus(t *testing.T) {
	e := newEnv(t)
	var all []map[string]any
	e.call(t, "GET", "/values", 200, &all)
	if len(all) != 3 {
		t.Fatalf("%d values", len(all))
	}
	var one map[string]any
	e.call(t, "GET", "/values?key="+keyMemif, 200, &one)
	if one["state"] != "CONFIGURED" || one["descriptor"] != "vpp-interface" {
		t.Fatalf("one %v", one)
	}
	// The value is embedded as protobuf JSON with Ligato's snake_case names.
	val := one["value"].(map[string]any)
	memif := val["memif"].(map[string]any)
	if val["type"] != "MEMIF" || memif["socket_filename"] != "/run/m.sock" || memif["master"] != true {
		t.Fatalf("value %v", val)
	}
	if md := one["metadata"].(map[string]any); md["sw_if_index"] != float64(3) {
		t.Fatalf("metadata %v", one["metadata"])
	}
	var errBody errorJSON
	e.call(t, "GET", "/values?key=config/vpp/v2/interfaces/nope", 404, &errBody)
	if !strings.Contains(errBody.Error, "nope") {
		t.Fatalf("404 error %q", errBody.Error)
	}

	var list []ValueJSON
	e.call(t, "GET", "/values?prefix=config/vpp/v2/interfaces/", 200, &list)
	if len(list) != 2 || list[0].Key != keyMemif || list[1].Key != keyBad {
		t.Fatalf("prefix filter: %v", list)
	}
	// Metadata that encoding/json cannot handle does not break the answer.
	if len(list[1].Metadata) == 0 || list[1].Error == "" {
		t.Fatalf("failed value: %+v", list[1])
	}
	e.call(t, "GET", "/values?state=failed", 200, &list)
	if len(list) != 1 || list[0].Key != keyBad {
		t.Fatalf("state filter: %v", list)
	}
	e.call(t, "GET", "/values?descriptor=vpp-xconnect", 200, &list)
	if len(list) != 1 || list[0].Key != keyXC || len(list[0].Missing) != 1 {
		t.Fatalf("descriptor filter: %v", list)
	}
	e.call(t, "GET", "/values?prefix=config/none/", 200, &list)
	if list == nil || len(list) != 0 {
		t.Fatalf("empty filter should give [], got %v", list)
	}
}

func TestTxnHistory(t *testing.T) {
	e := newEnv(t)
	var h []kvscheduler.TxnRecord
	e.call(t, "GET", "/scheduler/txn-history", 200, &h)
	if len(h) != 5 || h[0].Seq != 1 || h[4].Seq != 5 {
		t.Fatalf("history %v", h)
	}
	e.call(t, "GET", "/scheduler/txn-history?n=2", 200, &h)
	if len(h) != 2 || h[0].Seq != 4 || h[1].Seq != 5 || h[1].Ops[0].Op != kvscheduler.OpCreate {
		t.Fatalf("history n=2 %v", h)
	}
	var rec kvscheduler.TxnRecord
	e.call(t, "GET", "/scheduler/txn-history?seq-num=3", 200, &rec)
	if rec.Seq != 3 {
		t.Fatalf("seq 3: %v", rec)
	}
	e.call(t, "GET", "/scheduler/txn-history?seq=99", 404, nil)
	// Records 1..5 started at 1700000000 + seq seconds.
	e.call(t, "GET", "/scheduler/txn-history?since=1700000004", 200, &h)
	if len(h) != 2 || h[0].Seq != 4 {
		t.Fatalf("since: %v", h)
	}
	e.call(t, "GET", "/scheduler/txn-history?since=1700000002&until=2023-11-14T22:13:23Z", 200, &h)
	if len(h) != 2 || h[0].Seq != 2 || h[1].Seq != 3 {
		t.Fatalf("since+until: %v", h)
	}
	for _, bad := range []string{"n=0", "n=-1", "n=x", "seq=x", "since=yesterday", "until=x"} {
		var eb errorJSON
		e.call(t, "GET", "/scheduler/txn-history?"+bad, 400, &eb)
		if eb.Error == "" {
			t.Fatalf("%s: no error text", bad)
		}
	}
}

func TestResync(t *testing.T) {
	e := newEnv(t)
	for i, path := range []string{"/scheduler/resync", "/scheduler/downstream-resync"} {
		var res ResyncResult
		e.call(t, "POST", path, 200, &res)
		if len(res.Txns) != 1 || res.Txns[0].Kind != kvscheduler.TxnFullResync || res.Txns[0].Seq != uint64(6+i) {
			t.Fatalf("%s: %+v", path, res)
		}
		if got := e.resyncs.Load(); got != int32(i+1) {
			t.Fatalf("resync ran %d times", got)
		}
	}
	// GET must not trigger a resync.
	var eb errorJSON
	e.call(t, "GET", "/scheduler/resync", 405, &eb)
	if e.resyncs.Load() != 2 || !strings.Contains(eb.Error, "POST") {
		t.Fatalf("GET resync: %d runs, %q", e.resyncs.Load(), eb.Error)
	}
	e.resyncErr = errors.New("etcd unavailable")
	e.call(t, "POST", "/scheduler/resync", 500, &eb)
	if !strings.Contains(eb.Error, "etcd unavailable") {
		t.Fatalf("resync error %q", eb.Error)
	}
}

func TestVPPDump(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/vpp/dump"} {
		var d []DumpJSON
		e.call(t, "GET", path, 200, &d)
		if len(d) != 3 || d[0].Key != keyXC || d[1].Key != "config/vpp/v2/interfaces/local0" || d[1].Origin != "FROM_SB" {
			t.Fatalf("%s: %+v", path, d)
		}
	}
	var d []DumpJSON
	e.call(t, "GET", "/vpp/dump?descriptor=vpp-interface", 200, &d)
	if len(d) != 2 || d[1].Key != keyMemif || d[1].Origin != "FROM_NB" {
		t.Fatalf("filtered: %+v", d)
	}
	var v map[string]any
	if err := json.Unmarshal(d[1].Value, &v); err != nil || v["type"] != "MEMIF" {
		t.Fatalf("value %s %v", d[1].Value, err)
	}
	e.retrieveFn = func(context.Context) ([]kvscheduler.RetrievedValue, error) {
		return nil, errors.New("vpp disconnected")
	}
	var eb errorJSON
	e.call(t, "GET", "/vpp/dump", 502, &eb)
	if !strings.Contains(eb.Error, "vpp disconnected") {
		t.Fatalf("dump error %q", eb.Error)
	}
}

func TestMetricsAndUnknownPaths(t *testing.T) {
	e := newEnv(t)
	body := e.call(t, "GET", "/metrics", 200, nil)
	if !strings.Contains(string(body), "vppmesh_test_metric 1") {
		t.Fatalf("metrics body %q", body)
	}
	var eb errorJSON
	e.call(t, "GET", "/nope", 404, &eb)
	e.call(t, "DELETE", "/scheduler/status", 405, &eb)
}

func TestUnwiredFeatures(t *testing.T) {
	s, err := New(Options{Scheduler: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for path, method := range map[string]string{"/metrics": "GET", "/scheduler/resync": "POST"} {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without scheduler must fail")
	}
}

func TestStartServeClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(Options{Addr: "127.0.0.1:0", Scheduler: newFake(), Version: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("code %d", resp.StatusCode)
	}
	// A second server on the same address reports the listen error.
	s2, _ := New(Options{Addr: s.Addr(), Scheduler: newFake()})
	if err := s2.Start(ctx); err == nil {
		s2.Close()
		t.Fatal("second listen on the same port succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/version"); err == nil {
		t.Fatal("server still answers after Close")
	}
}

// The real scheduler must fit the interface the team lead wires in.
var _ Scheduler = (*kvscheduler.Scheduler)(nil)

func TestAccessLogAndErrorLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFake()
	s, err := New(Options{Scheduler: f, Logger: log, Resync: func(context.Context) error { return errors.New("boom") }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/scheduler/resync", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a warning and an access line, got:\n%s", buf.String())
	}
	var warn, access map[string]any
	if json.Unmarshal([]byte(lines[0]), &warn) != nil || json.Unmarshal([]byte(lines[1]), &access) != nil {
		t.Fatalf("not JSON lines:\n%s", buf.String())
	}
	if warn["level"] != "WARN" || !strings.Contains(warn["err"].(string), "boom") || warn["plugin"] != "restapi" {
		t.Fatalf("warning %v", warn)
	}
	if access["msg"] != "rest request" || access["code"] != float64(500) || access["path"] != "/scheduler/resync" {
		t.Fatalf("access %v", access)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
