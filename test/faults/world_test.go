package faults

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// agentBin is the vppmesh-agent binary: VPPMESH_AGENT_BIN, ../../bin, or
// one built for this test run.
var (
	agentBinOnce sync.Once
	agentBinPath string
	agentBinErr  error
)

func agentBin(t *testing.T) string {
	t.Helper()
	agentBinOnce.Do(func() {
		if p := os.Getenv("VPPMESH_AGENT_BIN"); p != "" {
			agentBinPath = p
			return
		}
		dir, err := os.MkdirTemp("", "faults-bin-")
		if err != nil {
			agentBinErr = err
			return
		}
		out, err := exec.Command("go", "build", "-o", dir, "github.com/vppmesh/vppmesh/cmd/vppmesh-agent").CombinedOutput()
		if err != nil {
			agentBinErr = fmt.Errorf("go build vppmesh-agent: %v: %s", err, out)
			return
		}
		agentBinPath = filepath.Join(dir, "vppmesh-agent")
	})
	if agentBinErr != nil {
		t.Fatal(agentBinErr)
	}
	return agentBinPath
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

// proc is a child process this suite started and kills at cleanup.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(logPath, bin string, args ...string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// A test binary killed by its timeout runs no cleanup: its children
	// (etcd members, the agent) must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) kill() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) term() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// etcdMember is one etcd process; kill and start keep its data and ports.
type etcdMember struct {
	name, dir    string
	client, peer int
	cluster      string
	p            *proc
}

func (m *etcdMember) endpoint() string { return fmt.Sprintf("127.0.0.1:%d", m.client) }

func (m *etcdMember) start(bin string, initialState string) error {
	args := []string{"--name", m.name, "--data-dir", filepath.Join(m.dir, "data"),
		"--listen-client-urls", "http://" + m.endpoint(), "--advertise-client-urls", "http://" + m.endpoint(),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", m.peer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", m.peer),
		"--initial-cluster", m.cluster, "--initial-cluster-state", initialState,
		"--max-txn-ops", "10000", "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "error"}
	p, err := startProc(filepath.Join(m.dir, "etcd.log"), bin, args...)
	if err != nil {
		return err
	}
	m.p = p
	return nil
}

// etcdCluster is n etcd members on loopback (Debian's etcd-server).
type etcdCluster struct {
	bin     string
	members []*etcdMember
}

func startEtcd(t *testing.T, n int) *etcdCluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd binary not installed (Debian package etcd-server; scripts/ci-deps.sh)")
	}
	c := &etcdCluster{bin: bin}
	var parts []string
	for i := 0; i < n; i++ {
		m := &etcdMember{name: fmt.Sprintf("faults%d", i), dir: t.TempDir(), client: freePort(t), peer: freePort(t)}
		parts = append(parts, fmt.Sprintf("%s=http://127.0.0.1:%d", m.name, m.peer))
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.cluster = strings.Join(parts, ",")
		if err := m.start(bin, "new"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.p.kill()
		}
	})
	return c
}

func (c *etcdCluster) endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.endpoint())
	}
	return out
}

// proxy forwards TCP from a loopback port to one of targets (the first
// that accepts); Partition cuts every connection and refuses new ones
// until healed: a network partition between the agent and etcd.
type proxy struct {
	l       net.Listener
	targets []string
	mu      sync.Mutex
	cut     bool
	conns   map[net.Conn]bool
}

func newProxy(t *testing.T, targets []string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, targets: targets, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() { l.Close(); p.partition(true) })
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) partition(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = on
	if on {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	var up net.Conn
	for _, t := range p.targets {
		var err error
		if up, err = net.DialTimeout("tcp", t, time.Second); err == nil {
			break
		}
	}
	if up == nil || !p.track(up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
	_, _ = io.Copy(c, up)
	up.Close()
	c.Close()
}

// agentProc is a vppmesh-agent process on an external etcd.
type agentProc struct {
	t    *testing.T
	bin  string
	args []string
	log  string
	http string
	p    *proc
}

// newAgent prepares the agent process; sockDir is where the suite's memif
// and vhost-user socket files live (the agent's --socket-dir policy).
func newAgent(t *testing.T, dir, vppSock, statsSock, etcd, sockDir string) *agentProc {
	a := &agentProc{t: t, bin: agentBin(t), log: filepath.Join(dir, "agent.log"),
		http: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	a.args = []string{"--vpp-socket", vppSock, "--vpp-stats-socket", statsSock, "--etcd-endpoints", etcd,
		"--http", a.http, "--label", label, "--log-level", "warn", "--socket-dir", sockDir}
	t.Cleanup(func() { a.p.term() })
	return a
}

func (a *agentProc) start() error {
	p, err := startProc(a.log, a.bin, a.args...)
	if err != nil {
		return err
	}
	a.p = p
	return nil
}

func (a *agentProc) pid() int { return a.p.cmd.Process.Pid }

var httpc = &http.Client{Timeout: 5 * time.Second}

func (a *agentProc) ready() bool {
	resp, err := httpc.Get("http://" + a.http + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// usage is what must come back to its baseline after a fault.
type usage struct {
	goroutines, fds int
	rssKiB          int
}

func (a *agentProc) usage(ctx context.Context) (usage, error) {
	var u usage
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.http+"/metrics", nil)
	resp, err := httpc.Do(req)
	if err != nil {
		return u, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			u.goroutines = int(f)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.pid()))
	if err != nil {
		return u, err
	}
	u.fds = len(fds)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.pid()))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			u.rssKiB, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return u, nil
}

// within reports whether u is back near base: leaks grow without bound,
// while a busy agent's numbers wobble.
func (u usage) within(base usage) error {
	switch {
	case u.goroutines > base.goroutines+max(30, base.goroutines/5):
		return fmt.Errorf("goroutines %d, baseline %d", u.goroutines, base.goroutines)
	case u.fds > base.fds+20:
		return fmt.Errorf("fds %d, baseline %d", u.fds, base.fds)
	case u.rssKiB > base.rssKiB*2+64*1024:
		return fmt.Errorf("RSS %d KiB, baseline %d KiB", u.rssKiB, base.rssKiB)
	}
	return nil
}
