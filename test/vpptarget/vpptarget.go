// Package vpptarget lets a test run against vppsim, a real FD.io VPP, or
// both, with one switch: VPP_IMPL=vppsim|vpp|both (default: both when a VPP
// is found, else vppsim; the vpp runs then skip with one line saying how to
// get VPP). ForEach runs the test body once per implementation as subtests
// named "vppsim" and "vpp".
//
// A Target hides which implementation it is: tests read VPP's state through
// govpp dumps (Interfaces, Xconnects, BridgeDomains), never through vppsim
// internals. Where a check only makes sense on vppsim (call counters, fault
// injection), Target.Sim is non-nil for an in-process vppsim.
//
// A real VPP is started by test/vpprun (VPP_BIN or `vpp` on PATH), or is an
// already running instance named by VPP_SOCKET (and VPP_STATS_SOCKET); such
// an instance cannot be killed or restarted by tests, which then skip.
package vpptarget

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.fd.io/govpp"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/core"

	"github.com/vppmesh/vppmesh/test/vpprun"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

// Impl names an implementation; it is also the subtest name.
type Impl string

const (
	// Sim is vppsim, the project's stand-in.
	Sim Impl = "vppsim"
	// VPP is a real FD.io VPP.
	VPP Impl = "vpp"
)

// Impls returns the implementations VPP_IMPL selects.
func Impls() ([]Impl, error) {
	switch v := os.Getenv("VPP_IMPL"); v {
	case "vppsim":
		return []Impl{Sim}, nil
	case "vpp":
		return []Impl{VPP}, nil
	case "both":
		return []Impl{Sim, VPP}, nil
	case "":
		if ok, _ := Available(); ok {
			return []Impl{Sim, VPP}, nil
		}
		// VPP is not here: the vpp subtests still appear and skip with
		// one line saying how to get it.
		return []Impl{Sim, VPP}, nil
	default:
		return nil, fmt.Errorf("VPP_IMPL=%q: want vppsim, vpp or both", v)
	}
}

// Available reports whether a real VPP can be used: VPP_SOCKET names a
// running one, or vpprun can start one.
func Available() (bool, string) {
	if os.Getenv("VPP_SOCKET") != "" {
		return true, ""
	}
	return vpprun.Available()
}

// Options shape the targets a test gets.
type Options struct {
	// SimBinary runs vppsim as a process (with a control socket) instead
	// of in-process; e2e tests use it.
	SimBinary string
	// SimNoPackets starts vppsim without packet drivers (control plane only).
	SimNoPackets bool
	// MainHeap for a real VPP ("1G" when empty).
	MainHeap string
	// MainCore is the CPU of a real VPP's main thread (vpprun.Config.MainCore).
	MainCore int
	// Plugins for a real VPP (vpprun.DefaultPlugins when empty).
	Plugins []string
	// Logger for vppsim in-process and for the launchers; nil discards.
	Logger *slog.Logger
}

// ForEach runs fn once per selected implementation, each as a subtest with
// a fresh target that is stopped when the subtest ends.
func ForEach(t *testing.T, opts Options, fn func(t *testing.T, tg *Target)) {
	t.Helper()
	impls, err := Impls()
	if err != nil {
		t.Fatal(err)
	}
	for _, impl := range impls {
		t.Run(string(impl), func(t *testing.T) {
			fn(t, Start(t, impl, opts))
		})
	}
}

// Target is one running VPP implementation for one test.
type Target struct {
	Impl        Impl
	APISocket   string
	StatsSocket string
	// Dir is the target's private run directory (memif sockets may go
	// here too); short enough for unix socket paths.
	Dir string
	// Sim is the in-process vppsim (nil for a real VPP or a vppsim
	// process): for checks that only vppsim can answer.
	Sim *vppsim.Sim
	// SimControl is the control socket of a vppsim process ("" otherwise).
	SimControl string

	t        testing.TB
	opts     Options
	vpp      *vpprun.VPP
	external bool
	simProc  *simProc

	mu   sync.Mutex
	conn *core.Connection
	ch   api.Channel
}

// Name is "vppsim" or "vpp".
func (tg *Target) Name() string { return string(tg.Impl) }

// IsVPP reports whether this is a real FD.io VPP.
func (tg *Target) IsVPP() bool { return tg.Impl == VPP }

// VPP is the launched real VPP (nil for vppsim or an external VPP).
func (tg *Target) VPP() *vpprun.VPP { return tg.vpp }

