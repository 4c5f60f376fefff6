// Package vpprun starts, stops and restarts a real FD.io VPP for the
// project's tests, demo and benchmarks. It is the one place that knows how to
// run VPP: it writes a startup.conf (the same settings as
// vpp-config/startup-lab.conf: 4k pages, no hugepages, API, stats and CLI
// sockets in a private run directory, only the plugins asked for), starts
// `vpp -c`, and waits until the binary API answers a control_ping.
//
// VPP is found the way a user's machine has it: VPP_BIN, else `vpp` on PATH.
// Nothing here imports plugins/ or models/.
package vpprun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.fd.io/govpp"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/vlib"

	"github.com/vppmesh/vppmesh/pkg/vppconf"
)

// HowToGet is the one line a skipped test prints when no VPP is found.
const HowToGet = "no FD.io VPP found: set VPP_BIN=/path/to/vpp or put vpp on PATH (FD.io's packages; " +
	".ci/run installs the build the project's CI machines carry); VPP_SOCKET=/run/vpp/api.sock uses a running VPP"

// DefaultPlugins are the plugins the agent uses.
var DefaultPlugins = vppconf.DefaultPlugins

// Config describes one VPP instance.
type Config struct {
	// Dir is the instance's private run directory (created if missing):
	// startup.conf, api.sock, stats.sock, cli.sock, vpp.log. Unix socket
	// paths are limited to 107 bytes, so keep it short.
	Dir string
	// Name is unique among running instances: the shared-memory API segment
	// prefix. Letters, digits, '-' and '_' only.
	Name string
	// MainHeap is the main heap size, e.g. "1G" (default) or "4G" for
	// thousands of interfaces.
	MainHeap string
	// MainCore is the CPU VPP's main thread is pinned to (cpu { main-core });
	// the default is 0. Benchmarks pin VPP apart from its traffic peers.
	MainCore int
	// Plugins to enable by short name ("memif" → memif_plugin.so); all
	// others stay disabled. Empty means DefaultPlugins.
	Plugins []string
	// Buffers per NUMA node (default 16384).
	Buffers int
	// StatsSize is the stats segment size, e.g. "512M"; empty keeps VPP's
	// default (32M), which runs out at a few thousand interfaces.
	StatsSize string
	// Netns, when set, runs VPP inside that network namespace (ip netns exec).
	Netns string
	// Bin is the vpp binary; empty means Find().
	Bin string
	// StartTimeout bounds the wait for the API (default 30 s).
	StartTimeout time.Duration
	// Logger receives one line per start/stop; nil discards.
	Logger *slog.Logger
}

