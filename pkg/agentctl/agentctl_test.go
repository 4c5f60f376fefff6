package agentctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/restapi"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEtcd runs a real single-member etcd in a temp dir on free ports.
func startEtcd(t *testing.T) (endpoint string, cl *clientv3.Client) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	// Its shutdown logs "server closed" errors that are expected here.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(20 * time.Second):
		t.Fatal("embedded etcd did not become ready")
	}
	cl, err = clientv3.New(clientv3.Config{Endpoints: []string{cu.Host}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cu.Host, cl
}

type harness struct {
	t        *testing.T
	endpoint string
	etcd     *clientv3.Client
	env      map[string]string
	sched    *fakeScheduler
	rest     *httptest.Server
	sec      restapi.Security // the REST server's security options
}

func newHarness(t *testing.T) *harness {
	ep, cl := startEtcd(t)
	return &harness{t: t, endpoint: ep, etcd: cl, env: map[string]string{"ETCD_ENDPOINTS": ep}}
}

// run executes agentctl in-process as a user would.
func (h *harness) run(args ...string) (stdout, stderr string, err error) {
	h.t.Helper()
	root := NewRootCommand(func(k string) string { return h.env[k] })
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func (h *harness) mustRun(args ...string) string {
	h.t.Helper()
	out, errOut, err := h.run(args...)
	if err != nil {
		h.t.Fatalf("agentctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (h *harness) get(key string) (string, bool) {
	h.t.Helper()
	resp, err := h.etcd.Get(context.Background(), key)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}

const (
	memifJSON = `{"name":"memif1","type":"MEMIF","enabled":true,"memif":{"master":true,"id":1,"socket_filename":"/run/vpp/memif.sock"}}`
	root1     = "/vnf-agent/vpp1/"
)

func TestKvdbPutGetListDel(t *testing.T) {
	h := newHarness(t)
	out := h.mustRun("kvdb", "put", "config/vpp/v2/interfaces/memif1", memifJSON)
	if !strings.Contains(out, "OK "+root1+"config/vpp/v2/interfaces/memif1") {
		t.Fatalf("put output %q", out)
	}
	got, ok := h.get(root1 + "config/vpp/v2/interfaces/memif1")
	if !ok {
		t.Fatal("short key not written under the agent root")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil || m["type"] != "MEMIF" || m["memif"].(map[string]any)["socket_filename"] != "/run/vpp/memif.sock" {
		t.Fatalf("stored %s (%v)", got, err)
	}
	// Ligato model path without "config/", and a full key for another label.
	h.mustRun("kvdb", "put", "vpp/l2/v2/xconnect/memif1", `{"receive_interface":"memif1","transmit_interface":"memif2"}`)
	if _, ok := h.get(root1 + "config/vpp/l2/v2/xconnect/memif1"); !ok {
		t.Fatal("model-path key not written")
	}
	h.mustRun("kvdb", "put", "/vnf-agent/other/config/vpp/v2/interfaces/loop1", `{"name":"loop1","type":"SOFTWARE_LOOPBACK"}`)
	if _, ok := h.get("/vnf-agent/other/config/vpp/v2/interfaces/loop1"); !ok {
		t.Fatal("full key not written")
	}

	// Invalid values are refused with the reason and nothing is written.
	for _, c := range []struct{ key, val, want string }{
		{"config/vpp/v2/interfaces/bad1", `{"name":"bad1","colour":"red"}`, "unknown field"},
		{"config/vpp/v2/interfaces/bad2", `{"name":"other"}`, "does not match"},
		{"config/vpp/v2/interfaces/bad3", `{"name":`, "invalid"},
		{"config/vpp/v9/things/bad4", `{}`, "no model"},
	} {
		_, _, err := h.run("kvdb", "put", c.key, c.val)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("put %s: err %v, want %q", c.key, err, c.want)
		}
		if _, ok := h.get(root1 + c.key); ok {
			t.Fatalf("%s written despite validation error", c.key)
		}
	}
	// --force stores it as given.
	h.mustRun("kvdb", "put", "--force", "config/vpp/v9/things/x", `not json`)
	if v, _ := h.get(root1 + "config/vpp/v9/things/x"); v != "not json" {
		t.Fatalf("forced value %q", v)
	}

	// VALUE "-" reads stdin.
	root := NewRootCommand(func(k string) string { return h.env[k] })
	root.SetArgs([]string{"kvdb", "put", "config/vpp/v2/interfaces/loop9", "-"})
	root.SetIn(strings.NewReader(`{"name":"loop9","type":"SOFTWARE_LOOPBACK"}` + "\n"))
	root.SetOut(io.Discard)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.get(root1 + "config/vpp/v2/interfaces/loop9"); !strings.Contains(v, "SOFTWARE_LOOPBACK") {
		t.Fatalf("stdin value %q", v)
	}
	h.mustRun("kvdb", "del", "config/vpp/v2/interfaces/loop9")

	out = h.mustRun("kvdb", "get", "config/vpp/v2/interfaces/memif1")
	if strings.TrimSpace(out) != got {
		t.Fatalf("get %q, want %q", out, got)
	}
	if _, _, err := h.run("kvdb", "get", "config/vpp/v2/interfaces/none"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("get missing: %v", err)
	}

	out = h.mustRun("kvdb", "list", "--keys-only")
	wantKeys := root1 + "config/vpp/l2/v2/xconnect/memif1\n" + root1 + "config/vpp/v2/interfaces/memif1\n" + root1 + "config/vpp/v9/things/x\n"
	if out != wantKeys {
		t.Fatalf("list --keys-only:\n%s\nwant\n%s", out, wantKeys)
	}
	out = h.mustRun("kvdb", "list", "config/vpp/v2/")
	if !strings.HasPrefix(out, "KEY") || !strings.Contains(out, "memif1") || strings.Contains(out, "xconnect") {
		t.Fatalf("list prefix:\n%s", out)
	}
	var items []KV
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "kvdb", "list")), &items); err != nil || len(items) != 3 {
		t.Fatalf("list -o json: %v %v", items, err)
	}
	if items[2].Value != "not json" || items[1].ModRevision == 0 {
		t.Fatalf("list items %+v", items)
	}

	h.mustRun("kvdb", "del", "config/vpp/v2/interfaces/memif1")
	if _, ok := h.get(root1 + "config/vpp/v2/interfaces/memif1"); ok {
		t.Fatal("del left the key")
	}
	if _, _, err := h.run("kvdb", "del", "config/vpp/v2/interfaces/memif1"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("del missing: %v", err)
	}
}

func TestGlobalFlagsAndEnv(t *testing.T) {
	h := newHarness(t)
	h.env["MICROSERVICE_LABEL"] = "edge7"
	h.mustRun("kvdb", "put", "config/vpp/v2/interfaces/loop1", `{"name":"loop1"}`)
	if _, ok := h.get("/vnf-agent/edge7/config/vpp/v2/interfaces/loop1"); !ok {
		t.Fatal("MICROSERVICE_LABEL not used")
	}
	h.mustRun("--service-label", "vpp2", "kvdb", "put", "config/vpp/v2/interfaces/loop1", `{"name":"loop1"}`)
	if _, ok := h.get("/vnf-agent/vpp2/config/vpp/v2/interfaces/loop1"); !ok {
		t.Fatal("--service-label not used")
	}
	if _, _, err := h.run("-o", "xml", "kvdb", "list"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("bad output format: %v", err)
	}
	// An unreachable etcd fails with a message naming it, within --timeout.
	_, _, err := h.run("-e", "127.0.0.1:1", "--timeout", "500ms", "kvdb", "get", "config/vpp/v2/interfaces/loop1")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable etcd: %v", err)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportLineFormatReportsBadWritesGood(t *testing.T) {
	h := newHarness(t)
	file := writeFile(t, "input.txt", `# Ligato agentctl import file
config/vpp/v2/interfaces/loop1 {"name":"loop1","type":"SOFTWARE_LOOPBACK"}
config/vpp/l2/v2/bridge-domain/bd1 {"name":"bd1"}

/vnf-agent/vpp1/config/vpp/v2/interfaces/memif1	`+memifJSON+`
config/vpp/v2/interfaces/bad1 {"name":"bad1","colour":"red"}
config/vpp/v2/interfaces/bad2 {"name":"notbad2"}
config/vpp/v2/interfaces/lonely
config/vpp/v9/things/x {}
`)
	out, errOut, err := h.run("import", file)
	if err == nil || !strings.Contains(err.Error(), "4 of 7 entries are bad") {
		t.Fatalf("import err %v", err)
	}
	for _, want := range []string{"line 6 (config/vpp/v2/interfaces/bad1)", "unknown field", "line 7", "does not match", "line 8", "KEY VALUE", "line 9", "no model"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "imported 3 keys from 7 entries in 1 txns, 4 bad") {
		t.Fatalf("stdout %q", out)
	}
	for _, k := range []string{"config/vpp/v2/interfaces/loop1", "config/vpp/l2/v2/bridge-domain/bd1", "config/vpp/v2/interfaces/memif1"} {
		if _, ok := h.get(root1 + k); !ok {
			t.Fatalf("good entry %s not written", k)
		}
	}
	for _, k := range []string{"config/vpp/v2/interfaces/bad1", "config/vpp/v2/interfaces/bad2"} {
		if _, ok := h.get(root1 + k); ok {
			t.Fatalf("bad entry %s written", k)
		}
	}
}

func TestImportYAMLAndJSON(t *testing.T) {
	h := newHarness(t)
	yamlMap := writeFile(t, "cfg.yaml", `
config/vpp/v2/interfaces/memif1:
  name: memif1
  type: MEMIF
  enabled: true
  memif: {master: true, id: 1, socket_filename: /run/vpp/memif.sock}
vpp/v2/interfaces/vh1:
  name: vh1
  type: VHOST_USER
  vhost_user: {socket_filename: /tmp/vh1.sock, server: true}
config/vpp/l2/v2/xconnect/memif1: '{"receive_interface":"memif1","transmit_interface":"vh1"}'
config/vpp/v2/interfaces/oops:
  name: oops
  mtu: -5
`)
	_, errOut, err := h.run("import", yamlMap)
	if err == nil || !strings.Contains(errOut, "key config/vpp/v2/interfaces/oops") {
		t.Fatalf("yaml map: err %v stderr %s", err, errOut)
	}
	if v, ok := h.get(root1 + "config/vpp/v2/interfaces/vh1"); !ok || !strings.Contains(v, `"socket_filename":"/tmp/vh1.sock"`) {
		t.Fatalf("vh1 = %q", v)
	}
	if v, _ := h.get(root1 + "config/vpp/l2/v2/xconnect/memif1"); !strings.Contains(v, `"transmit_interface":"vh1"`) {
		t.Fatalf("xconnect = %q", v)
	}

	yamlList := writeFile(t, "list.yaml", `
- key: config/vpp/v2/interfaces/loop2
  value: {name: loop2, type: SOFTWARE_LOOPBACK}
- key: config/vpp/v2/interfaces/loop3
- value: {name: x}
`)
	_, errOut, err = h.run("import", yamlList)
	if err == nil || !strings.Contains(errOut, "item 2") || !strings.Contains(errOut, "item 3") {
		t.Fatalf("yaml list: err %v stderr %s", err, errOut)
	}
	if _, ok := h.get(root1 + "config/vpp/v2/interfaces/loop2"); !ok {
		t.Fatal("loop2 from list not written")
	}

	jsonFile := writeFile(t, "cfg.json", `{"config/vpp/l2/v2/bridge-domain/bd9": {"name":"bd9","flood":true,"interfaces":[{"name":"loop2"}]}}`)
	out := h.mustRun("-o", "json", "import", jsonFile)
	var rep ImportReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Imported != 1 || len(rep.Txns) != 1 || len(rep.Errors) != 0 {
		t.Fatalf("json import report %s (%v)", out, err)
	}
	if _, ok := h.get(root1 + "config/vpp/l2/v2/bridge-domain/bd9"); !ok {
		t.Fatal("bd9 not written")
	}

	// A file that is neither is refused whole, before anything is written.
	bad := writeFile(t, "bad.yaml", "key: [unclosed\n")
	if _, _, err := h.run("import", bad); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Fatalf("broken yaml: %v", err)
	}
}

