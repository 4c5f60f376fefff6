package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// freePort asks the kernel for a free TCP port on loopback. Fixed ports would
// collide with teammates' agents on a shared machine.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a child process the benchmark started and must stop.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func startProc(name, logPath string, bin string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits; a process that ignores it for 20 s is killed.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Sim is a vppsim process with its control endpoint.
type Sim struct {
	proc   *proc
	Socket string
	ctl    *http.Client
}

// StartSim runs bin/vppsim on dir/api.sock with a control socket.
func StartSim(ctx context.Context, bin, dir string) (*Sim, error) {
	sock, ctlSock := filepath.Join(dir, "api.sock"), filepath.Join(dir, "ctl.sock")
	p, err := startProc("vppsim", filepath.Join(dir, "vppsim.log"), bin,
		"--socket", sock, "--control", "unix:"+ctlSock, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	s := &Sim{proc: p, Socket: sock, ctl: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ctlSock)
		}}}}
	if err := waitFor(ctx, "vppsim control", 10*time.Second, func() bool {
		_, err := s.Calls(ctx)
		return err == nil
	}); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop ends the vppsim process.
func (s *Sim) Stop() { s.proc.stop() }

func (s *Sim) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://vppsim"+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.ctl.Do(req)
	if err != nil {
		return fmt.Errorf("vppsim control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("vppsim control %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Calls returns vppsim's per-message call counts.
func (s *Sim) Calls(ctx context.Context) (map[string]uint64, error) {
	var m map[string]uint64
	return m, s.do(ctx, http.MethodGet, "/calls", &m)
}

// ResetCalls zeroes the call counts.
func (s *Sim) ResetCalls(ctx context.Context) error {
	return s.do(ctx, http.MethodPost, "/calls/reset", nil)
}

// Restart makes vppsim lose everything, like a VPP crash and restart.
func (s *Sim) Restart(ctx context.Context) error { return s.do(ctx, http.MethodPost, "/restart", nil) }

// Agent is a vppmesh-agent process with its embedded etcd.
type Agent struct {
	proc       *proc
	bin        string
	args       []string
	logPath    string
	HTTP       string // host:port of REST and metrics
	Etcd       string // host:port of the embedded etcd
	httpClient *http.Client
}

// NewAgent prepares (does not start) an agent on VPP socket vppSock with its
// data in dir and free ports; extra flags are appended.
func NewAgent(bin, dir, vppSock string, extra ...string) (*Agent, error) {
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	a := &Agent{bin: bin, logPath: filepath.Join(dir, "agent.log"),
		HTTP: fmt.Sprintf("127.0.0.1:%d", ports[0]), Etcd: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		httpClient: &http.Client{Timeout: 30 * time.Second}}
	a.args = []string{"--vpp-socket", vppSock, "--data-dir", filepath.Join(dir, "etcd"), "--socket-dir", dir,
		"--etcd-listen", "http://" + a.Etcd, "--etcd-peer", fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		"--http", a.HTTP, "--log-level", "warn", "--label", Label, "--etcd-endpoints", ""}
	a.args = append(a.args, extra...)
	return a, nil
}

// Start runs the agent process (appending to its log).
func (a *Agent) Start() error {
	lf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("agent log: %w", err)
	}
	lf.Close()
	p, err := startProc("vppmesh-agent", a.logPath+".tmp", a.bin, a.args...)
	if err != nil {
		return err
	}
	a.proc = p
	return nil
}

// Stop terminates the agent and appends this run's log to the agent log.
func (a *Agent) Stop() {
	if a.proc == nil {
		return
	}
	a.proc.stop()
	a.proc = nil
	if b, err := os.ReadFile(a.logPath + ".tmp"); err == nil {
		if f, err := os.OpenFile(a.logPath, os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			_, _ = f.Write(b)
			f.Close()
		}
	}
}

// Pid is the agent's process id.
func (a *Agent) Pid() int { return a.proc.pid() }

// Ready reports /readyz; an agent process that died is an error.
func (a *Agent) Ready(ctx context.Context) (bool, error) {
	if a.proc.exited() {
		return false, fmt.Errorf("agent exited; see %s", a.logPath)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HTTP+"/readyz", nil)
	if err != nil {
		return false, err
	}
	resp, err := a.httpClient.Do(req)
	if err != nil {
		return false, nil
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// WaitReady polls /readyz until it answers 200.
func (a *Agent) WaitReady(ctx context.Context, timeout time.Duration) error {
	var perr error
	err := waitFor(ctx, "agent ready", timeout, func() bool {
		ok, err := a.Ready(ctx)
		perr = err
		return ok || err != nil
	})
	if perr != nil {
		return perr
	}
	return err
}

// Status is the part of the agent's /status the benchmark reads.
type Status struct {
	Ready         bool           `json:"ready"`
	ValuesByState map[string]int `json:"values_by_state"`
	Values        int            `json:"values"`
}

// Status reads /status.
func (a *Agent) Status(ctx context.Context) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HTTP+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := a.httpClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("agent /status: %w", err)
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Metrics reads the named gauges from /metrics (Prometheus text format).
func (a *Agent) Metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HTTP+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent /metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body, names)
}

func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = f
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return out, fmt.Errorf("metric %s not in /metrics", n)
		}
	}
	return out, nil
}

// RSS returns a process's resident set size in bytes from /proc/<pid>/status.
func RSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	return parseVmRSS(string(b))
}

func parseVmRSS(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q: unexpected format", line)
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS line in /proc/<pid>/status")
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUTime returns the user plus system CPU time a process has used, from
// /proc/<pid>/stat: unlike wall time it barely moves when other work shares
// the machine, so it compares agent builds on a busy host.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc/<pid>/stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/<pid>/stat: %d fields after the name, want at least 13", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/<pid>/stat: cpu time %q: %w", s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// waitFor polls cond every 10 ms until it holds, timeout passes or ctx ends.
func waitFor(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
