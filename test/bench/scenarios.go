package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/test/vpprun"
)

// Label is the microservice label of the benchmarked agent.
const Label = "bench"

// etcdTxnOps is etcd's default limit of operations per transaction.
const etcdTxnOps = 128

// XCKey returns the etcd key of cross-connect name.
func XCKey(name string) string { return "/vnf-agent/" + Label + "/config/vppmesh/v1/xconnect/" + name }

// Config is one benchmark session.
type Config struct {
	BinDir    string // vppmesh-agent, agentctl, vppsim
	WorkDir   string // scratch space, one subdirectory per run
	VPPSocket string // external VPP; empty starts vppsim (or FD.io VPP, see Impls) per run
	// Impls are the VPP implementations measured in one session, each
	// with its own column: "vppsim" and "vpp" (FD.io VPP started per run by
	// test/vpprun). Empty means vppsim only; ignored with VPPSocket.
	Impls []string
	// VPPSizes are the sizes measured on FD.io VPP (empty: Sizes): VPP
	// 25.10 does not survive the largest (see README, memif limit).
	VPPSizes []int
	Sizes    []int         // numbers of cross-connects
	Runs     int           // repetitions per size
	Latency  int           // single puts per run
	Churn    time.Duration // churn phase length per run
	Sockets  int           // memif socket files the cross-connects spread over
	Only     []string      // scenarios to run (empty: all); bulk always runs
	// AgentArgs are extra vppmesh-agent flags (experiments: what a flag
	// costs or saves).
	AgentArgs []string
	Log       *slog.Logger
}

// RunResult is every figure one run at one size produced; names are the
// metric names of the report.
type RunResult map[string]float64

// Metric names and units.
var metricUnits = map[string]string{
	"bulk_s":                  "s",
	"bulk_write_calls":        "calls",
	"bulk_calls_per_s":        "calls/s",
	"floor_s":                 "s",
	"floor_calls_per_s":       "calls/s",
	"agent_floor_ratio":       "x",
	"bulk_verify_ms":          "ms",
	"bulk_agent_cpu_s":        "CPU s",
	"bulk_vpp_cpu_s":          "CPU s",
	"latency_p50_ms":          "ms",
	"latency_p99_ms":          "ms",
	"latency_verify_ms":       "ms",
	"latency_ifup_p50_ms":     "ms",
	"latency_ifup_p99_ms":     "ms",
	"resync_unchanged_s":      "s",
	"resync_unchanged_writes": "calls",
	"resync_unchanged_reads":  "calls",
	"resync_vpp_lost_s":       "s",
	"churn_ops_per_s":         "xc ops/s",
	"churn_goroutines_start":  "goroutines",
	"churn_goroutines_end":    "goroutines",
	"churn_rss_start_mib":     "MiB",
	"churn_rss_end_mib":       "MiB",
	"rss_idle_mib":            "MiB",
	"rss_mib":                 "MiB",
	"rss_per_xc_kib":          "KiB",
	"rss_delta_per_xc_kib":    "KiB",
	"heap_per_xc_kib":         "KiB",
}

// scenarioOf names the scenario that produces metric.
func scenarioOf(metric string) string {
	for _, p := range []struct{ prefix, scenario string }{
		{"floor_", "floor"}, {"agent_floor", "floor"}, {"latency_", "latency"},
		{"resync_unchanged", "resync-unchanged"}, {"resync_vpp_lost", "resync-vpp-lost"}, {"churn_", "churn"},
	} {
		if strings.HasPrefix(metric, p.prefix) {
			return p.scenario
		}
	}
	return "bulk"
}

// session is one run's world: VPP (or vppsim), the agent, etcd and our
// own govpp observer.
type session struct {
	cfg   Config
	impl  string // "vppsim", "vpp" or "external"
	log   *slog.Logger
	dir   string
	sim   *Sim        // vppsim, when impl is vppsim
	real  *vpprun.VPP // FD.io VPP, when impl is vpp
	sock  string
	agent *Agent
	vpp   *VPP
	etcd  *clientv3.Client
	res   RunResult
}

