package agentctl

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vppmesh/vppmesh/agent"
	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/test/etcdtest"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

var govppLogs sync.Once

// liveAgent is a real agent (embedded etcd) on vppsim, for the walk.
type liveAgent struct {
	t    *testing.T
	dir  string
	a    *agent.Agent
	etcd *clientv3.Client
	env  map[string]string
}

func startLiveAgent(t *testing.T) *liveAgent {
	t.Helper()
	dir := t.TempDir()
	sim, err := vppsim.Start(context.Background(), vppsim.Config{Socket: filepath.Join(dir, "api.sock"), StatsSocket: filepath.Join(dir, "stats.sock"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	govppLogs.Do(func() { agent.RouteGovppLogs(slog.New(slog.DiscardHandler), slog.LevelInfo) })
	etcdPort := freePort(t)
	level := new(slog.LevelVar)
	ring := agent.NewLogRing(100)
	opts := agent.Options{
		Label: "vpp1", VPPSocket: filepath.Join(dir, "api.sock"), VPPStatsSocket: filepath.Join(dir, "stats.sock"),
		EtcdListen: fmt.Sprintf("http://127.0.0.1:%d", etcdPort), EtcdPeer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		HTTPAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, "etcd"), HealthInterval: 200 * time.Millisecond,
		StatsInterval: 100 * time.Millisecond, CountersPublishInterval: 200 * time.Millisecond, Parallelism: 16,
		LogLevelVar: level, LogRing: ring,
	}
	a := agent.New(opts, slog.New(slog.NewJSONHandler(ring, &slog.HandlerOptions{Level: level})))
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	deadline := time.Now().Add(15 * time.Second)
	for !a.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("agent not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ep := fmt.Sprintf("127.0.0.1:%d", etcdPort)
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	_, port, _ := net.SplitHostPort(a.HTTPAddr())
	return &liveAgent{t: t, dir: dir, a: a, etcd: cl, env: map[string]string{"ETCD_ENDPOINTS": ep, "AGENT_HTTP_PORT": port}}
}

func (l *liveAgent) run(stdin string, args ...string) (string, string, error) {
	root := NewRootCommand(func(k string) string { return l.env[k] })
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"--timeout", "10s"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// runCtx runs agentctl until it ends or ctx does (a verb that runs until
// interrupted).
func (l *liveAgent) runCtx(ctx context.Context, args ...string) error {
	root := NewRootCommand(func(k string) string { return l.env[k] })
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"--timeout", "10s"}, args...))
	return root.ExecuteContext(ctx)
}

func (l *liveAgent) state(key string) string {
	resp, err := l.etcd.Get(context.Background(), "/vnf-agent/vpp1/status/"+strings.TrimPrefix(key, "config/"))
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	var st struct{ State string }
	_ = json.Unmarshal(resp.Kvs[0].Value, &st)
	return st.State
}

func (l *liveAgent) waitState(key, want string) {
	l.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for l.state(key) != want {
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: state %q, want %s", key, l.state(key), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *liveAgent) exists(key string) bool {
	resp, err := l.etcd.Get(context.Background(), "/vnf-agent/vpp1/"+key)
	return err == nil && len(resp.Kvs) == 1
}

const ligatoYAML = `vppConfig:
  interfaces:
    - name: loop1
      type: SOFTWARE_LOOPBACK
      enabled: true
    - name: memifw1
      type: MEMIF
      enabled: true
      memif:
        master: true
        id: 11
        socketFilename: %[1]s/memif.sock
    - name: memifw2
      type: MEMIF
      enabled: true
      memif: {master: true, id: 12, socket_filename: %[1]s/memif.sock}
  bridgeDomains:
    - name: bd1
      flood: true
      forward: true
      learn: true
      interfaces:
        - name: loop1
  xconnectPairs:
    - receiveInterface: memifw1
      transmitInterface: memifw2
    - receive_interface: memifw2
      transmit_interface: memifw1
`

// Every agentctl verb against a running agent: each either does its job
// (checked in etcd, VPP or its output) or exits non-zero with a message;
// none exits 0 without doing its job. A verb added later without a case
// here fails the test.
func TestWalkEveryCommand(t *testing.T) {
	l := startLiveAgent(t)
	cfgFile := filepath.Join(l.dir, "ligato.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(ligatoYAML, l.dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	jsonCfg := filepath.Join(l.dir, "ligato.json")
	if err := os.WriteFile(jsonCfg, []byte(`{"vppConfig":{"interfaces":[{"name":"loop2","type":"SOFTWARE_LOOPBACK"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	unsupported := filepath.Join(l.dir, "acl.yaml")
	if err := os.WriteFile(unsupported, []byte("vppConfig:\n  acls:\n    - name: acl1\n  interfaces:\n    - name: loop3\n      type: SOFTWARE_LOOPBACK\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := filepath.Join(l.dir, "lines.txt")
	if err := os.WriteFile(lines, []byte("config/vpp/v2/interfaces/loop4 {\"name\":\"loop4\",\"type\":\"SOFTWARE_LOOPBACK\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reportDir := t.TempDir()

	type step struct {
		args    []string
		stdin   string
		wantErr string                        // non-empty: must fail with this in the error
		check   func(out, errOut string) bool // for successes: the job was done
	}
	has := func(s ...string) func(string, string) bool {
		return func(out, _ string) bool {
			for _, x := range s {
				if !strings.Contains(out, x) {
					return false
				}
			}
			return true
		}
	}
	var watchOut, liveOut string
	watchDone, liveDone := make(chan error, 1), make(chan error, 1)
	// mesh register runs in the background until regStop; the mesh steps
	// wire a connection to its endpoint, with memif peers in place of CNFs.
	sock := func(n string) string { return filepath.Join(l.dir, n+".sock") }
	regCtx, regStop := context.WithCancel(context.Background())
	defer regStop()
	regDone := make(chan error, 1)
	regArgs := []string{"mesh", "register", "wep1", "--service", "wfw", "--label", "color=blue", "--memif-socket", sock("wep1"), "--ttl", "1s"}
	meshGet := func(kind models.MeshKind, name string) string {
		resp, err := l.etcd.Get(context.Background(), models.MeshKey(kind, name))
		if err != nil || len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	eventually := func(ok func() bool) bool {
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if ok() {
				return true
			}
		}
		return false
	}
	steps := []step{
		{args: []string{"--version"}, check: has("agentctl version")},
		{args: []string{"version"}, check: has("agentctl:", "vppmesh-agent")},
		{args: []string{}, wantErr: "missing command"},
		{args: []string{"bogus"}, wantErr: "unknown command"},
		{args: []string{"config"}, wantErr: "missing command"},
		{args: []string{"kvdb"}, wantErr: "missing command"},
		{args: []string{"vpp"}, wantErr: "missing command"},
		{args: []string{"log"}, wantErr: "missing command"},
		{args: []string{"model"}, wantErr: "missing command"},
		{args: []string{"config", "nope"}, wantErr: "unknown command"},
		{args: []string{"completion"}, wantErr: "missing command"},

		{args: []string{"model", "list"}, check: has("vpp.interfaces", "vpp.l2.bridge-domain", "vpp.l2.xconnect", "config/vpp/v2/interfaces/")},
		{args: []string{"models"}, check: has("vpp.interfaces", "vpp.l2.xconnect")},
		{args: []string{"model", "inspect", "vpp.l2.bridge-domain"}, check: has("config/vpp/l2/v2/bridge-domain/")},
		{args: []string{"model", "inspect", "vpp.acls.acl"}, wantErr: "not supported by vppmesh"},

		// config update: Ligato's vppConfig YAML, with -f.
		{args: []string{"config", "update", "-f", cfgFile}, check: func(string, string) bool {
			l.waitState("config/vpp/l2/v2/xconnect/memifw2", "CONFIGURED")
			l.waitState("config/vpp/l2/v2/bridge-domain/bd1", "CONFIGURED")
			return l.exists("config/vpp/v2/interfaces/loop1") && l.exists("config/vpp/l2/v2/xconnect/memifw1")
		}},
		{args: []string{"config", "update", jsonCfg}, check: func(string, string) bool {
			l.waitState("config/vpp/v2/interfaces/loop2", "CONFIGURED")
			return true
		}},
		{args: []string{"config", "update", unsupported}, wantErr: "bad"},
		{args: []string{"config", "update"}, wantErr: "missing file"},
		{args: []string{"config", "update", cfgFile, "-f", cfgFile}, wantErr: "give the file once"},
		{args: []string{"import", "-f", lines}, check: func(string, string) bool { return l.exists("config/vpp/v2/interfaces/loop4") }},
		{args: []string{"import", cfgFile, "--dry-run"}, check: has("valid (dry run) 6 keys")},
		{args: []string{"import", unsupported}, wantErr: "bad"},
		{args: []string{"import"}, wantErr: "missing file"},

		{args: []string{"kvdb", "put", "vpp/v2/interfaces/loop5", `{"name":"loop5","type":"SOFTWARE_LOOPBACK"}`}, check: func(string, string) bool { return l.exists("config/vpp/v2/interfaces/loop5") }},
		{args: []string{"kvdb", "get", "vpp/v2/interfaces/loop5"}, check: has("loop5")},
		{args: []string{"kvdb", "put", "--wait", "vpp/v2/interfaces/loop6", `{"name":"loop6","type":"SOFTWARE_LOOPBACK"}`}, check: func(out, _ string) bool {
			return strings.Contains(out, "all 1 keys CONFIGURED") && l.schedState("config/vpp/v2/interfaces/loop6") == "CONFIGURED"
		}},
		{args: []string{"import", "--wait", lines}, check: has("all 1 keys CONFIGURED")},
		{args: []string{"config", "update", "--wait", cfgFile}, check: has("all 6 keys CONFIGURED")},
		{args: []string{"graph", "vpp.l2.xconnect"}, check: has("digraph", `"config/vpp/l2/v2/xconnect/memifw1" -> "config/vpp/v2/interfaces/memifw2"`, "legend")},
		{args: []string{"graph", "--format", "png"}, wantErr: "--format"},
		// watch sees the put after it.
		{args: []string{"watch", "vpp.interfaces", "--count", "1"}, check: func(string, string) bool {
			go func() {
				o, _, err := l.run("", "watch", "vpp.interfaces", "--count", "1")
				liveOut = o
				liveDone <- err
			}()
			time.Sleep(300 * time.Millisecond)
			return true
		}},
		{args: []string{"kvdb", "put", "vpp/v2/interfaces/loop7", `{"name":"loop7","type":"SOFTWARE_LOOPBACK"}`}, check: func(string, string) bool {
			if err := <-liveDone; err != nil {
				t.Errorf("watch: %v", err)
				return false
			}
			return strings.Contains(liveOut, "config/vpp/v2/interfaces/loop7")
		}},
		{args: []string{"kvdb", "list", "config/vpp/v2/interfaces/", "--keys-only"}, check: has("loop1", "loop5")},
		{args: []string{"kvdb", "del", "vpp/v2/interfaces/loop5"}, check: func(string, string) bool { return !l.exists("config/vpp/v2/interfaces/loop5") }},
		{args: []string{"kvdb", "get", "vpp/v2/interfaces/loop5"}, wantErr: "not found"},

		{args: []string{"config", "get"}, check: has("config/vpp/v2/interfaces/loop1", "vpp.interfaces")},
		{args: []string{"config", "history", "-n", "5"}, check: has("SEQ", "change")},
		{args: []string{"config", "resync"}, check: has("resync done")},
		{args: []string{"config", "retrieve"}, check: has("vppConfig:", "interfaces:", "memifw1", "bridgeDomains:", "xconnectPairs:")},

		{args: []string{"values"}, check: has("config/vpp/v2/interfaces/loop1", "CONFIGURED")},
		{args: []string{"values", "vpp.interfaces"}, check: func(out, _ string) bool {
			return strings.Contains(out, "loop1") && !strings.Contains(out, "xconnect")
		}},
		{args: []string{"values", "all"}, check: has("bridge-domain/bd1", "xconnect/memifw1")},
		{args: []string{"values", "vpp.nat.nat44-global"}, wantErr: "not supported by vppmesh"},
		{args: []string{"dump"}, check: has("memifw1", "bd1")},
		{args: []string{"dump", "all"}, check: has("memifw1", "bd1")},
		{args: []string{"dump", "vpp.interfaces"}, check: func(out, _ string) bool {
			return strings.Contains(out, "loop1") && !strings.Contains(out, "bridge-domain/")
		}},
		{args: []string{"dump", "vpp.l2.xconnect", "--view", "NB"}, check: has("xconnect/memifw1", "FROM_NB")},
		{args: []string{"dump", "vpp.l2.bridge-domain", "--view", "cached"}, check: has("bridge-domain/bd1")},
		{args: []string{"dump", "--view", "XY"}, wantErr: "--view"},
		{args: []string{"dump", "vpp.interfaces", "--origin", "SB", "-f", "json"}, check: func(out, _ string) bool {
			var d []struct{ Key, Origin string }
			return json.Unmarshal([]byte(out), &d) == nil && len(d) == 1 && d[0].Key == "config/vpp/v2/interfaces/local0" && d[0].Origin == "FROM_SB"
		}},
		{args: []string{"dump", "vpp.acls.acl"}, wantErr: "not supported by vppmesh"},
		{args: []string{"status"}, check: has("ready:          true")},
		{args: []string{"stats"}, check: has("INTERFACE", "memifw1")},
		{args: []string{"vpp", "cli", "show", "interface"}, check: has("memif1/11", "memif1/12")},
		{args: []string{"vpp", "cli", "show", "bogus"}, wantErr: "unknown input"},
		{args: []string{"vpp", "info"}, check: has("vpp v")},
		{args: []string{"log", "list"}, check: has("vppmesh-agent")},
		{args: []string{"log", "set", "vppmesh-agent", "debug"}, check: has("level debug")},
		{args: []string{"log", "set", "nope", "debug"}, wantErr: "unknown logger"},
		{args: []string{"log", "recent", "-n", "5"}, check: func(out, _ string) bool {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var rec map[string]any
			return len(lines) == 5 && json.Unmarshal([]byte(lines[4]), &rec) == nil && rec["msg"] != nil
		}},
		{args: []string{"log", "recent", "-n", "0"}, wantErr: "at least 1"},
		{args: []string{"metrics", "vppmesh_"}, check: has("vppmesh_")},
		{args: []string{"metrics", "no_such_metric_"}, wantErr: "no metric"},
		{args: []string{"report", "--dir", reportDir}, check: func(out, _ string) bool { return checkReport(t, reportDir, out) }},

		// config watch sees the delete below; config delete removes what a file names.
		{args: []string{"config", "watch", "--count", "1"}, check: func(string, string) bool {
			// Run in the background: the next step makes the change it waits for.
			go func() {
				o, _, err := l.run("", "config", "watch", "--count", "1")
				watchOut = o
				watchDone <- err
			}()
			time.Sleep(300 * time.Millisecond)
			return true
		}},
		{args: []string{"config", "delete", jsonCfg}, check: func(out, _ string) bool {
			if err := <-watchDone; err != nil {
				t.Errorf("config watch: %v", err)
				return false
			}
			return !l.exists("config/vpp/v2/interfaces/loop2") && strings.Contains(watchOut, "loop2")
		}},
		{args: []string{"config", "delete", jsonCfg}, wantErr: "none of its"},
		{args: []string{"config", "update", "--replace", cfgFile}, check: func(out, _ string) bool {
			return strings.Contains(out, "deleted") && !l.exists("config/vpp/v2/interfaces/loop4") && l.exists("config/vpp/v2/interfaces/loop1")
		}},

		// The network service mesh: a service, an endpoint under a lease,
		// a connection wired to it and brought UP, then closed.
		{args: []string{"mesh"}, wantErr: "missing command"},
		{args: []string{"mesh", "service", "wfw", "--payload", "ip", "--ip-pool", "198.51.100.0/24"}, check: func(string, string) bool {
			return strings.Contains(meshGet(models.MeshService, "wfw"), `"ip_pool":"198.51.100.0/24"`)
		}},
		{args: []string{"mesh", "services"}, check: has("wfw", "IP", "198.51.100.0/24")},
		{args: regArgs, check: func(string, string) bool {
			// Run in the background: it keeps the lease until regStop.
			go func() { regDone <- l.runCtx(regCtx, regArgs...) }()
			return eventually(func() bool { return meshGet(models.MeshEndpoint, "wep1") != "" })
		}},
		{args: []string{"mesh", "endpoints"}, check: has("wep1", "vpp1", "wfw", "color=blue", "memif "+sock("wep1"))},
		{args: []string{"mesh", "request", "wfw", "--id", "wc1", "--label", "tenant=blue", "--memif-socket", sock("wc1")}, check: func(string, string) bool {
			if !strings.Contains(meshGet(models.MeshConnection, "wc1"), `"node":"vpp1"`) {
				return false
			}
			memifPeer(t, sock("wc1"), 0)
			l.peerWhenDecided(t, "wc1", sock("wep1"))
			st := l.waitMesh("wc1", "UP", func(st *vppmeshv1.ConnectionStatus) bool { return st.GetState() == vppmeshv1.ConnectionStatus_UP })
			return st.GetEndpoint() == "wep1" && st.GetIpContext().GetClientIp() == "198.51.100.0/31"
		}},
		{args: []string{"mesh", "connections"}, check: has("wc1", "wfw", "UP", "wep1", "vpp1", "198.51.100.0/31")},
		{args: []string{"mesh", "close", "wc1"}, check: func(string, string) bool {
			// The agent removes the wiring, then the status and allocations.
			return meshGet(models.MeshConnection, "wc1") == "" && eventually(func() bool { return l.meshStatus("wc1") == nil })
		}},
		{args: []string{"mesh", "close", "wc1"}, wantErr: "no such connection"},
		{args: []string{"mesh", "endpoints", "-o", "json"}, check: func(out, _ string) bool {
			// Ending register revokes its lease: the endpoint goes at once.
			regStop()
			if err := <-regDone; err != nil {
				t.Errorf("mesh register: %v", err)
				return false
			}
			return strings.Contains(out, `"wep1"`) && meshGet(models.MeshEndpoint, "wep1") == ""
		}},
	}
	walked := map[string]bool{}
	for _, s := range steps {
		name := "agentctl " + strings.Join(s.args, " ")
		var out, errOut string
		var err error
		if (len(s.args) >= 2 && (s.args[0] == "config" && s.args[1] == "watch" || s.args[0] == "mesh" && s.args[1] == "register")) ||
			(len(s.args) > 0 && s.args[0] == "watch") {
			err = nil // started by its check
		} else {
			out, errOut, err = l.run(s.stdin, s.args...)
		}
		walked[commandPath(s.args)] = true
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Fatalf("%s: err %v, want one containing %q (stdout %q)", name, err, s.wantErr, out)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", name, err, out, errOut)
		}
		if s.check != nil && !s.check(out, errOut) {
			t.Fatalf("%s: exit 0 but the job is not done\nstdout: %s\nstderr: %s", name, out, errOut)
		}
	}
	// Every verb of the tree was walked.
	var missing []string
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c.Name() != "agentctl" {
			return
		}
		// The shells of completion are cobra's; one is walked.
		if c.Name() == "help" || strings.HasPrefix(c.CommandPath(), "agentctl completion ") {
			return
		}
		if !walked[c.CommandPath()] {
			missing = append(missing, c.CommandPath())
		}
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(NewRootCommand(nil))
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("verbs not walked: %v", missing)
	}
}

// commandPath is the cobra command path the arguments name.
func commandPath(args []string) string {
	root := NewRootCommand(nil)
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return "agentctl"
	}
	return cmd.CommandPath()
}

func checkReport(t *testing.T, dir, out string) bool {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "agentctl-report-vpp1-*.tar.gz"))
	if len(matches) != 1 || !strings.Contains(out, matches[0]) {
		t.Errorf("report files %v, output %q", matches, out)
		return false
	}
	f, err := os.Open(matches[0])
	if err != nil {
		t.Error(err)
		return false
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Error(err)
		return false
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Error(err)
			return false
		}
		b, _ := io.ReadAll(tr)
		files[strings.TrimPrefix(h.Name, "report/")] = string(b)
	}
	for _, want := range []string{"agent-version.json", "status.json", "values.json", "dump-vpp.json", "txn-history.json",
		"log-levels.json", "agent-log.json", "vpp-version.txt", "vpp-interfaces.txt", "etcd-config.json", "errors.txt"} {
		if files[want] == "" {
			t.Errorf("report lacks %s (has %d files; errors: %s)", want, len(files), files["errors.txt"])
			return false
		}
	}
	var logRecs []struct{ Msg string }
	if json.Unmarshal([]byte(files["agent-log.json"]), &logRecs) != nil || len(logRecs) == 0 || logRecs[len(logRecs)-1].Msg == "" {
		t.Errorf("report agent-log.json: %.200s", files["agent-log.json"])
		return false
	}
	if !strings.Contains(files["values.json"], "memifw1") || !strings.Contains(files["vpp-interfaces.txt"], "memif1/11") ||
		files["errors.txt"] != "no errors\n" {
		t.Errorf("report content: values %d bytes, errors %q", len(files["values.json"]), files["errors.txt"])
		return false
	}
	return true
}

// agentctl honours Ligato's etcd.conf: TLS with a client certificate.
func TestEtcdConfigTLS(t *testing.T) {
	ext := etcdtest.Start(t, etcdtest.Options{TLS: true})
	conf := filepath.Join(t.TempDir(), "etcd.conf")
	if err := os.WriteFile(conf, []byte(ext.EtcdConf()), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env map[string]string, args ...string) (string, error) {
		root := NewRootCommand(func(k string) string { return env[k] })
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"--timeout", "3s"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	if _, err := run(map[string]string{"ETCD_CONFIG": conf}, "kvdb", "put", "vpp/v2/interfaces/loop1", `{"name":"loop1","type":"SOFTWARE_LOOPBACK"}`); err != nil {
		t.Fatal(err)
	}
	out, err := run(nil, "--etcd-config", conf, "kvdb", "get", "vpp/v2/interfaces/loop1")
	if err != nil || !strings.Contains(out, "SOFTWARE_LOOPBACK") {
		t.Fatalf("get over TLS: %q %v", out, err)
	}
	// Without the file, the same endpoint refuses the plain client.
	if _, err := run(nil, "-e", ext.Endpoint, "kvdb", "get", "vpp/v2/interfaces/loop1"); err == nil {
		t.Fatal("plain client read a TLS-only etcd")
	}
	// A bad file is an error naming it.
	if _, err := run(map[string]string{"ETCD_CONFIG": conf + ".missing"}, "kvdb", "list"); err == nil || !strings.Contains(err.Error(), ".missing") {
		t.Fatalf("missing etcd.conf: %v", err)
	}
}

// agentctl honours Ligato's etcd.conf user and password.
func TestEtcdConfigUserPassword(t *testing.T) {
	ext := etcdtest.Start(t, etcdtest.Options{User: "ops", Password: "pw-123"})
	conf := filepath.Join(t.TempDir(), "etcd.conf")
	if err := os.WriteFile(conf, []byte(ext.EtcdConf()), 0o600); err != nil {
		t.Fatal(err)
	}
	root := NewRootCommand(func(k string) string { return map[string]string{"ETCD_CONFIG": conf}[k] })
	root.SetOut(io.Discard)
	root.SetArgs([]string{"kvdb", "put", "vpp/v2/interfaces/loop1", `{"name":"loop1","type":"SOFTWARE_LOOPBACK"}`})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	resp, err := ext.Client(t).Get(context.Background(), "/vnf-agent/vpp1/config/vpp/v2/interfaces/loop1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("value not in etcd: %v", err)
	}
	wrong := filepath.Join(t.TempDir(), "etcd.conf")
	os.WriteFile(wrong, []byte(strings.Replace(ext.EtcdConf(), "pw-123", "nope", 1)), 0o600)
	root = NewRootCommand(func(k string) string { return map[string]string{"ETCD_CONFIG": wrong}[k] })
	root.SetOut(io.Discard)
	root.SetArgs([]string{"--timeout", "3s", "kvdb", "list"})
	if err := root.Execute(); err == nil {
		t.Fatal("wrong password accepted")
	}
}