func TestImportBatchesIntoTxnsOfAtMostTxOps(t *testing.T) {
	h := newHarness(t)
	var b strings.Builder
	const n = 300
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "config/vpp/v2/interfaces/loop%d {\"name\":\"loop%d\",\"type\":\"SOFTWARE_LOOPBACK\"}\n", i, i)
	}
	file := writeFile(t, "many.txt", b.String())
	before, err := h.etcd.Get(context.Background(), "probe")
	if err != nil {
		t.Fatal(err)
	}
	var rep ImportReport
	out := h.mustRun("-o", "yaml", "import", file)
	if err := yaml.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("yaml report: %v\n%s", err, out)
	}
	after, err := h.etcd.Get(context.Background(), root1, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Kvs) != n || rep.Imported != n {
		t.Fatalf("%d keys in etcd, report says %d", len(after.Kvs), rep.Imported)
	}
	// Each etcd txn is one revision: 300 keys at 128 a txn are 3 revisions.
	if got := after.Header.Revision - before.Header.Revision; got != 3 {
		t.Fatalf("import took %d revisions, want 3", got)
	}
	perRev := map[int64]int{}
	for _, kv := range after.Kvs {
		perRev[kv.ModRevision]++
	}
	for rev, cnt := range perRev {
		if cnt > DefaultTxOps {
			t.Fatalf("revision %d wrote %d keys > %d", rev, cnt, DefaultTxOps)
		}
	}
	if len(rep.Txns) != 3 || rep.Txns[0].Keys != 128 || rep.Txns[1].Keys != 128 || rep.Txns[2].Keys != 44 {
		t.Fatalf("txns %+v", rep.Txns)
	}

	// --txops N, and a repeated key counted once.
	file2 := writeFile(t, "few.txt", b.String()[:0]+strings.Repeat("config/vpp/v2/interfaces/a {\"name\":\"a\"}\n", 2)+
		"config/vpp/v2/interfaces/b {\"name\":\"b\"}\nconfig/vpp/v2/interfaces/c {\"name\":\"c\"}\n")
	out, errOut, err := h.run("import", "--txops", "2", file2)
	if err != nil || !strings.Contains(out, "imported 3 keys from 4 entries in 2 txns") || !strings.Contains(errOut, "repeats line 1") {
		t.Fatalf("txops 2: %v\n%s\n%s", err, out, errOut)
	}
	if _, _, err := h.run("import", "--txops", "0", file2); err == nil {
		t.Fatal("--txops 0 accepted")
	}
	// --dry-run writes nothing.
	rev := after.Header.Revision
	h.mustRun("import", "--dry-run", file)
	now, _ := h.etcd.Get(context.Background(), "probe")
	if now.Header.Revision != rev+2 {
		t.Fatalf("dry run changed etcd: revision %d, want %d", now.Header.Revision, rev+2)
	}
}