// Find returns the vpp binary: $VPP_BIN, else `vpp` on PATH.
func Find() (string, error) {
	if b := os.Getenv("VPP_BIN"); b != "" {
		st, err := os.Stat(b)
		if err != nil {
			return "", fmt.Errorf("VPP_BIN=%s: %w", b, err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("VPP_BIN=%s: not an executable file", b)
		}
		return b, nil
	}
	b, err := exec.LookPath("vpp")
	if err != nil {
		return "", errors.New(HowToGet)
	}
	return b, nil
}

// Available reports whether a vpp binary can be found and this process may
// run it (VPP without hugepages still needs root for its shared memory and
// page maps).
func Available() (bool, string) {
	if _, err := Find(); err != nil {
		return false, err.Error()
	}
	if os.Geteuid() != 0 {
		return false, "FD.io VPP needs root to run; run the tests as root"
	}
	return true, ""
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) withDefaults() error {
	if c.Dir == "" {
		return errors.New("vpprun: Config.Dir is required")
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("vpprun: dir %s: %w", c.Dir, err)
	}
	c.Dir = abs
	if len(filepath.Join(c.Dir, "stats.sock")) > 107 {
		return fmt.Errorf("vpprun: dir %s is too long for a unix socket path (max 107 bytes)", c.Dir)
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("vpprun: name %q: want 1-64 of [A-Za-z0-9_-]", c.Name)
	}
	if c.MainHeap == "" {
		c.MainHeap = "1G"
	}
	if !regexp.MustCompile(`^[0-9]+[KMGkmg]?$`).MatchString(c.MainHeap) {
		return fmt.Errorf("vpprun: main heap %q: want e.g. 1G or 512M", c.MainHeap)
	}
	if c.StatsSize != "" && !regexp.MustCompile(`^[0-9]+[KMGkmg]?$`).MatchString(c.StatsSize) {
		return fmt.Errorf("vpprun: stats size %q: want e.g. 512M", c.StatsSize)
	}
	if len(c.Plugins) == 0 {
		c.Plugins = DefaultPlugins
	}
	for _, p := range c.Plugins {
		if !nameRE.MatchString(p) {
			return fmt.Errorf("vpprun: plugin %q: want a short name like memif", p)
		}
	}
	if c.MainCore < 0 {
		return fmt.Errorf("vpprun: main core %d: want a CPU number", c.MainCore)
	}
	if c.Buffers <= 0 {
		c.Buffers = 16384
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Bin == "" {
		b, err := Find()
		if err != nil {
			return err
		}
		c.Bin = b
	}
	return nil
}

// StartupConf renders the startup.conf for c (after defaults). It matches
// vpp-config/startup-lab.conf with RUN and PREFIX filled in.
func StartupConf(c Config) string {
	return fmt.Sprintf("# generated by vppmesh test/vpprun for %s; see vpp-config/startup-lab.conf\n", c.Name) +
		vppconf.Lab{Dir: c.Dir, Prefix: c.Name, Bin: c.Bin, MainHeap: c.MainHeap, Buffers: c.Buffers,
			StatsSize: c.StatsSize, MainCore: c.MainCore, Plugins: c.Plugins}.Render()
}

// VPP is a running (or stopped) VPP instance.
type VPP struct {
	cfg Config

	// Sockets and files, all inside Config.Dir.
	APISocket, StatsSocket, CLISocket, LogPath, ConfPath, OutPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	werr error
	out  *os.File
}

// Start writes the startup.conf, runs VPP and waits until its API answers.
func Start(ctx context.Context, cfg Config) (*VPP, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vpprun: %w", err)
	}
	v := &VPP{cfg: cfg,
		APISocket:   filepath.Join(cfg.Dir, "api.sock"),
		StatsSocket: filepath.Join(cfg.Dir, "stats.sock"),
		CLISocket:   filepath.Join(cfg.Dir, "cli.sock"),
		LogPath:     filepath.Join(cfg.Dir, "vpp.log"),
		ConfPath:    filepath.Join(cfg.Dir, "startup.conf"),
		OutPath:     filepath.Join(cfg.Dir, "vpp.out"),
	}
	if err := os.WriteFile(v.ConfPath, []byte(StartupConf(cfg)), 0o644); err != nil {
		return nil, fmt.Errorf("vpprun: %w", err)
	}
	if err := v.start(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Name is the instance's unique name.
func (v *VPP) Name() string { return v.cfg.Name }

// Dir is the run directory.
func (v *VPP) Dir() string { return v.cfg.Dir }

func (v *VPP) start(ctx context.Context) error {
	// Stale sockets from a killed instance would make the wait below
	// succeed against nothing (or fail confusingly).
	for _, p := range []string{v.APISocket, v.StatsSocket, v.CLISocket} {
		_ = os.Remove(p)
	}
	out, err := os.OpenFile(v.OutPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("vpprun: %w", err)
	}
	var cmd *exec.Cmd
	if v.cfg.Netns != "" {
		cmd = exec.Command("ip", "netns", "exec", v.cfg.Netns, v.cfg.Bin, "-c", v.ConfPath)
	} else {
		cmd = exec.Command(v.cfg.Bin, "-c", v.ConfPath)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a test's ^C does not reach VPP before Stop does,
	// and Stop never signals anyone else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("vpprun: start %s: %w", v.cfg.Bin, err)
	}
	done := make(chan struct{})
	v.mu.Lock()
	v.cmd, v.done, v.out, v.werr = cmd, done, out, nil
	v.mu.Unlock()
	go func() {
		err := cmd.Wait()
		v.mu.Lock()
		v.werr = err
		v.mu.Unlock()
		close(done)
	}()
	start := time.Now()
	if err := v.waitAPI(ctx); err != nil {
		v.Kill()
		return fmt.Errorf("vpprun: %s did not come up: %w\n%s", v.cfg.Name, err, v.LogTail(30))
	}
	v.cfg.Logger.Info("vpp started", "name", v.cfg.Name, "pid", cmd.Process.Pid, "api", v.APISocket,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (v *VPP) waitAPI(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.StartTimeout)
	defer cancel()
	var last error = errors.New("api socket not there yet")
	for {
		if v.Exited() {
			return fmt.Errorf("vpp exited: %v", v.ExitErr())
		}
		if _, err := os.Stat(v.APISocket); err == nil {
			if last = Ping(v.APISocket); last == nil {
				if _, err := os.Stat(v.StatsSocket); err == nil {
					return nil
				}
				last = errors.New("stats socket not there yet")
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Ping connects to a VPP binary-API socket and sends one control_ping.
func Ping(socket string) error {
	conn, err := govpp.Connect(socket)
	if err != nil {
		return err
	}
	defer conn.Disconnect()
	ch, err := conn.NewAPIChannel()
	if err != nil {
		return err
	}
	defer ch.Close()
	ch.SetReplyTimeout(5 * time.Second)
	return ch.SendRequest(&memclnt.ControlPing{}).ReceiveReply(&memclnt.ControlPingReply{})
}

// Pid is VPP's process id (0 when never started).
func (v *VPP) Pid() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd == nil || v.cmd.Process == nil {
		return 0
	}
	return v.cmd.Process.Pid
}

// Exited reports whether the current VPP process has ended.
func (v *VPP) Exited() bool {
	v.mu.Lock()
	done := v.done
	v.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// ExitErr is the process's exit error once it ended (nil for exit 0).
func (v *VPP) ExitErr() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.werr
}

// Wait blocks until the VPP process ends or ctx is done.
func (v *VPP) Wait(ctx context.Context) error {
	v.mu.Lock()
	done := v.done
	v.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *VPP) signal(sig syscall.Signal) {
	v.mu.Lock()
	cmd := v.cmd
	v.mu.Unlock()
	if cmd != nil && cmd.Process != nil && !v.Exited() {
		_ = cmd.Process.Signal(sig)
	}
}

func (v *VPP) closeOut() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.out != nil {
		v.out.Close()
		v.out = nil
	}
}

// Stop ends VPP: SIGTERM, then SIGKILL after 10 s. Safe to call twice.
func (v *VPP) Stop() {
	if v.Exited() {
		v.closeOut()
		return
	}
	v.signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v.Wait(ctx) != nil {
		v.signal(syscall.SIGKILL)
		_ = v.Wait(context.Background())
	}
	v.closeOut()
	v.cfg.Logger.Info("vpp stopped", "name", v.cfg.Name)
}

// Kill ends VPP with SIGKILL (a crash, as far as clients can tell) and
// waits for the process to be gone.
func (v *VPP) Kill() {
	v.signal(syscall.SIGKILL)
	_ = v.Wait(context.Background())
	v.closeOut()
	v.cfg.Logger.Info("vpp killed", "name", v.cfg.Name)
}

// Restart starts VPP again with the same config, directory and sockets
// (stopping it first if it runs): all VPP state is gone, as after a crash.
func (v *VPP) Restart(ctx context.Context) error {
	if !v.Exited() {
		v.Stop()
	}
	return v.start(ctx)
}

// CLI runs one debug-CLI command through vppctl on the CLI socket, or the
// cli_inband API when vppctl is not installed.
func (v *VPP) CLI(ctx context.Context, cmd string) (string, error) {
	if ctl, err := vppctl(v.cfg.Bin); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, ctl, "-s", v.CLISocket, cmd)
		out, err := c.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("vppctl %q: %w: %s", cmd, err, out)
		}
		return string(out), nil
	}
	return CLIInband(v.APISocket, cmd)
}

func vppctl(bin string) (string, error) {
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		p := filepath.Join(filepath.Dir(real), "vppctl")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("vppctl")
}

// CLIInband runs one debug-CLI command through the binary API (cli_inband).
func CLIInband(socket, cmd string) (string, error) {
	conn, err := govpp.Connect(socket)
	if err != nil {
		return "", err
	}
	defer conn.Disconnect()
	ch, err := conn.NewAPIChannel()
	if err != nil {
		return "", err
	}
	defer ch.Close()
	ch.SetReplyTimeout(20 * time.Second)
	rep := &vlib.CliInbandReply{}
	if err := ch.SendRequest(&vlib.CliInband{Cmd: cmd}).ReceiveReply(rep); err != nil {
		return "", fmt.Errorf("cli_inband %q: %w", cmd, err)
	}
	return rep.Reply, nil
}

// LogTail returns the last n lines of VPP's log and of its stdout/stderr
// (where a crash's signal and backtrace land).
func (v *VPP) LogTail(n int) string {
	var b strings.Builder
	for _, p := range []string{v.LogPath, v.OutPath} {
		lines := tail(p, n)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", p, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

func tail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// CLIErr runs a CLI command that prints nothing on success; any output
// that reads as an error ("unknown input", "error", "failed") is returned
// as one.
func (v *VPP) CLIErr(ctx context.Context, cmd string) error {
	out, err := v.CLI(ctx, cmd)
	if err != nil {
		return err
	}
	low := strings.ToLower(out)
	for _, bad := range []string{"unknown input", "error", "failed", "invalid"} {
		if strings.Contains(low, bad) {
			return fmt.Errorf("vpp cli %q: %s", cmd, strings.TrimSpace(out))
		}
	}
	return nil
}
