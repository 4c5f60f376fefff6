package agentctl

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// runTo runs agentctl with stdout on out (a pty in the terminal test).
func (l *liveAgent) runTo(out io.Writer, args ...string) (string, error) {
	root := NewRootCommand(func(k string) string { return l.env[k] })
	var errb bytes.Buffer
	root.SetOut(out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"--timeout", "10s"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return errb.String(), err
}

func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

const loopJSON = `{"name":"%s","type":"SOFTWARE_LOOPBACK","enabled":true}`

func xcLines(rx, tx string) string {
	return fmt.Sprintf("config/vpp/l2/v2/xconnect/%[1]s {\"receive_interface\":\"%[1]s\",\"transmit_interface\":\"%[2]s\"}\n", rx, tx)
}

// openPty returns a pty's master and slave ends.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// --wait, watch, graph and completion against one running agent.
func TestPeopleVerbs(t *testing.T) {
	l := startLiveAgent(t)

	t.Run("put-wait-configured", func(t *testing.T) {
		out, errOut, err := l.run("", "kvdb", "put", "--wait", "vpp/v2/interfaces/wl1", fmt.Sprintf(loopJSON, "wl1"))
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") || l.schedState("config/vpp/v2/interfaces/wl1") != "CONFIGURED" {
			t.Fatalf("put --wait: %v\n%s%s", err, out, errOut)
		}
		// The same value again changes nothing in the agent: its status answers at once.
		start := time.Now()
		out, _, err = l.run("", "kvdb", "put", "--wait", "vpp/v2/interfaces/wl1", fmt.Sprintf(loopJSON, "wl1"))
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") || time.Since(start) > 5*time.Second {
			t.Fatalf("unchanged put --wait: %v %s", err, out)
		}
		// The same value in another spelling (etcdctl's) is no change either.
		if _, err := l.etcd.Put(context.Background(), "/vnf-agent/vpp1/config/vpp/v2/interfaces/wl2", `{ "type": "SOFTWARE_LOOPBACK", "name": "wl2", "enabled": true }`); err != nil {
			t.Fatal(err)
		}
		l.waitState("config/vpp/v2/interfaces/wl2", "CONFIGURED")
		start = time.Now()
		out, _, err = l.run("", "kvdb", "put", "--wait", "--timeout", "3s", "vpp/v2/interfaces/wl2", fmt.Sprintf(loopJSON, "wl2"))
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") || time.Since(start) > 2*time.Second {
			t.Fatalf("respelled put --wait: %v %s", err, out)
		}
		// --force with a value that parses but adds nothing the agent sees
		// as new: no new status document; the scheduler answers.
		out, _, err = l.run("", "kvdb", "put", "--wait", "--force", "--timeout", "5s", "vpp/v2/interfaces/wl2", `{"name":"wl2","enabled":true,"type":"SOFTWARE_LOOPBACK"}`)
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") {
			t.Fatalf("forced respelled put --wait: %v %s", err, out)
		}
		// -o json: the put's document only, no progress or summary.
		out, _, err = l.run("", "-o", "json", "kvdb", "put", "--wait", "vpp/v2/interfaces/wl1", fmt.Sprintf(loopJSON, "wl1"))
		if err != nil || strings.Contains(out, "CONFIGURED") || !strings.HasPrefix(strings.TrimSpace(out), "{") || !strings.HasSuffix(strings.TrimSpace(out), "}") {
			t.Fatalf("-o json put --wait: %v %q", err, out)
		}
	})

	t.Run("put-wait-invalid", func(t *testing.T) {
		// The agent's interface descriptor refuses the address: INVALID, exit 1, named.
		_, _, err := l.run("", "kvdb", "put", "--wait", "vpp/v2/interfaces/wbad", `{"name":"wbad","type":"SOFTWARE_LOOPBACK","ip_addresses":["not-an-ip"]}`)
		if exitCode(err) != ExitFailed || !strings.Contains(err.Error(), "config/vpp/v2/interfaces/wbad: INVALID") || !strings.Contains(err.Error(), "not-an-ip") {
			t.Fatalf("invalid value: exit %d, %v", exitCode(err), err)
		}
		_, _, err = l.run("", "kvdb", "put", "--wait", "/elsewhere/x", "1", "--force")
		if err == nil || !strings.Contains(err.Error(), "not a config key") {
			t.Fatalf("non-config key: %v", err)
		}
	})

	// The hook mesh request uses: a key with its own status key and the
	// mesh's states (UP done, FAILED refused). The keys lie outside the
	// mesh's root, so that the agent's mesh controller does not answer for
	// them (mesh request --wait against the real mesh: TestMeshRequestWait).
	t.Run("wait-custom-status-key", func(t *testing.T) {
		var out bytes.Buffer
		c := &cli{endpoints: []string{l.env["ETCD_ENDPOINTS"]}, label: "vpp1", output: "table", timeout: 10 * time.Second, out: &out, errOut: io.Discard}
		defer c.close()
		ctx := context.Background()
		for _, tc := range []struct{ id, final, want string }{{"c1", "UP", ""}, {"c2", "FAILED", "c2: FAILED: no endpoint"}} {
			resp, err := l.etcd.Put(ctx, "/agentctl-test/connection/"+tc.id, "{}")
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				time.Sleep(200 * time.Millisecond)
				l.etcd.Put(ctx, "/agentctl-test/status/connection/"+tc.id, `{"state":"PENDING","error":"wiring in VPP"}`)
				time.Sleep(200 * time.Millisecond)
				l.etcd.Put(ctx, "/agentctl-test/status/connection/"+tc.id, `{"state":"`+tc.final+`","error":"no endpoint"}`)
			}()
			err = c.waitWritten(ctx, []Written{{Key: "/agentctl-test/connection/" + tc.id, Revision: resp.Header.Revision, Changed: true,
				StatusKey: "/agentctl-test/status/connection/" + tc.id}})
			if tc.want == "" && (err != nil || !strings.Contains(out.String(), "all 1 keys")) {
				t.Fatalf("%s: %v %s", tc.id, err, out.String())
			}
			if tc.want != "" && (exitCode(err) != ExitFailed || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("%s: exit %d %v", tc.id, exitCode(err), err)
			}
		}
	})

	// A status document rewritten with the old state (a counters refresh)
	// before the agent read the change must not end the wait: the
	// scheduler's history and states decide.
	t.Run("wait-confirms-by-rest", func(t *testing.T) {
		port, _ := strconv.Atoi(l.env["AGENT_HTTP_PORT"])
		c := &cli{endpoints: []string{l.env["ETCD_ENDPOINTS"]}, label: "vpp1", output: "table", timeout: 10 * time.Second,
			host: "127.0.0.1", httpPort: port, out: io.Discard, errOut: io.Discard}
		defer c.close()
		full := "/vnf-agent/vpp1/config/vpp/v2/interfaces/wc1"
		resp, err := l.etcd.Put(context.Background(), full, `{"name":"wc1","type":"SOFTWARE_LOOPBACK","ip_addresses":["bad"]}`)
		if err != nil {
			t.Fatal(err)
		}
		l.waitState("config/vpp/v2/interfaces/wc1", "INVALID")
		stale := func(rev int64) map[string]*waitItem {
			return map[string]*waitItem{"s": {Written: Written{Key: full, Revision: rev, Changed: true}, seen: true, st: keyStatus{State: "CONFIGURED"}}}
		}
		items := stale(resp.Header.Revision + 1000) // a write the agent has not applied yet
		if ok, err := c.confirmByREST(context.Background(), items); ok || err != nil {
			t.Fatalf("confirmed a write beyond the scheduler's history: %v %v", ok, err)
		}
		items = stale(resp.Header.Revision)
		if ok, err := c.confirmByREST(context.Background(), items); !ok || err != nil || items["s"].state() != "INVALID" || !strings.Contains(items["s"].errMsg(), "bad") {
			t.Fatalf("confirm: %v %v, state %s %q", ok, err, items["s"].state(), items["s"].errMsg())
		}
		// A change that got no status document of its own (the scheduler
		// found nothing to do) is settled by the scheduler's state.
		items = stale(resp.Header.Revision)
		items["s"].seen, items["s"].st = false, keyStatus{}
		if !unreported([]*waitItem{items["s"]}) {
			t.Fatal("an unreported change is not asked about")
		}
		if ok, err := c.confirmByREST(context.Background(), items); !ok || err != nil || items["s"].state() != "INVALID" {
			t.Fatalf("confirm unreported: %v %v, state %s", ok, err, items["s"].state())
		}
	})

	t.Run("import-wait-timeout", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "xc.txt")
		os.WriteFile(f, []byte(xcLines("wt1", "wt2")+"config/vpp/v2/interfaces/wt1 "+fmt.Sprintf(loopJSON, "wt1")+"\n"), 0o600)
		start := time.Now()
		_, _, err := l.run("", "import", "--wait", "--timeout", "1500ms", f)
		if exitCode(err) != ExitTimeout || !strings.Contains(err.Error(), "config/vpp/l2/v2/xconnect/wt1: PENDING, waits on config/vpp/v2/interfaces/wt2") ||
			strings.Contains(err.Error(), "interfaces/wt1:") {
			t.Fatalf("pending import: exit %d, %v", exitCode(err), err)
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Fatalf("returned after %s, before --timeout", d)
		}
	})

	t.Run("config-update-wait-progress-pty", func(t *testing.T) {
		master, slave := openPty(t)
		var mu sync.Mutex
		var screen bytes.Buffer
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				mu.Lock()
				screen.Write(buf[:n])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		f := filepath.Join(t.TempDir(), "cfg.yaml")
		os.WriteFile(f, []byte("vppConfig:\n  xconnectPairs:\n    - {receiveInterface: wp1, transmitInterface: wp2}\n    - {receiveInterface: wp2, transmitInterface: wp1}\n"+
			"  interfaces:\n    - {name: wp1, type: SOFTWARE_LOOPBACK, enabled: true}\n"), 0o600)
		// wp2 arrives 1.5 s later: until then the xconnects wait on it.
		go func() {
			time.Sleep(1500 * time.Millisecond)
			l.etcd.Put(context.Background(), "/vnf-agent/vpp1/config/vpp/v2/interfaces/wp2", fmt.Sprintf(loopJSON, "wp2"))
		}()
		errOut, err := l.runTo(slave, "config", "update", "--wait", f)
		if err != nil {
			t.Fatalf("config update --wait: %v %s", err, errOut)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		got := screen.String()
		mu.Unlock()
		// The progress line was drawn in place (carriage return, erase line)
		// with the counts by state, and cleared before the summary.
		if !strings.Contains(got, "\r\x1b[Kwait: 1/3 (1 CONFIGURED, 2 PENDING)") || !strings.Contains(got, "ETA") ||
			!strings.Contains(got, "all 3 keys CONFIGURED") {
			t.Fatalf("terminal output: %q", got)
		}
		// Not a terminal: plain lines, no carriage returns.
		var plain bytes.Buffer
		go func() {
			time.Sleep(1500 * time.Millisecond)
			l.etcd.Put(context.Background(), "/vnf-agent/vpp1/config/vpp/v2/interfaces/wq2", fmt.Sprintf(loopJSON, "wq2"))
		}()
		os.WriteFile(f, []byte(xcLines("wq1", "wq2")+"config/vpp/v2/interfaces/wq1 "+fmt.Sprintf(loopJSON, "wq1")+"\n"), 0o600)
		if _, err := l.runTo(&plain, "import", "--wait", f); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(plain.String(), "\r") || !strings.Contains(plain.String(), "wait: 1/2 (1 CONFIGURED, 1 PENDING)") {
			t.Fatalf("plain output: %q", plain.String())
		}
	})
}