// fakeScheduler stands in for the kvscheduler behind the real REST server.
type fakeScheduler struct {
	mu      sync.Mutex
	status  []kvscheduler.ValueStatus
	history []kvscheduler.TxnRecord
}

func (f *fakeScheduler) Status() []kvscheduler.ValueStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kvscheduler.ValueStatus(nil), f.status...)
}

func (f *fakeScheduler) StatusOf(key string) (kvscheduler.ValueStatus, bool) {
	for _, s := range f.Status() {
		if s.Key == key {
			return s, true
		}
	}
	return kvscheduler.ValueStatus{}, false
}

func (f *fakeScheduler) Retrieve(context.Context) ([]kvscheduler.RetrievedValue, error) {
	return []kvscheduler.RetrievedValue{
		{Key: "config/vpp/v2/interfaces/local0", Descriptor: "vpp-interface", Origin: kvscheduler.FromSB, Value: &interfaces.Interface{Name: "local0"}},
		{Key: "config/vpp/v2/interfaces/memif1", Descriptor: "vpp-interface", Value: &interfaces.Interface{Name: "memif1"}, Metadata: map[string]int{"sw_if_index": 1}},
	}, nil
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

func (h *harness) startREST() {
	h.t.Helper()
	now := time.Now()
	h.sched = &fakeScheduler{
		status: []kvscheduler.ValueStatus{
			{Key: "config/vpp/v2/interfaces/memif1", Descriptor: "vpp-interface", State: kvscheduler.StateConfigured, LastChange: now.Add(-time.Minute),
				Value: &interfaces.Interface{Name: "memif1", Type: interfaces.Interface_MEMIF}},
			{Key: "config/vpp/v2/interfaces/tap1", Descriptor: "vpp-interface", State: kvscheduler.StateFailed, Error: "tap_create_v3: retval -13", LastChange: now},
			{Key: "config/vpp/l2/v2/xconnect/memif1", Descriptor: "vpp-xconnect", State: kvscheduler.StatePending, Missing: []string{"config/vpp/v2/interfaces/memif2"}},
		},
		history: []kvscheduler.TxnRecord{{Seq: 1, Kind: kvscheduler.TxnChange, Start: now, Duration: time.Millisecond,
			Changes: []string{"config/vpp/v2/interfaces/memif1"},
			Ops:     []kvscheduler.Op{{Key: "config/vpp/v2/interfaces/memif1", Op: kvscheduler.OpCreate, NewState: kvscheduler.StateConfigured}}}},
	}
	connected := true
	srv, err := restapi.New(restapi.Options{
		Security:  h.sec,
		Scheduler: h.sched, Version: "v0.9.0", Ready: func() bool { return true }, VPPConnected: func() bool { return connected },
		Resync: func(ctx context.Context) error {
			h.sched.mu.Lock()
			defer h.sched.mu.Unlock()
			h.sched.history = append(h.sched.history, kvscheduler.TxnRecord{Seq: 2, Kind: kvscheduler.TxnFullResync, Start: time.Now(),
				Ops: []kvscheduler.Op{{Key: "config/vpp/v2/interfaces/tap1", Op: kvscheduler.OpCreate, Error: "retval -13"}}})
			return nil
		},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.rest = httptest.NewServer(srv.Handler())
	h.t.Cleanup(h.rest.Close)
	u, _ := url.Parse(h.rest.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	h.env["AGENT_HOST"] = host
	h.env["AGENT_HTTP_PORT"] = port
}

func TestRESTViews(t *testing.T) {
	h := &harness{t: t, env: map[string]string{}}
	h.startREST()

	out := h.mustRun("values")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "KEY") || !strings.Contains(lines[0], "LAST CHANGE") {
		t.Fatalf("values table:\n%s", out)
	}
	if !strings.Contains(out, "tap_create_v3: retval -13") || !strings.Contains(out, "waiting for config/vpp/v2/interfaces/memif2") {
		t.Fatalf("values table lacks error or missing deps:\n%s", out)
	}
	out = h.mustRun("values", "--state", "failed")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "tap1") {
		t.Fatalf("values --state failed:\n%s", out)
	}
	var vals []restapi.ValueJSON
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "values", "config/vpp/v2/")), &vals); err != nil || len(vals) != 2 {
		t.Fatalf("values -o json: %v %v", vals, err)
	}
	var v map[string]any
	if err := json.Unmarshal(vals[0].Value, &v); err != nil || v["type"] != "MEMIF" {
		t.Fatalf("value %s: %v", vals[0].Value, err)
	}

	out = h.mustRun("dump")
	if !strings.Contains(out, "FROM_SB") || !strings.Contains(out, `{"sw_if_index":1}`) {
		t.Fatalf("dump:\n%s", out)
	}
	var dumped []restapi.DumpJSON
	if err := yaml.Unmarshal([]byte(h.mustRun("-o", "yaml", "dump", "vpp-interface")), &dumped); err != nil || len(dumped) != 2 {
		t.Fatalf("dump -o yaml: %v %v", dumped, err)
	}

	out = h.mustRun("status")
	for _, want := range []string{"v0.9.0", "ready:          true", "vpp connected:  true", "FAILED", "PENDING"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	var st restapi.AgentStatus
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "status")), &st); err != nil || st.Values != 3 || st.ValuesByState["CONFIGURED"] != 1 {
		t.Fatalf("status -o json: %+v %v", st, err)
	}

	out = h.mustRun("config", "history")
	if !strings.Contains(out, "CREATE config/vpp/v2/interfaces/memif1") || !strings.Contains(out, "change") {
		t.Fatalf("history:\n%s", out)
	}
	out = h.mustRun("config", "resync")
	if !strings.Contains(out, "full-resync") || !strings.Contains(out, "retval -13") {
		t.Fatalf("resync:\n%s", out)
	}
	var hist []kvscheduler.TxnRecord
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "config", "history", "-n", "1")), &hist); err != nil || len(hist) != 1 || hist[0].Seq != 2 {
		t.Fatalf("history -n 1: %+v %v", hist, err)
	}

	// An agent that is down gives a one-line error naming where it looked.
	h.rest.Close()
	if _, _, err := h.run("status"); err == nil || !strings.Contains(err.Error(), "REST API at") {
		t.Fatalf("agent down: %v", err)
	}
}

func TestConfigGetFromEtcd(t *testing.T) {
	h := newHarness(t)
	h.mustRun("kvdb", "put", "config/vpp/v2/interfaces/memif1", memifJSON)
	h.mustRun("kvdb", "put", "--force", "config/vpp/v2/interfaces/broken", `{"name":"broken","colour":1}`)
	h.mustRun("kvdb", "put", "--force", "status/vpp/v2/interfaces/memif1", `{"state":"CONFIGURED"}`)
	out := h.mustRun("config", "get")
	if !strings.Contains(out, "vpp.interfaces") || !strings.Contains(out, "unknown field") || strings.Contains(out, "status/") {
		t.Fatalf("config get:\n%s", out)
	}
	var vals []ConfigValue
	if err := yaml.Unmarshal([]byte(h.mustRun("-o", "yaml", "config", "get")), &vals); err != nil || len(vals) != 2 {
		t.Fatalf("config get -o yaml: %+v %v", vals, err)
	}
	if vals[1].Error != "" || vals[0].Error == "" {
		t.Fatalf("errors: %+v", vals)
	}
}