// Start starts one target for t (skipping t when a real VPP is asked for
// and none is found).
func Start(t testing.TB, impl Impl, opts Options) *Target {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tg := &Target{Impl: impl, t: t, opts: opts}
	t.Cleanup(tg.closeConn)
	switch impl {
	case VPP:
		if sock := os.Getenv("VPP_SOCKET"); sock != "" {
			tg.external = true
			tg.APISocket = sock
			tg.StatsSocket = os.Getenv("VPP_STATS_SOCKET")
			if tg.StatsSocket == "" {
				tg.StatsSocket = filepath.Join(filepath.Dir(sock), "stats.sock")
			}
			tg.Dir = shortDir(t)
			return tg
		}
		tg.vpp = vpprun.StartT(t, vpprun.Config{MainHeap: opts.MainHeap, MainCore: opts.MainCore, Plugins: opts.Plugins, Logger: opts.Logger})
		tg.APISocket, tg.StatsSocket, tg.Dir = tg.vpp.APISocket, tg.vpp.StatsSocket, tg.vpp.Dir()
	case Sim:
		tg.Dir = shortDir(t)
		tg.APISocket, tg.StatsSocket = filepath.Join(tg.Dir, "api.sock"), filepath.Join(tg.Dir, "stats.sock")
		if err := tg.startSim(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tg.stopSim)
	default:
		t.Fatalf("vpptarget: unknown implementation %q", impl)
	}
	return tg
}

func shortDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "vt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(d)
		}
	})
	return d
}

func (tg *Target) simConfig() vppsim.Config {
	c := vppsim.Config{Socket: tg.APISocket, StatsSocket: tg.StatsSocket, Logger: tg.opts.Logger}
	if tg.opts.SimNoPackets {
		c.Drivers = vppsim.NoDrivers
	}
	return c
}

func (tg *Target) startSim() error {
	if tg.opts.SimBinary == "" {
		s, err := vppsim.Start(context.Background(), tg.simConfig())
		if err != nil {
			return err
		}
		tg.Sim = s
		return nil
	}
	tg.SimControl = filepath.Join(tg.Dir, "ctl.sock")
	args := []string{"--socket", tg.APISocket, "--stats-socket", tg.StatsSocket,
		"--control", "unix:" + tg.SimControl, "--log-level", "info"}
	if tg.opts.SimNoPackets {
		args = append(args, "--no-packets")
	}
	p, err := startSimProc(tg.opts.SimBinary, filepath.Join(tg.Dir, "vppsim.log"), args)
	if err != nil {
		return err
	}
	tg.simProc = p
	deadline := time.Now().Add(15 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("vppsim exited at start:\n%s", tg.LogTail(20))
		}
		if _, err := os.Stat(tg.APISocket); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vppsim: no API socket after 15 s:\n%s", tg.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tg *Target) stopSim() {
	if tg.Sim != nil {
		tg.Sim.Close()
	}
	if tg.simProc != nil {
		tg.simProc.stop(syscall.SIGTERM)
	}
	if tg.t.Failed() && tg.simProc != nil {
		tg.t.Logf("vppsim log:\n%s", tg.LogTail(40))
	}
}

// Kill ends the implementation abruptly: kill -9 for a process, closing
// every connection for an in-process vppsim. Restart brings it back.
func (tg *Target) Kill() {
	tg.t.Helper()
	tg.needOwned()
	tg.closeConn()
	switch {
	case tg.vpp != nil:
		tg.vpp.Kill()
	case tg.simProc != nil:
		tg.simProc.stop(syscall.SIGKILL)
	case tg.Sim != nil:
		tg.Sim.Close()
	}
}

// Restart starts the implementation again on the same sockets with empty
// state (after Kill, or stopping it first), like VPP after a crash.
func (tg *Target) Restart(ctx context.Context) error {
	tg.t.Helper()
	tg.needOwned()
	tg.closeConn()
	switch {
	case tg.vpp != nil:
		return tg.vpp.Restart(ctx)
	case tg.simProc != nil:
		if !tg.simProc.exited() {
			tg.simProc.stop(syscall.SIGTERM)
		}
		return tg.startSim()
	default:
		// Close and start again: a clean in-process vppsim.
		tg.Sim.Close()
		return tg.startSim()
	}
}

// CanRestart reports whether Kill/Restart work (not for an external VPP).
func (tg *Target) CanRestart() bool { return !tg.external }

func (tg *Target) needOwned() {
	if tg.external {
		tg.t.Skip("this test kills and restarts VPP; VPP_SOCKET names a VPP it does not own")
	}
}

// Exited reports whether a target process has ended (never for in-process
// vppsim or an external VPP).
func (tg *Target) Exited() bool {
	switch {
	case tg.vpp != nil:
		return tg.vpp.Exited()
	case tg.simProc != nil:
		return tg.simProc.exited()
	}
	return false
}