// schedState is the scheduler's state of a key, from the REST API (the etcd
// status key may be written a moment later).
func (l *liveAgent) schedState(key string) string {
	resp, err := http.Get("http://" + l.a.HTTPAddr() + "/values?key=" + key)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct{ State string }
	json.NewDecoder(resp.Body).Decode(&v)
	return v.State
}

// runRaw runs agentctl with exactly args (completion wants __complete first).
func (l *liveAgent) runRaw(args ...string) (string, error) {
	root := NewRootCommand(func(k string) string { return l.env[k] })
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// svgTitles returns the titles of Graphviz's node and edge groups.
func svgTitles(t *testing.T, svg string) (nodes, edges map[string]bool) {
	t.Helper()
	var doc struct {
		Groups []struct {
			Class string `xml:"class,attr"`
			Title string `xml:"title"`
		} `xml:"g>g"`
	}
	dec := xml.NewDecoder(strings.NewReader(svg))
	dec.Strict = false
	dec.Entity = xml.HTMLEntity
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("svg: %v\n%.300s", err, svg)
	}
	nodes, edges = map[string]bool{}, map[string]bool{}
	for _, g := range doc.Groups {
		switch g.Class {
		case "node":
			nodes[g.Title] = true
		case "edge":
			edges[g.Title] = true
		}
	}
	return nodes, edges
}

