package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

var update = flag.Bool("update", false, "rewrite the golden files of the Ligato contract tests")

// volatile fields change from run to run; the golden files hold a marker.
var volatile = map[string]bool{"start_time": true, "last_change": true, "last_update": true,
	"GoVersion": true, "OS": true, "Arch": true, "GitCommit": true, "commit_hash": true,
	// The model list grows with the registry; TestLigatoDumpIndexPrefixes checks it.
	"KeyPrefixes": true}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if volatile[k] {
				x[k] = "<volatile>"
				continue
			}
			x[k] = normalize(e)
		}
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	}
	return v
}

type ligatoEnv struct {
	*env
	mu     sync.Mutex
	levels map[string]string
	cli    func(string) (string, error)
}

func newLigatoEnv(t *testing.T) *ligatoEnv {
	t.Helper()
	le := &ligatoEnv{env: &env{f: newFake()}, levels: map[string]string{"vppmesh-agent": "info", "govpp": "warn"}}
	e := le.env
	// A derived value under memif1, to show derived_values.
	e.f.status = append(e.f.status, kvscheduler.ValueStatus{Key: "vpp/bd/bd1/interface/memif1", Descriptor: "vpp-bd-interface",
		State: kvscheduler.StateConfigured, Derived: true, Parent: keyMemif})
	e.f.retrieve = func(ctx context.Context) ([]kvscheduler.RetrievedValue, error) { return e.retrieveFn(ctx) }
	e.retrieveFn = func(context.Context) ([]kvscheduler.RetrievedValue, error) {
		return []kvscheduler.RetrievedValue{
			{Key: "config/vpp/v2/interfaces/local0", Descriptor: "vpp-interface", Origin: kvscheduler.FromSB,
				Value: &interfaces.Interface{Name: "local0"}, Metadata: map[string]any{"sw_if_index": 0, "internal_name": "local0"}},
			{Key: keyMemif, Descriptor: "vpp-interface", Origin: kvscheduler.FromNB,
				Value:    &interfaces.Interface{Name: "memif1", Type: interfaces.Interface_MEMIF, Enabled: true},
				Metadata: map[string]any{"sw_if_index": 3, "internal_name": "memif1/1"}},
			{Key: "config/vpp/v2/interfaces/loop1", Descriptor: "vpp-interface", Origin: kvscheduler.FromNB,
				Value:    &interfaces.Interface{Name: "loop1", Type: interfaces.Interface_SOFTWARE_LOOPBACK},
				Metadata: map[string]any{"sw_if_index": 4, "internal_name": "loop0"}},
			{Key: keyXC, Descriptor: "vpp-xconnect", Origin: kvscheduler.FromNB, Value: &l2.XConnectPair{ReceiveInterface: "memif1", TransmitInterface: "loop1"}},
			{Key: "config/vpp/l2/v2/bridge-domain/bd1", Descriptor: "vpp-bridge-domain", Origin: kvscheduler.FromNB,
				Value: &l2.BridgeDomain{Name: "bd1", Flood: true, Forward: true}, Metadata: map[string]any{"bd_id": 1}},
		}, nil
	}
	le.cli = func(c string) (string, error) {
		if c == "show bogus" {
			return "", errors.New("VPP CLI: unknown input `bogus'")
		}
		return "out of " + c + "\n", nil
	}
	s, err := New(Options{
		Scheduler:    e.f,
		Version:      "v1.2.3-test",
		Ready:        e.ready.Load,
		VPPConnected: func() bool { return true },
		VPPCLI:       func(_ context.Context, c string) (string, error) { return le.cli(c) },
		LogLevels: func() map[string]string {
			le.mu.Lock()
			defer le.mu.Unlock()
			out := map[string]string{}
			for k, v := range le.levels {
				out[k] = v
			}
			return out
		},
		RecentLogs: func(n int) [][]byte {
			all := [][]byte{[]byte(`{"level":"INFO","msg":"agent started"}`), []byte(`not json`), []byte(`{"level":"WARN","msg":"VPP disconnected"}`)}
			if n < len(all) {
				all = all[len(all)-n:]
			}
			return all
		},
		SetLogLevel: func(logger, level string) error {
			le.mu.Lock()
			defer le.mu.Unlock()
			if _, ok := le.levels[logger]; !ok {
				return fmt.Errorf("%w %q", ErrUnknownLogger, logger)
			}
			switch level {
			case "debug", "info", "warn", "warning", "error":
			default:
				return fmt.Errorf("level %q: want debug, info, warn or error", level)
			}
			le.levels[logger] = level
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return le
}

func (le *ligatoEnv) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, le.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodGet {
		// The agent refuses state-changing calls without it (SECURITY.md).
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// golden compares an answer with testdata/ligato/<name>.json after the
// volatile fields are masked; -update rewrites the file.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: answer is not JSON: %v: %s", name, err, body)
	}
	got, _ := json.MarshalIndent(normalize(v), "", "  ")
	got = append(got, '\n')
	path := filepath.Join("testdata", "ligato", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Ligato -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Fatalf("%s: answer differs from %s\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// One contract per Ligato path: the code and the body's shape, against
// golden files written from Ligato's documented answers.
func TestLigatoContract(t *testing.T) {
	le := newLigatoEnv(t)
	cases := []struct {
		name, method, path, body string
		code                     int
		before                   func()
	}{
		{name: "liveness-init", method: "GET", path: "/liveness", code: 200},
		{name: "readiness-init", method: "GET", path: "/readiness", code: 500},
		{name: "readiness-ok", method: "GET", path: "/readiness", code: 200, before: func() { le.ready.Store(true) }},
		{name: "liveness-ok", method: "GET", path: "/liveness", code: 200},
		{name: "readiness-error", method: "GET", path: "/readiness", code: 500, before: func() { le.ready.Store(false) }},
		{name: "liveness-error", method: "GET", path: "/liveness", code: 200},
		{name: "info-version", method: "GET", path: "/info/version", code: 200},
		{name: "scheduler-status", method: "GET", path: "/scheduler/status", code: 200},
		{name: "scheduler-status-key", method: "GET", path: "/scheduler/status?key=" + keyMemif, code: 200},
		{name: "scheduler-status-unknown-key", method: "GET", path: "/scheduler/status?key=config/vpp/v2/interfaces/nope", code: 200},
		{name: "scheduler-status-descriptor", method: "GET", path: "/scheduler/status?descriptor=vpp-xconnect", code: 200},
		{name: "scheduler-status-key-prefix", method: "GET", path: "/scheduler/status?key-prefix=config/vpp/v2/interfaces/", code: 200},
		{name: "scheduler-status-bad-prefix", method: "GET", path: "/scheduler/status?key-prefix=config/nat/", code: 400},
		{name: "scheduler-status-twice", method: "GET", path: "/scheduler/status?key=a&key=b", code: 400},
		{name: "scheduler-dump-index", method: "GET", path: "/scheduler/dump", code: 200},
		{name: "scheduler-dump-sb", method: "GET", path: "/scheduler/dump?descriptor=vpp-interface", code: 200},
		{name: "scheduler-dump-sb-prefix", method: "GET", path: "/scheduler/dump?key-prefix=config/vpp/l2/&view=SB", code: 200},
		{name: "scheduler-dump-nb", method: "GET", path: "/scheduler/dump?key-prefix=config/&view=NB", code: 200},
		{name: "scheduler-dump-cached", method: "GET", path: "/scheduler/dump?key-prefix=&descriptor=vpp-interface&view=cached", code: 200},
		{name: "scheduler-dump-bad-view", method: "GET", path: "/scheduler/dump?descriptor=vpp-interface&view=XX", code: 400},
		{name: "dump-interfaces", method: "GET", path: "/dump/vpp/v2/interfaces", code: 200},
		{name: "dump-interfaces-memif", method: "GET", path: "/dump/vpp/v2/interfaces/memif", code: 200},
		{name: "dump-interfaces-loopback", method: "GET", path: "/dump/vpp/v2/interfaces/loopback", code: 200},
		{name: "dump-bd", method: "GET", path: "/dump/vpp/v2/bd", code: 200},
		{name: "dump-xc", method: "GET", path: "/dump/vpp/v2/xc", code: 200},
		{name: "dump-acl-unsupported", method: "GET", path: "/dump/vpp/v2/acl/ip", code: 404},
		{name: "vpp-command", method: "POST", path: "/vpp/command", body: `{"vppclicommand":"show interface"}`, code: 200},
		{name: "vpp-command-failed", method: "POST", path: "/vpp/command", body: `{"vppclicommand":"show bogus"}`, code: 500},
		{name: "vpp-command-missing", method: "POST", path: "/vpp/command", body: `{"command":"show version"}`, code: 400},
		{name: "log-list", method: "GET", path: "/log/list", code: 200},
		{name: "log-set", method: "PUT", path: "/log/govpp/debug", code: 200},
		{name: "log-list-after", method: "GET", path: "/log/list", code: 200},
		{name: "log-set-post", method: "POST", path: "/log/vppmesh-agent/warning", code: 200},
		{name: "log-set-unknown", method: "PUT", path: "/log/nope/debug", code: 404},
		{name: "log-set-bad-level", method: "PUT", path: "/log/govpp/loud", code: 400},
		{name: "log-recent", method: "GET", path: "/log/recent", code: 200},
		{name: "log-recent-2", method: "GET", path: "/log/recent?n=2", code: 200},
		{name: "log-recent-bad", method: "GET", path: "/log/recent?n=zero", code: 400},
	}
	for _, c := range cases {
		if c.before != nil {
			c.before()
		}
		code, body := le.do(t, c.method, c.path, c.body)
		if code != c.code {
			t.Fatalf("%s %s: code %d, want %d: %s", c.method, c.path, code, c.code, body)
		}
		golden(t, c.name, body)
	}
	// The log level really changed.
	le.mu.Lock()
	if le.levels["govpp"] != "debug" || le.levels["vppmesh-agent"] != "warning" {
		t.Fatalf("levels after PUT/POST: %v", le.levels)
	}
	le.mu.Unlock()
	// Wrong method on a Ligato path.
	if code, _ := le.do(t, "GET", "/vpp/command", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /vpp/command: %d", code)
	}
	if code, _ := le.do(t, "GET", "/log/govpp/debug", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /log/govpp/debug: %d", code)
	}
}

// Ligato's L2 FIB, route and ARP dumps answer once those models are
// registered, and say "not supported" until then.
func TestLigatoDumpOfOptionalModels(t *testing.T) {
	le := newLigatoEnv(t)
	for path, d := range ligatoDumps {
		code, body := le.do(t, "GET", PathDumpPrefix+path, "")
		_, err := models.ModelForKey(d.prefix + "x")
		switch {
		case err == nil && code != 200:
			t.Errorf("%s: model registered but code %d: %s", path, code, body)
		case err != nil && (code != 404 || !strings.Contains(string(body), "not supported by vppmesh")):
			t.Errorf("%s: model missing but code %d: %s", path, code, body)
		}
	}
	// The spelled-out aliases answer as the short paths.
	for alias, path := range ligatoDumpAliases {
		c1, b1 := le.do(t, "GET", PathDumpPrefix+alias, "")
		c2, b2 := le.do(t, "GET", PathDumpPrefix+path, "")
		if c1 != c2 || (c1 == 200 && string(b1) != string(b2)) {
			t.Errorf("%s: %d %s; %s: %d %s", alias, c1, b1, path, c2, b2)
		}
	}
	// Every interface type path answers, with only its type.
	for path, typ := range map[string]string{"loopback": "SOFTWARE_LOOPBACK", "memif": "MEMIF", "tap": "", "afpacket": "",
		"vxlan": "", "ethernet": "", "vhostuser": ""} {
		code, body := le.do(t, "GET", PathDumpPrefix+"interfaces/"+path, "")
		var m map[string]struct {
			Interface struct{ Type string } `json:"interface"`
		}
		if code != 200 || json.Unmarshal(body, &m) != nil {
			t.Fatalf("interfaces/%s: %d %s", path, code, body)
		}
		for _, v := range m {
			if v.Interface.Type != typ {
				t.Fatalf("interfaces/%s answered a %s", path, v.Interface.Type)
			}
		}
		if (typ != "") != (len(m) == 1) {
			t.Fatalf("interfaces/%s: %d interfaces", path, len(m))
		}
	}
	// Ligato's paths vppmesh lacks say so, whatever the method.
	paths := append([]string{}, ligatoUnsupportedDumps...)
	for p := range ligatoUnsupportedPaths {
		paths = append(paths, p)
	}
	for _, p := range paths {
		code, body := le.do(t, "GET", p, "")
		if code != 404 || !strings.Contains(string(body), "not supported by vppmesh") {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	if code, body := le.do(t, "PUT", "/configuration", "vppConfig: {}"); code != 404 || !strings.Contains(string(body), "etcd") {
		t.Errorf("PUT /configuration: %d %s", code, body)
	}
	// A dump error is Ligato's 500 with a message string.
	le.retrieveFn = func(context.Context) ([]kvscheduler.RetrievedValue, error) {
		return nil, errors.New("vpp disconnected")
	}
	code, body := le.do(t, "GET", "/dump/vpp/v2/interfaces", "")
	var msg string
	if code != 500 || json.Unmarshal(body, &msg) != nil || !strings.Contains(msg, "vpp disconnected") {
		t.Fatalf("dump error: %d %s", code, body)
	}
	code, body = le.do(t, "GET", "/scheduler/dump?descriptor=vpp-interface", "")
	var le2 struct{ Error string }
	if code != 500 || json.Unmarshal(body, &le2) != nil || !strings.Contains(le2.Error, "vpp disconnected") {
		t.Fatalf("scheduler dump error: %d %s", code, body)
	}
}

func TestLigatoDumpIndexPrefixes(t *testing.T) {
	le := newLigatoEnv(t)
	code, body := le.do(t, "GET", "/scheduler/dump", "")
	var idx LigatoDumpIndex
	if code != 200 || json.Unmarshal(body, &idx) != nil {
		t.Fatalf("%d %s", code, body)
	}
	want := models.Prefixes()
	if strings.Join(idx.KeyPrefixes, ",") != strings.Join(want, ",") || len(want) == 0 {
		t.Fatalf("KeyPrefixes %v, want the registry's %v", idx.KeyPrefixes, want)
	}
}