func (s *session) close() {
	if s.etcd != nil {
		s.etcd.Close()
	}
	if s.vpp != nil {
		s.vpp.Close()
	}
	if s.agent != nil {
		s.agent.Stop()
	}
	if s.sim != nil {
		s.sim.Stop()
	}
	if s.real != nil {
		s.real.Stop()
	}
}

// memifSlot spreads cross-connect i over nfiles socket files and gives each
// side a memif id unique on its file.
func memifSlot(i, side, nfiles int) (file int, id uint32) {
	return i % nfiles, uint32(2*(i/nfiles) + side + 1)
}

func (s *session) socketFiles(prefix string) []string {
	files := make([]string, s.cfg.Sockets)
	for i := range files {
		files[i] = filepath.Join(s.dir, fmt.Sprintf("%s%d.sock", prefix, i))
	}
	return files
}

// xcValue is cross-connect i as protobuf JSON. Its memif ids come from slot
// base+i so that latency probes never share an id with the bulk set.
func xcValue(name string, slot int, files []string) string {
	ep := func(side int) map[string]any {
		f, id := memifSlot(slot, side, len(files))
		return map[string]any{"memif": map[string]any{"master": true, "id": id, "socket_filename": files[f]}}
	}
	b, _ := json.Marshal(map[string]any{"name": name, "a": ep(0), "b": ep(1)})
	return string(b)
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// RunOnce runs every scenario once at n cross-connects on impl ("vppsim",
// "vpp", or "external" for cfg.VPPSocket).
func RunOnce(ctx context.Context, cfg Config, impl string, n, run int) (RunResult, error) {
	dir, err := os.MkdirTemp(cfg.WorkDir, fmt.Sprintf("%s-n%d-r%d-", impl, n, run))
	if err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	s := &session{cfg: cfg, impl: impl, log: cfg.Log.With("impl", impl, "n", n, "run", run), dir: dir, res: RunResult{}}
	defer s.close()
	if err := s.setup(ctx, n); err != nil {
		return s.res, err
	}
	steps := []struct {
		name string
		fn   func(context.Context, int) error
	}{
		{"floor", s.floor},
		{"bulk", s.bulk},
		{"latency", s.latency},
		{"resync-unchanged", s.resyncUnchanged},
		{"resync-vpp-lost", s.resyncVPPLost},
		{"churn", s.churn},
	}
	for _, st := range steps {
		if !s.wanted(st.name) {
			continue
		}
		t0 := time.Now()
		if err := st.fn(ctx, n); err != nil {
			return s.res, fmt.Errorf("n=%d run %d: %s: %w (logs in %s)", n, run, st.name, err, dir)
		}
		s.log.Info("scenario done", "scenario", st.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	return s.res, nil
}

func (s *session) wanted(name string) bool {
	return len(s.cfg.Only) == 0 || name == "bulk" || slices.Contains(s.cfg.Only, name)
}

// Scenarios are the names Config.Only accepts, in the order they run.
var Scenarios = []string{"floor", "bulk", "latency", "resync-unchanged", "resync-vpp-lost", "churn"}

func (s *session) setup(ctx context.Context, n int) error {
	var agentArgs []string
	switch s.impl {
	case "external":
		s.sock = s.cfg.VPPSocket
	case "vpp":
		// 4k pages; a heap and stats segment with room for 2n memifs
		// (the default 32 MiB stats segment aborts at ~6,150 interfaces).
		heap := "1G"
		if n > 1000 {
			heap = "4G"
		}
		v, err := vpprun.Start(ctx, vpprun.Config{Dir: filepath.Join(s.dir, "vpp"), Name: fmt.Sprintf("vppmesh-bench-%d-%d", os.Getpid(), n),
			MainHeap: heap, StatsSize: "512M", Logger: s.log})
		if err != nil {
			return err
		}
		s.real, s.sock = v, v.APISocket
	default:
		sim, err := StartSim(ctx, filepath.Join(s.cfg.BinDir, "vppsim"), s.dir)
		if err != nil {
			return err
		}
		s.sim, s.sock = sim, sim.Socket
		// vppsim has no memif limit; the agent's cap guards FD.io VPP.
		agentArgs = append(agentArgs, "--vpp-max-memifs", "0")
	}
	agentArgs = append(agentArgs, s.cfg.AgentArgs...)
	a, err := NewAgent(filepath.Join(s.cfg.BinDir, "vppmesh-agent"), s.dir, s.sock, agentArgs...)
	if err != nil {
		return err
	}
	s.agent = a
	if err := a.Start(); err != nil {
		return err
	}
	if err := a.WaitReady(ctx, time.Minute); err != nil {
		return err
	}
	if s.vpp, err = DialVPP(ctx, s.sock); err != nil {
		return err
	}
	s.etcd, err = clientv3.New(clientv3.Config{Endpoints: []string{a.Etcd}, DialTimeout: 5 * time.Second, Context: ctx})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	rss, err := RSS(a.Pid())
	if err != nil {
		return err
	}
	s.res["rss_idle_mib"] = float64(rss) / (1 << 20)
	return nil
}

func (s *session) floor(ctx context.Context, n int) error {
	r, err := s.vpp.Floor(ctx, n, s.socketFiles("floor"))
	if err != nil {
		return err
	}
	s.res["floor_s"] = r.Seconds
	s.res["floor_calls_per_s"] = float64(r.WriteCalls) / r.Seconds
	return nil
}

// waitProgrammed polls VPP until count(snapshot) reaches want, sleeping four
// times as long as a dump took between polls so that observing costs VPP and
// the agent at most a fifth of the time. It returns when the last dump was
// answered and the median dump duration (the observation's resolution).
func (s *session) waitProgrammed(ctx context.Context, what string, timeout time.Duration, count func(*Snapshot) int, want int) (time.Time, time.Duration, error) {
	deadline := time.Now().Add(timeout)
	var durs []float64
	got := -1
	for {
		t0 := time.Now()
		snap, err := s.snapshot(ctx)
		if err != nil {
			return time.Time{}, 0, err
		}
		now := time.Now()
		d := now.Sub(t0)
		durs = append(durs, float64(d))
		if got = count(snap); got == want {
			return now, time.Duration(Summarize(durs).Median), nil
		}
		if now.After(deadline) {
			return time.Time{}, 0, fmt.Errorf("%s: %d of %d in VPP after %s", what, got, want, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		case <-time.After(max(10*time.Millisecond, 4*d)):
		}
	}
}

// snapshot dumps VPP through the observer, reconnecting once if VPP dropped
// the observer's connection (a slow reader of a 20,000-entry dump can be).
func (s *session) snapshot(ctx context.Context) (*Snapshot, error) {
	snap, err := s.vpp.Snapshot(ctx)
	if err == nil {
		return snap, nil
	}
	s.log.Warn("VPP dump failed; reconnecting the observer", "error", err)
	s.vpp.Close()
	if s.vpp, err = DialVPP(ctx, s.sock); err != nil {
		return nil, err
	}
	return s.vpp.Snapshot(ctx)
}

// calls returns the VPP calls since resetCalls: vppsim's counters, or FD.io
// VPP's API trace; nil for an external VPP.
func (s *session) calls(ctx context.Context) (map[string]uint64, error) {
	switch {
	case s.sim != nil:
		return s.sim.Calls(ctx)
	case s.real != nil:
		return s.real.APITraceCounts(ctx)
	}
	return nil, nil
}

func (s *session) resetCalls(ctx context.Context) error {
	switch {
	case s.sim != nil:
		return s.sim.ResetCalls(ctx)
	case s.real != nil:
		return s.real.APITraceReset(ctx)
	}
	return nil
}

func (s *session) bulk(ctx context.Context, n int) error {
	files := s.socketFiles("m")
	all := names("x", n)
	var sb strings.Builder
	for i, name := range all {
		fmt.Fprintf(&sb, "%s %s\n", XCKey(name), xcValue(name, i, files))
	}
	file := filepath.Join(s.dir, "import.txt")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("write import file: %w", err)
	}
	if err := s.resetCalls(ctx); err != nil {
		return err
	}
	// Observed without polling dumps (at 10,000 one takes ~40 ms of VPP's
	// and the agent's CPU, and polling them made the result late by up to
	// a poll interval): the agent's status documents, then one dump.
	o := NewStatusObserver(ctx, s.vpp, s.etcd)
	defer o.Close()
	cpu0, err := s.cpu()
	if err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.BinDir, "agentctl"), "-e", s.agent.Etcd,
		"--service-label", Label, "--http-port", portOf(s.agent.HTTP), "import", "--txops", fmt.Sprint(etcdTxnOps), file)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("agentctl import: %w: %s", err, out)
	}
	done, err := o.WaitAll(ctx, all, 15*time.Minute)
	if err != nil {
		return err
	}
	secs := done.Sub(start).Seconds()
	s.res["bulk_s"] = secs
	// Read at once (a few ms late at most): CPU-seconds barely move with
	// other work on the machine, so they compare agent builds on a busy
	// host where the wall time cannot.
	cpu1, err := s.cpu()
	if err != nil {
		return err
	}
	s.res["bulk_agent_cpu_s"] = (cpu1[0] - cpu0[0]).Seconds()
	if cpu0[1] >= 0 {
		s.res["bulk_vpp_cpu_s"] = (cpu1[1] - cpu0[1]).Seconds()
	}
	if s.res["floor_s"] > 0 {
		s.res["agent_floor_ratio"] = secs / s.res["floor_s"]
	}
	t0 := time.Now()
	snap, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	s.res["bulk_verify_ms"] = float64(time.Since(t0)) / 1e6
	if err := Check(snap, all); err != nil {
		return err
	}
	if calls, err := s.calls(ctx); err != nil {
		return err
	} else if calls != nil {
		w := WriteCalls(calls)
		s.res["bulk_write_calls"] = float64(w)
		s.res["bulk_calls_per_s"] = float64(w) / secs
		s.log.Info("bulk apply VPP calls", "calls", calls)
	}
	rss, err := RSS(s.agent.Pid())
	if err != nil {
		return err
	}
	m, err := s.agent.Metrics(ctx, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return err
	}
	s.res["rss_mib"] = float64(rss) / (1 << 20)
	s.res["rss_per_xc_kib"] = float64(rss) / 1024 / float64(n)
	s.res["rss_delta_per_xc_kib"] = (float64(rss)/(1<<20) - s.res["rss_idle_mib"]) * 1024 / float64(n)
	s.res["heap_per_xc_kib"] = m["go_memstats_heap_inuse_bytes"] / 1024 / float64(n)
	return nil
}