// Pid is the target's process id (0 for in-process vppsim or an external VPP).
func (tg *Target) Pid() int {
	switch {
	case tg.vpp != nil:
		return tg.vpp.Pid()
	case tg.simProc != nil:
		return tg.simProc.cmd.Process.Pid
	}
	return 0
}

// LogTail is the last n lines of the target's log(s).
func (tg *Target) LogTail(n int) string {
	switch {
	case tg.vpp != nil:
		return tg.vpp.LogTail(n)
	case tg.simProc != nil:
		return strings.Join(tailFile(tg.simProc.logPath, n), "\n")
	}
	return ""
}

// CLI runs a debug-CLI command (cli_inband through govpp, which both
// implementations answer).
func (tg *Target) CLI(ctx context.Context, cmd string) (string, error) {
	if tg.vpp != nil {
		return tg.vpp.CLI(ctx, cmd)
	}
	return vpprun.CLIInband(tg.APISocket, cmd)
}

// channel returns a cached govpp channel, connecting on first use or after
// an error dropped it.
func (tg *Target) channel() (api.Channel, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.ch != nil {
		return tg.ch, nil
	}
	conn, err := govpp.Connect(tg.APISocket)
	if err != nil {
		return nil, fmt.Errorf("%s: connect %s: %w", tg.Impl, tg.APISocket, err)
	}
	ch, err := conn.NewAPIChannel()
	if err != nil {
		conn.Disconnect()
		return nil, err
	}
	ch.SetReplyTimeout(10 * time.Second)
	tg.conn, tg.ch = conn, ch
	return ch, nil
}

func (tg *Target) closeConn() {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.ch != nil {
		tg.ch.Close()
		tg.conn.Disconnect()
		tg.ch, tg.conn = nil, nil
	}
}

func (tg *Target) dump(req api.Message, newReply func() api.Message, each func(api.Message)) error {
	ch, err := tg.channel()
	if err != nil {
		return err
	}
	r := ch.SendMultiRequest(req)
	for {
		m := newReply()
		last, err := r.ReceiveReply(m)
		if err != nil {
			tg.closeConn()
			return fmt.Errorf("%s: %s: %w", tg.Impl, req.GetMessageName(), err)
		}
		if last {
			return nil
		}
		each(m)
	}
}

// Interface is one row of sw_interface_dump, with its L2 mode.
type Interface struct {
	SwIfIndex uint32
	Name      string
	Tag       string
	DevType   string
	AdminUp   bool
	LinkUp    bool
	MTU       uint32 // link MTU
	MAC       string
	// L2 is "xconnect <tx interface name>", "bridge <bd id>" or "".
	L2 string
}

// Interfaces dumps the interface table and each interface's L2 mode.
func (tg *Target) Interfaces(ctx context.Context) ([]Interface, error) {
	var out []Interface
	byIdx := map[uint32]int{}
	err := tg.dump(&interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)},
		func() api.Message { return &interfaces.SwInterfaceDetails{} },
		func(m api.Message) {
			d := m.(*interfaces.SwInterfaceDetails)
			byIdx[uint32(d.SwIfIndex)] = len(out)
			out = append(out, Interface{SwIfIndex: uint32(d.SwIfIndex), Name: d.InterfaceName, Tag: d.Tag,
				DevType: d.InterfaceDevType, MTU: uint32(d.LinkMtu), MAC: d.L2Address.String(),
				AdminUp: d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0,
				LinkUp:  d.Flags&interface_types.IF_STATUS_API_FLAG_LINK_UP != 0})
		})
	if err != nil {
		return nil, err
	}
	xc, err := tg.Xconnects(ctx)
	if err != nil {
		return nil, err
	}
	for rx, tx := range xc {
		if i, ok := byIdx[rx]; ok {
			if j, ok := byIdx[tx]; ok {
				out[i].L2 = "xconnect " + out[j].Name
			}
		}
	}
	bds, err := tg.BridgeDomains(ctx)
	if err != nil {
		return nil, err
	}
	for _, bd := range bds {
		for _, m := range bd.Members {
			if i, ok := byIdx[m]; ok {
				out[i].L2 = fmt.Sprintf("bridge %d", bd.ID)
			}
		}
	}
	return out, nil
}

// InterfaceByTag finds the interface the agent tagged with tag.
func (tg *Target) InterfaceByTag(ctx context.Context, tag string) (Interface, bool, error) {
	ifs, err := tg.Interfaces(ctx)
	if err != nil {
		return Interface{}, false, err
	}
	for _, i := range ifs {
		if i.Tag == tag {
			return i, true, nil
		}
	}
	return Interface{}, false, nil
}