func TestPeopleWatchGraphCompletion(t *testing.T) {
	l := startLiveAgent(t)
	put := func(key, val string) {
		if _, err := l.etcd.Put(context.Background(), "/vnf-agent/vpp1/"+key, val); err != nil {
			t.Fatal(err)
		}
	}
	// A cross-connect waiting on its second interface.
	put("config/vpp/v2/interfaces/ga", fmt.Sprintf(loopJSON, "ga"))
	put("config/vpp/l2/v2/xconnect/ga", `{"receive_interface":"ga","transmit_interface":"gb"}`)
	l.waitState("config/vpp/l2/v2/xconnect/ga", "PENDING")
	l.waitState("config/vpp/v2/interfaces/ga", "CONFIGURED")

	t.Run("watch-lines", func(t *testing.T) {
		type res struct {
			out string
			err error
		}
		done := make(chan res, 1)
		go func() {
			out, _, err := l.run("", "watch", "vpp.interfaces", "--count", "2")
			done <- res{out, err}
		}()
		time.Sleep(500 * time.Millisecond)
		put("config/vpp/l2/v2/bridge-domain/gw", `{"name":"gw"}`) // not an interface: not shown
		put("config/vpp/v2/interfaces/gw1", fmt.Sprintf(loopJSON, "gw1"))
		l.waitState("config/vpp/v2/interfaces/gw1", "CONFIGURED")
		l.etcd.Delete(context.Background(), "/vnf-agent/vpp1/config/vpp/v2/interfaces/gw1")
		var r res
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("watch --count 2 did not end")
		}
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if r.err != nil || len(lines) != 2 || !strings.Contains(lines[0], "NEW") || !strings.Contains(lines[0], "CONFIGURED  config/vpp/v2/interfaces/gw1") ||
			!strings.Contains(lines[1], "CONFIGURED  -> GONE") || strings.Contains(r.out, "bridge-domain") {
			t.Fatalf("watch: %v\n%s", r.err, r.out)
		}
	})

	t.Run("watch-json", func(t *testing.T) {
		done := make(chan string, 1)
		go func() {
			out, _, _ := l.run("", "-o", "json", "watch", "--count", "1")
			done <- out
		}()
		time.Sleep(500 * time.Millisecond)
		put("config/vpp/v2/interfaces/gj", `{"name":"gj","type":"SOFTWARE_LOOPBACK","ip_addresses":["bad"]}`)
		out := <-done
		var ev WatchEvent
		if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Key != "config/vpp/v2/interfaces/gj" || ev.State != "INVALID" || ev.Error == "" || ev.From != "" {
			t.Fatalf("watch -o json: %v %q", err, out)
		}
	})

	// Derived values are reported in their parent's document: a model
	// prefix still shows them.
	t.Run("watch-derived", func(t *testing.T) {
		done := make(chan string, 1)
		go func() {
			out, _, _ := l.run("", "-o", "json", "watch", "config/vpp/v2/interfaces/gx-a", "--count", "1")
			done <- out
		}()
		time.Sleep(500 * time.Millisecond)
		put("config/vppmesh/v1/xconnect/gx", fmt.Sprintf(`{"name":"gx","a":{"memif":{"master":true,"id":31,"socket_filename":"%[1]s/gx.sock"}},"b":{"memif":{"master":true,"id":32,"socket_filename":"%[1]s/gx.sock"}}}`, l.dir))
		var out string
		select {
		case out = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("watch of a derived value saw nothing")
		}
		var ev WatchEvent
		if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Key != "config/vpp/v2/interfaces/gx-a" || ev.Parent != "config/vppmesh/v1/xconnect/gx" {
			t.Fatalf("derived watch: %v %q", err, out)
		}
	})

	t.Run("watch-terminal", func(t *testing.T) {
		master, slave := openPty(t)
		var mu sync.Mutex
		var screen bytes.Buffer
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				mu.Lock()
				screen.Write(buf[:n])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		done := make(chan error, 1)
		go func() {
			_, err := l.runTo(slave, "watch", "--count", "1")
			done <- err
		}()
		time.Sleep(500 * time.Millisecond)
		put("config/vpp/v2/interfaces/gt", fmt.Sprintf(loopJSON, "gt"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		got := screen.String()
		mu.Unlock()
		// Redrawn screens: counts, the PENDING cross-connect with what it
		// waits on, and the change in the last lines.
		if strings.Count(got, "\x1b[H\x1b[2J") < 2 || !strings.Contains(got, "PENDING     config/vpp/l2/v2/xconnect/ga  waits on config/vpp/v2/interfaces/gb") ||
			!strings.Contains(got, "last changes:") || !strings.Contains(got, "-> CONFIGURED  config/vpp/v2/interfaces/gt") {
			t.Fatalf("terminal watch: %q", got)
		}
	})

	t.Run("graph", func(t *testing.T) {
		out, _, err := l.run("", "graph", "config/vpp/l2/v2/xconnect/ga")
		if err != nil || !strings.HasPrefix(out, "digraph") ||
			!strings.Contains(out, `"config/vpp/l2/v2/xconnect/ga" -> "config/vpp/v2/interfaces/gb" [label="waits on: `) ||
			!strings.Contains(out, `"config/vpp/l2/v2/xconnect/ga" -> "config/vpp/v2/interfaces/ga" [label=`) {
			t.Fatalf("graph dot: %v\n%s", err, out)
		}
		out, _, err = l.run("", "-o", "json", "graph", "vpp.interfaces")
		var g struct {
			Nodes []struct {
				Key, State string
				Context    bool
			}
		}
		if err != nil || json.Unmarshal([]byte(out), &g) != nil || len(g.Nodes) == 0 {
			t.Fatalf("graph json: %v %s", err, out)
		}
		for _, n := range g.Nodes {
			// Anything else is context: the parent of a derived interface.
			if !strings.HasPrefix(n.Key, "config/vpp/v2/interfaces/") && !n.Context {
				t.Fatalf("graph vpp.interfaces has %s, not as context", n.Key)
			}
		}
		if _, _, err := l.run("", "graph", "config/nothing/here"); err == nil || !strings.Contains(err.Error(), "no value matching") {
			t.Fatalf("empty graph: %v", err)
		}
		if !restapi.HaveGraphviz() {
			t.Skip("Graphviz dot not installed")
		}
		file := filepath.Join(t.TempDir(), "xc.svg")
		if _, _, err := l.run("", "graph", "vpp.l2.xconnect", "--format", "svg", "--out", file); err != nil {
			t.Fatal(err)
		}
		svg, _ := os.ReadFile(file)
		nodes, edges := svgTitles(t, string(svg))
		for _, n := range []string{"config/vpp/l2/v2/xconnect/ga", "config/vpp/v2/interfaces/ga", "config/vpp/v2/interfaces/gb"} {
			if !nodes[n] {
				t.Errorf("svg lacks node %s (has %v)", n, nodes)
			}
		}
		for _, e := range []string{"config/vpp/l2/v2/xconnect/ga->config/vpp/v2/interfaces/ga", "config/vpp/l2/v2/xconnect/ga->config/vpp/v2/interfaces/gb"} {
			if !edges[e] {
				t.Errorf("svg lacks edge %s (has %v)", e, edges)
			}
		}
		// The agent's own endpoint answers SVG by default.
		resp, err := http.Get("http://" + l.a.HTTPAddr() + restapi.PathGraph + "?key=config/vpp/l2/v2/xconnect/ga")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(body), "xconnect/ga") {
			t.Fatalf("GET %s: %d %s", restapi.PathGraph, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})

	t.Run("completion", func(t *testing.T) {
		env := []string{"-e", l.env["ETCD_ENDPOINTS"], "--http-port", l.env["AGENT_HTTP_PORT"]}
		out, err := l.runRaw(append([]string{"__complete"}, append(env, "kvdb", "get", "config/vpp/v2/interfaces/g")...)...)
		if err != nil || !strings.Contains(out, "config/vpp/v2/interfaces/ga\n") || !strings.Contains(out, "config/vpp/v2/interfaces/gt\n") || strings.Contains(out, "xconnect") {
			t.Fatalf("kvdb get completion: %v\n%s", err, out)
		}
		out, _ = l.runRaw(append([]string{"__complete"}, append(env, "kvdb", "get", "vpp/v2/interfaces/g")...)...)
		if !strings.Contains(out, "vpp/v2/interfaces/ga\n") {
			t.Fatalf("model path completion:\n%s", out)
		}
		out, _ = l.runRaw(append([]string{"__complete"}, append(env, "graph", "config/vpp/l2/")...)...)
		if !strings.Contains(out, "config/vpp/l2/v2/xconnect/ga\n") || !strings.Contains(out, "config/vpp/l2/v2/bridge-domain/gw\n") {
			t.Fatalf("graph completion:\n%s", out)
		}
		out, _ = l.runRaw(append([]string{"__complete"}, append(env, "values", "vpp.l2")...)...)
		if !strings.Contains(out, "vpp.l2.xconnect\n") || !strings.Contains(out, "vpp.l2.bridge-domain\n") || strings.Contains(out, "vpp.interfaces") {
			t.Fatalf("model completion:\n%s", out)
		}
		for _, sh := range []string{"bash", "zsh", "fish"} {
			out, err := stdoutOf(t, func() error { _, err := l.runRaw("completion", sh); return err })
			if err != nil || !strings.Contains(out, "agentctl") || !strings.Contains(out, "__complete") {
				t.Fatalf("completion %s: %v %.200s", sh, err, out)
			}
		}
	})
}

// stdoutOf captures os.Stdout during f: cobra's completion scripts go to the
// stdout of the moment the command tree was built.
func stdoutOf(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	ferr := f()
	os.Stdout = old
	w.Close()
	return <-got, ferr
}