// cpu returns the CPU time used so far by the agent and by VPP (vppsim or
// FD.io VPP; -1 for an external VPP).
func (s *session) cpu() ([2]time.Duration, error) {
	out := [2]time.Duration{0, -1}
	var err error
	if out[0], err = CPUTime(s.agent.Pid()); err != nil {
		return out, err
	}
	pid := 0
	switch {
	case s.sim != nil:
		pid = s.sim.proc.pid()
	case s.real != nil:
		pid = s.real.Pid()
	}
	if pid > 0 {
		if out[1], err = CPUTime(pid); err != nil {
			return out, err
		}
	}
	return out, nil
}

func portOf(hostport string) string {
	_, p, _ := strings.Cut(hostport, ":")
	return p
}

// latency puts new cross-connects one at a time and times each until it is
// programmed, with the event-based observer (observer.go): VPP's
// sw_interface_event for both new interfaces up (latency_ifup_*) and the
// agent's status document saying the cross-connect and its derived values
// CONFIGURED (latency_p*: the later of the two). Nothing is dumped per put,
// so the figure is the agent's, not an observer's polling interval; one
// interface and xconnect dump at the end (latency_verify_ms) checks that VPP
// holds every probe the agent called CONFIGURED.
func (s *session) latency(ctx context.Context, n int) error {
	files := s.socketFiles("m")
	// The bulk set's status documents may still be on their way to etcd;
	// the first probes would wait behind them.
	if err := s.waitStatuses(ctx, n, time.Minute); err != nil {
		return err
	}
	o, err := NewXCObserver(ctx, s.vpp, s.etcd)
	if err != nil {
		return err
	}
	defer o.Close()
	var lat, ifUp []float64
	probes := make([]string, 0, s.cfg.Latency)
	for i := 0; i < s.cfg.Latency; i++ {
		name := fmt.Sprintf("lat%d", i)
		val := xcValue(name, n+i, files)
		start := time.Now()
		if _, err := s.etcd.Put(ctx, XCKey(name), val); err != nil {
			return fmt.Errorf("put %s: %w", XCKey(name), err)
		}
		sg, err := o.Wait(ctx, name, 30*time.Second)
		if err != nil {
			return err
		}
		lat = append(lat, float64(sg.Programmed().Sub(start))/1e6)
		ifUp = append(ifUp, float64(sg.BothUp.Sub(start))/1e6)
		probes = append(probes, name)
	}
	t0 := time.Now()
	snap, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	s.res["latency_verify_ms"] = float64(time.Since(t0)) / 1e6
	if err := Check(snap, probes); err != nil {
		return err
	}
	sort.Float64s(lat)
	sort.Float64s(ifUp)
	s.res["latency_p50_ms"] = Percentile(lat, 50)
	s.res["latency_p99_ms"] = Percentile(lat, 99)
	s.res["latency_ifup_p50_ms"] = Percentile(ifUp, 50)
	s.res["latency_ifup_p99_ms"] = Percentile(ifUp, 99)
	// Put the world back to n for the next scenarios.
	if _, err := s.etcd.Delete(ctx, XCKey("lat"), clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("delete latency probes: %w", err)
	}
	// Wait until the probes' interfaces are gone, not only their
	// xconnects: deletes still running when the next scenario stops the
	// agent would be finished by its resync and counted as its writes.
	_, _, err = s.waitProgrammed(ctx, "latency probes removed from VPP", 5*time.Minute,
		func(sn *Snapshot) int { return sn.CountTagged("lat") }, 0)
	return err
}

