package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/plugins/vpp/ifstats"
	"github.com/vppmesh/vppmesh/test/lab"
	"github.com/vppmesh/vppmesh/test/vpptarget"
)

const label = "e2e"

// env is one lab: a VPP (vppsim or FD.io VPP, see vpptarget) and the agent
// (embedded etcd) in the host namespace, as on a node; CNFs and testpmd get
// namespaces of their own.
type env struct {
	t     *testing.T
	ctx   context.Context
	lab   *lab.Lab
	vpp   *vpptarget.Target
	agent *lab.Proc
	// agentSpec starts the agent again (restart tests).
	agentSpec lab.ProcSpec
	memif     string // the memif socket every test's interfaces share
	etcdAddr  string
	httpPort  int
	// benchmark runs testpmd at normal priority (tests lower it; see startTestpmd).
	benchmark bool

	// agentLabel is this env's agent label when not the package's label
	// (two agents share one etcd in the multi-node lab).
	agentLabel string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// forEach runs body once per VPP implementation (VPP_IMPL; see vpptarget),
// each in a lab of its own.
func forEach(t *testing.T, body func(t *testing.T, e *env)) {
	vpptarget.ForEach(t, vpptarget.Options{SimBinary: bin("vppsim")},
		func(t *testing.T, tg *vpptarget.Target) { body(t, newEnv(t, tg)) })
}

func newEnv(t *testing.T, tg *vpptarget.Target) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := lab.New(ctx, lab.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, lab: l, vpp: tg, memif: l.Path("memif.sock")}
	t.Cleanup(func() {
		if t.Failed() {
			var sb strings.Builder
			l.LogTails(&sb, 20000)
			t.Logf("process logs:\n%s\n--- %s\n%s", sb.String(), tg.Name(), tg.LogTail(60))
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	if ok, why := l.Netns(); !ok {
		t.Logf("NOTE: %s", why)
	}
	api, stats := tg.APISocket, tg.StatsSocket
	// freePort hands out ports that were free a moment ago; another process
	// can take one before the agent binds it. Such an agent exits at once
	// with "address already in use": start it again on new ports.
	for attempt := 1; ; attempt++ {
		e.etcdAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		e.httpPort = freePort(t)
		e.agentSpec = lab.ProcSpec{Name: "agent", Path: bin("vppmesh-agent"), Args: []string{
			"--label", label, "--vpp-socket", api, "--vpp-stats-socket", stats,
			"--data-dir", l.Path("etcd"), "--etcd-endpoints", "",
			"--etcd-listen", "http://" + e.etcdAddr, "--etcd-peer", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			"--http", fmt.Sprintf("127.0.0.1:%d", e.httpPort), "--socket-dir", l.Dir(),
			"--stats-interval", "200ms", "--counters-publish-interval", "300ms", "--log-level", "info",
		}}
		if e.agent, err = l.Start(ctx, e.agentSpec); err != nil {
			t.Fatal(err)
		}
		if e.waitReady(30 * time.Second) {
			break
		}
		if attempt == 3 {
			t.Fatalf("agent: its ports were taken on 3 starts in a row:\n%s", e.agent.Stderr())
		}
		t.Logf("agent start %d: a port was taken meanwhile; trying new ports", attempt)
	}
	return e
}

// waitReady waits until the agent reports ready. It returns false only when
// the agent exited because a port it was given was taken meanwhile (the
// caller starts it again); any other failure fails the test.
func (e *env) waitReady(timeout time.Duration) bool {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var st struct{ Ready bool }
		err := e.ctlJSON(&st, "status")
		if err == nil && st.Ready {
			return true
		}
		if err == nil {
			err = fmt.Errorf("not ready")
		}
		if e.agent.Exited() {
			if strings.Contains(e.agent.Stderr()+e.agent.Stdout(), "address already in use") {
				return false
			}
			e.t.Fatalf("agent ready: agent exited: %v\n%s", e.agent.ExitErr(), e.agent.Stderr())
		}
		if e.vpp != nil && e.vpp.Exited() {
			e.t.Fatalf("agent ready: %s exited:\n%s", e.vpp.Name(), e.vpp.LogTail(30))
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agent ready: still not after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually polls f until it succeeds; after timeout the test fails with f's
// last error. Timeouts bound waiting for a condition; they never measure speed.
func (e *env) eventually(what string, timeout time.Duration, f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: still not after %v: %v", what, timeout, err)
		}
		if e.agent != nil && e.agent.Exited() {
			e.t.Fatalf("%s: %s exited: %v", what, e.agent.Name, e.agent.ExitErr())
		}
		if e.vpp != nil && e.vpp.Exited() {
			e.t.Fatalf("%s: %s exited:\n%s", what, e.vpp.Name(), e.vpp.LogTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) waitFile(path string, timeout time.Duration) {
	e.t.Helper()
	e.eventually("file "+path, timeout, func() error {
		_, err := os.Stat(path)
		return err
	})
}

// ctl runs agentctl against this lab's agent.
func (e *env) ctl(args ...string) (string, error) {
	lbl := label
	if e.agentLabel != "" {
		lbl = e.agentLabel
	}
	base := []string{"-e", e.etcdAddr, "--service-label", lbl, "-H", "127.0.0.1",
		"--http-port", strconv.Itoa(e.httpPort), "--timeout", "10s"}
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin("agentctl"), append(base, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("agentctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (e *env) ctlJSON(v any, args ...string) error {
	out, err := e.ctl(append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("agentctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (e *env) put(key string, value any) {
	e.t.Helper()
	b, err := json.Marshal(value)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.ctl("kvdb", "put", key, string(b)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) del(key string) {
	e.t.Helper()
	if _, err := e.ctl("kvdb", "del", key); err != nil {
		e.t.Fatal(err)
	}
}

// get reads a key under the agent's root from etcd into v; false when absent.
func (e *env) get(key string, v any) (bool, error) {
	out, err := e.ctl("kvdb", "get", key)
	if err != nil {
		if strings.Contains(strings.ToLower(out), "not found") {
			return false, nil
		}
		return false, err
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return false, nil
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return false, fmt.Errorf("kvdb get %s: %w: %s", key, err, out)
	}
	return true, nil
}

type valueStatus struct {
	Key   string `json:"key"`
	State string `json:"state"`
	Error string `json:"error"`
}

func (e *env) values() ([]valueStatus, error) {
	var vs []valueStatus
	return vs, e.ctlJSON(&vs, "values")
}

// waitState waits until the agent reports key (under config/) in state.
func (e *env) waitState(key, state string) {
	e.t.Helper()
	e.eventually(key+" "+state, 20*time.Second, func() error {
		vs, err := e.values()
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.Key == key {
				if v.State == state {
					return nil
				}
				return fmt.Errorf("state %s %s", v.State, v.Error)
			}
		}
		return fmt.Errorf("no value")
	})
}

// waitGone waits until the agent no longer has key.
func (e *env) waitGone(key string) {
	e.t.Helper()
	e.eventually(key+" gone", 20*time.Second, func() error {
		vs, err := e.values()
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.Key == key && v.State != "REMOVED" && v.State != "NONEXISTENT" {
				return fmt.Errorf("state %s", v.State)
			}
		}
		return nil
	})
}

// operStatus is the interface's oper state in etcd (Ligato's status key,
// protobuf JSON: either field-name style is accepted).
func (e *env) operStatus(name string) (string, error) {
	var st map[string]any
	ok, err := e.get("vpp/status/v2/interface/"+name, &st)
	if err != nil || !ok {
		return "", err
	}
	for _, k := range []string{"oper_status", "operStatus"} {
		if s, ok := st[k].(string); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("no oper status in %v", st)
}

func (e *env) waitOper(name, want string) {
	e.t.Helper()
	e.eventually("interface "+name+" oper "+want, 20*time.Second, func() error {
		got, err := e.operStatus(name)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("oper status %q", got)
		}
		return nil
	})
}

// counters is the agent's counter report (agentctl stats, REST /vpp/counters).
func (e *env) counters() (ifstats.Report, error) {
	var r ifstats.Report
	return r, e.ctlJSON(&r, "stats")
}

// xcStatusCounters reads the counters field of a cross-connect's etcd status.
func (e *env) xcStatusCounters(name string) (ifstats.CrossConnectCounters, error) {
	var st struct {
		State    string                        `json:"state"`
		Counters *ifstats.CrossConnectCounters `json:"counters"`
	}
	ok, err := e.get("status/vppmesh/v1/xconnect/"+name, &st)
	if err != nil {
		return ifstats.CrossConnectCounters{}, err
	}
	if !ok || st.Counters == nil {
		return ifstats.CrossConnectCounters{}, fmt.Errorf("no counters in the status of %s (state %q)", name, st.State)
	}
	return *st.Counters, nil
}

// ns adds a namespace for one CNF.
func (e *env) ns(label string) *lab.Namespace {
	e.t.Helper()
	ns, err := e.lab.AddNamespace(e.ctx, label)
	if err != nil {
		e.t.Fatal(err)
	}
	return ns
}

// showInterfaces is VPP's `show interface` (counters and drop reasons),
// printed when counts disagree.
func (e *env) showInterfaces() string {
	out, err := e.ctl("vpp", "cli", "show", "interface")
	if err != nil {
		return err.Error()
	}
	return out
}