// Xconnects dumps the L2 cross-connect table: rx sw_if_index → tx.
func (tg *Target) Xconnects(ctx context.Context) (map[uint32]uint32, error) {
	out := map[uint32]uint32{}
	err := tg.dump(&l2.L2XconnectDump{}, func() api.Message { return &l2.L2XconnectDetails{} },
		func(m api.Message) {
			d := m.(*l2.L2XconnectDetails)
			out[uint32(d.RxSwIfIndex)] = uint32(d.TxSwIfIndex)
		})
	return out, err
}

// BridgeDomain is one row of bridge_domain_dump.
type BridgeDomain struct {
	ID                                  uint32
	Flood, UuFlood, Forward, Learn, Arp bool
	Members                             []uint32
}

// BridgeDomains dumps every bridge domain (VPP lists none for an empty
// table; bridge domain 0 is internal and never listed).
func (tg *Target) BridgeDomains(ctx context.Context) ([]BridgeDomain, error) {
	var out []BridgeDomain
	err := tg.dump(&l2.BridgeDomainDump{BdID: ^uint32(0), SwIfIndex: ^interface_types.InterfaceIndex(0)},
		func() api.Message { return &l2.BridgeDomainDetails{} },
		func(m api.Message) {
			d := m.(*l2.BridgeDomainDetails)
			bd := BridgeDomain{ID: d.BdID, Flood: d.Flood, UuFlood: d.UuFlood, Forward: d.Forward, Learn: d.Learn, Arp: d.ArpTerm}
			for _, s := range d.SwIfDetails {
				bd.Members = append(bd.Members, uint32(s.SwIfIndex))
			}
			out = append(out, bd)
		})
	return out, err
}

// Ping sends one control_ping on a fresh connection.
func (tg *Target) Ping() error { return vpprun.Ping(tg.APISocket) }

// simProc is a vppsim process.
type simProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	log     *os.File
}

func startSimProc(bin, logPath string, args []string) (*simProc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start vppsim %s: %w", bin, err)
	}
	p := &simProc{cmd: cmd, done: make(chan struct{}), logPath: logPath, log: lf}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *simProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *simProc) stop(sig syscall.Signal) {
	if !p.exited() {
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

func tailFile(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// ResetCalls starts counting the binary-API messages the implementation
// receives from every client: vppsim's call counters, or VPP's API trace
// (`api trace free` + `api trace on`).
func (tg *Target) ResetCalls(ctx context.Context) error {
	switch {
	case tg.Sim != nil:
		tg.Sim.ResetCallCounts()
		return nil
	case tg.simProc != nil:
		return tg.simControl(ctx, http.MethodPost, "/calls/reset", nil)
	}
	if tg.vpp != nil {
		return tg.vpp.APITraceReset(ctx)
	}
	for _, cmd := range []string{"api trace off", "api trace free", "api trace on"} {
		if _, err := tg.CLI(ctx, cmd); err != nil {
			return err
		}
	}
	return nil
}

// Calls returns per-message counts since ResetCalls. On VPP they come from
// `api trace dump`, which lists each received message as "vl_api_<name>_t:".
func (tg *Target) Calls(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	switch {
	case tg.Sim != nil:
		return tg.Sim.CallCounts(), nil
	case tg.simProc != nil:
		return out, tg.simControl(ctx, http.MethodGet, "/calls", &out)
	}
	dump, err := tg.CLI(ctx, "api trace dump")
	if err != nil {
		return nil, err
	}
	return vpprun.ParseAPITrace(dump), nil
}

func (tg *Target) simControl(ctx context.Context, method, path string, v any) error {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", tg.SimControl)
		}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://vppsim"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("vppsim control %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("vppsim control %s: %s", path, resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// RxModes dumps the rx placement of one interface: queue id → mode
// ("polling", "interrupt", "adaptive").
func (tg *Target) RxModes(ctx context.Context, swIfIndex uint32) (map[uint32]string, error) {
	out := map[uint32]string{}
	err := tg.dump(&interfaces.SwInterfaceRxPlacementDump{SwIfIndex: interface_types.InterfaceIndex(swIfIndex)},
		func() api.Message { return &interfaces.SwInterfaceRxPlacementDetails{} },
		func(m api.Message) {
			d := m.(*interfaces.SwInterfaceRxPlacementDetails)
			mode := map[interface_types.RxMode]string{interface_types.RX_MODE_API_POLLING: "polling",
				interface_types.RX_MODE_API_INTERRUPT: "interrupt", interface_types.RX_MODE_API_ADAPTIVE: "adaptive"}[d.Mode]
			if mode == "" {
				mode = fmt.Sprint(d.Mode)
			}
			out[d.QueueID] = mode
		})
	return out, err
}