// waitStatuses waits until etcd holds want cross-connect status documents.
func (s *session) waitStatuses(ctx context.Context, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		r, err := s.etcd.Get(ctx, XCStatusKey(""), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("count status documents: %w", err)
		}
		if r.Count == int64(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d cross-connect status documents in etcd after %v, want %d", r.Count, timeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *session) resyncUnchanged(ctx context.Context, n int) error {
	s.agent.Stop()
	if err := s.resetCalls(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := s.agent.Start(); err != nil {
		return err
	}
	if err := s.agent.WaitReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	s.res["resync_unchanged_s"] = time.Since(start).Seconds()
	// Writes that came late would still be a flap: look again after a pause.
	time.Sleep(time.Second)
	if calls, err := s.calls(ctx); err != nil {
		return err
	} else if calls != nil {
		w := WriteCalls(calls)
		var all uint64
		for _, c := range calls {
			all += c
		}
		s.res["resync_unchanged_writes"] = float64(w)
		s.res["resync_unchanged_reads"] = float64(all - w)
		if w != 0 {
			s.log.Warn("unchanged resync wrote to VPP", "calls", calls)
		}
	}
	all := names("x", n)
	snap, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	if got := snap.Count(all); got != n {
		return fmt.Errorf("after an unchanged resync VPP has %d of %d cross-connects", got, n)
	}
	return nil
}

func (s *session) resyncVPPLost(ctx context.Context, n int) error {
	if s.sim == nil && s.real == nil {
		s.log.Info("resync after VPP loss needs a VPP this run started; skipped with an external VPP")
		return nil
	}
	s.agent.Stop()
	s.vpp.Close()
	s.vpp = nil
	if s.sim != nil {
		if err := s.sim.Restart(ctx); err != nil {
			return err
		}
	} else {
		// kill -9 and a fresh start on the same sockets: everything lost.
		s.real.Kill()
		if err := s.real.Restart(ctx); err != nil {
			return err
		}
	}
	var err error
	if s.vpp, err = DialVPP(ctx, s.sock); err != nil {
		return err
	}
	start := time.Now()
	if err := s.agent.Start(); err != nil {
		return err
	}
	all := names("x", n)
	done, _, err := s.waitProgrammed(ctx, "resync after VPP loss", 15*time.Minute, func(sn *Snapshot) int { return sn.Count(all) }, n)
	if err != nil {
		return err
	}
	s.res["resync_vpp_lost_s"] = done.Sub(start).Seconds()
	return s.agent.WaitReady(ctx, time.Minute)
}

// putAll writes key/values in transactions of at most etcdTxnOps.
func (s *session) putAll(ctx context.Context, names []string, val func(i int) string) error {
	for lo := 0; lo < len(names); lo += etcdTxnOps {
		hi := min(lo+etcdTxnOps, len(names))
		ops := make([]clientv3.Op, 0, hi-lo)
		for i := lo; i < hi; i++ {
			if val == nil {
				ops = append(ops, clientv3.OpDelete(XCKey(names[i])))
			} else {
				ops = append(ops, clientv3.OpPut(XCKey(names[i]), val(i)))
			}
		}
		if _, err := s.etcd.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("etcd txn of %d ops from %s: %w", len(ops), XCKey(names[lo]), err)
		}
	}
	return nil
}

// churn deletes and re-adds a tenth of the cross-connects for cfg.Churn,
// waiting each time until VPP shows the change, and compares the agent's
// goroutines and memory before and after.
func (s *session) churn(ctx context.Context, n int) error {
	files := s.socketFiles("m")
	k := max(1, n/10)
	part := names("x", k)
	gr := func() (float64, float64, error) {
		m, err := s.agent.Metrics(ctx, "go_goroutines")
		if err != nil {
			return 0, 0, err
		}
		rss, err := RSS(s.agent.Pid())
		return m["go_goroutines"], float64(rss) / (1 << 20), err
	}
	g0, r0, err := gr()
	if err != nil {
		return err
	}
	s.res["churn_goroutines_start"], s.res["churn_rss_start_mib"] = g0, r0
	ops := 0
	start := time.Now()
	for time.Since(start) < s.cfg.Churn || ops == 0 {
		if err := s.putAll(ctx, part, nil); err != nil {
			return err
		}
		if _, _, err := s.waitProgrammed(ctx, "churn delete", 5*time.Minute, func(sn *Snapshot) int { return k - sn.Count(part) }, k); err != nil {
			return err
		}
		if err := s.putAll(ctx, part, func(i int) string { return xcValue(part[i], i, files) }); err != nil {
			return err
		}
		if _, _, err := s.waitProgrammed(ctx, "churn re-add", 5*time.Minute, func(sn *Snapshot) int { return sn.Count(part) }, k); err != nil {
			return err
		}
		ops += 2 * k
	}
	s.res["churn_ops_per_s"] = float64(ops) / time.Since(start).Seconds()
	g1, r1, err := gr()
	if err != nil {
		return err
	}
	s.res["churn_goroutines_end"], s.res["churn_rss_end_mib"] = g1, r1
	return nil
}
