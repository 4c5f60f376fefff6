package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/test/lab"
	"github.com/vppmesh/vppmesh/test/vpptarget"
)

// The dataplane benchmark: NDR and PDR (ndr_test.go) of each middle hop —
// vppsim, dpdk-testpmd io forwarding, real FD.io VPP — between the same
// generator and sink (vppmesh-cnf), under the same conditions, in one run;
// plus the generator and sink back to back ("direct"), which shows how far
// the peers themselves go. It runs only when asked:
//
//	VPPMESH_DATAPLANE_BENCH=full  the search per middle hop and row, writes bench-results.{json,md}
//	VPPMESH_DATAPLANE_BENCH=quick one short trial per row (CI smoke), or any mode with -short
//
// Knobs (full mode defaults): VPPMESH_BENCH_TRIAL (2s), VPPMESH_BENCH_REPEATS
// (2), VPPMESH_BENCH_SEARCHES (3), VPPMESH_BENCH_HOPS (direct,vppsim,testpmd,vpp),
// VPPMESH_BENCH_ROWS (all), VPPMESH_BENCH_OUT (output directory).
//
// scripts/bench-dataplane.sh is the front door. Nothing here asserts a speed:
// both modes check that every trial's counts add up.
const benchEnv = "VPPMESH_DATAPLANE_BENCH"

// The middle hop runs alone on cpuMiddle; the generator, the sink, the agent
// (and the vhost row's virtio-user testpmd) share cpuPeers.
const (
	cpuPeers   = 0
	cpuMiddle  = 1
	benchRing  = 1024
	benchBatch = 64
)

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// Middle hops and rows.
const (
	hopDirect  = "direct"
	hopVPPSim  = "vppsim"
	hopTestpmd = "testpmd"
	hopVPP     = "vpp"
)

var benchHops = []string{hopDirect, hopVPPSim, hopTestpmd, hopVPP}

type benchRow struct {
	Name string
	Size int
	Path string
	Hops []string // the middle hops this row applies to
}

var benchRows = []benchRow{
	{"memif-xc-64B", 64, "gen → memif → [hop: cross-connect] → memif → sink", benchHops},
	{"memif-xc-1500B", 1500, "gen → memif → [hop: cross-connect] → memif → sink", benchHops},
	{"memif-bd2-64B", 64, "gen → memif → [hop: bridge domain of 2, learning, flooding] → memif → sink", []string{hopVPPSim, hopVPP}},
	{"memif-vhost-64B", 64, "gen → memif → [hop] → vhost-user → testpmd virtio-user io → vhost-user → [hop] → memif → sink",
		[]string{hopVPPSim, hopTestpmd, hopVPP}},
	{"memif-vxlan-64B", 64, "gen → memif → [hop, node A] → veth (vppsim, VPP: VXLAN over AF_PACKET; testpmd: io over net_af_packet, no encapsulation) → [hop, node B] → memif → sink",
		[]string{hopVPPSim, hopTestpmd, hopVPP}},
}

// benchSettings are the conditions of one run, written into the results.
type benchSettings struct {
	Mode       string  `json:"mode"`
	TrialS     float64 `json:"trial_s"`
	Repeats    int     `json:"repeats"`
	Searches   int     `json:"searches"`
	Resolution float64 `json:"resolution"`
	PDRLossPct float64 `json:"pdr_loss_pct"`
	MaxPPS64   float64 `json:"max_pps_64b"`
	MaxPPSBig  float64 `json:"max_pps_1500b"`
	MinPPS     float64 `json:"min_pps"`
	MaxSteps   int     `json:"max_steps"`
	Ring       int     `json:"ring_size"`
	Burst      int     `json:"burst"`
	Pinned     bool    `json:"pinned"`
	Layout     string  `json:"layout"`
}

// benchFigure is NDR or PDR of one middle hop on one row, over the searches.
type benchFigure struct {
	PPS       float64 `json:"pps"` // median of the searches' highest passing rate
	MinPPS    float64 `json:"min_pps"`
	MaxPPS    float64 `json:"max_pps"`
	FirstFail float64 `json:"first_fail_pps"` // median lowest failing rate (0: the ceiling passed)
	// CPUPerMpkt is the middle hop's CPU-seconds per million frames delivered
	// in the trials at PPS; CPUUtil its share of one CPU there.
	CPUPerMpkt float64 `json:"cpu_s_per_mpkt"`
	CPUUtil    float64 `json:"cpu_util"`
	Limit      string  `json:"limited_by"` // at the first failing rate
}

type benchCell struct {
	Row       string         `json:"row"`
	Path      string         `json:"path"`
	FrameSize int            `json:"frame_size"`
	Hop       string         `json:"middle_hop"`
	Skipped   string         `json:"skipped,omitempty"`
	NDR       benchFigure    `json:"ndr"`
	PDR       benchFigure    `json:"pdr"`
	Searches  []searchResult `json:"searches,omitempty"`
}

type benchReport struct {
	Generated string `json:"generated"`
	CPUs      int    `json:"cpus"`
	Netns     bool   `json:"netns"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start and the end:
	// the pinning means little if other work shares the CPUs.
	LoadAvg  [2]float64    `json:"loadavg"`
	Settings benchSettings `json:"settings"`
	Cells    []benchCell   `json:"cells"`
	// VPPRxPlacement is VPP's "show interface rx-placement" (input modes).
	VPPRxPlacement string   `json:"vpp_rx_placement,omitempty"`
	Notes          []string `json:"notes"`
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func envList(name string, all []string) []string {
	v := os.Getenv(name)
	if v == "" {
		return all
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func benchConfig(t *testing.T, mode string) benchSettings {
	s := benchSettings{Mode: mode, TrialS: 2, Repeats: envInt(t, "VPPMESH_BENCH_REPEATS", 2), Searches: envInt(t, "VPPMESH_BENCH_SEARCHES", 3),
		Resolution: 0.02, PDRLossPct: 0.5, MaxPPS64: 6e6, MaxPPSBig: 2e6, MinPPS: 1e4, MaxSteps: 16,
		Ring: benchRing, Burst: benchBatch, Pinned: runtime.NumCPU() >= 2}
	if mode == "quick" {
		s.TrialS, s.Repeats, s.Searches, s.MaxSteps, s.MaxPPS64, s.MaxPPSBig = 0.5, 1, 1, 1, 2e5, 1e5
	}
	if v := os.Getenv("VPPMESH_BENCH_TRIAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond {
			t.Fatalf("VPPMESH_BENCH_TRIAL=%q: want a duration of at least 100ms", v)
		}
		s.TrialS = d.Seconds()
	}
	if s.Pinned {
		s.Layout = fmt.Sprintf("middle hop alone on CPU %d (taskset, all threads; VPP also cpu { main-core %d }, no workers; testpmd --lcores 0@%d,1@%d); "+
			"generator, sink, agent and the vhost row's virtio-user testpmd on CPU %d", cpuMiddle, cpuMiddle, cpuMiddle, cpuMiddle, cpuPeers)
	} else {
		s.Layout = "unpinned: fewer than 2 CPUs"
	}
	return s
}

// bench is one run of the dataplane benchmark.
type bench struct {
	t   *testing.T
	set benchSettings
	seq int
	rep *benchReport
}

// hop is one middle hop's lab: its env (agent and VPP for vppsim and vpp),
// namespaces for the peers, and how to read its counters.
type hop struct {
	name   string
	e      *env
	nsGen  *lab.Namespace
	nsSink *lab.Namespace
	nsVirt *lab.Namespace
	pid    int // the middle hop's process (0: per trial, or none)
	stats  *statsReader
}

// path is one row on one middle hop: where the peers attach and what each
// trial starts and stops around them.
type path struct {
	genID, sinkID int
	sinkMaster    bool // direct: the sink listens, the generator connects
	// before starts per-trial processes; it returns the memif sockets the
	// generator and the sink use and the middle hop's processes (for CPU
	// time; two on the VXLAN row, one per node).
	before func(n int) (genSock, sinkSock string, pids []int)
	// stats are the middle hop's stats segments (none: after reports).
	stats []*statsReader
	// loose: the middle hop sends frames of its own (ARP on the VXLAN row),
	// so its transmit count may exceed its receive count.
	loose bool
	// after stops them; it returns the middle hop's counters when they come
	// from the processes (testpmd's exit report), ok false otherwise.
	after func() (midCounters, bool)
}

func TestDataplaneBench(t *testing.T) {
	mode := os.Getenv(benchEnv)
	if mode == "" {
		t.Skipf("the dataplane benchmark runs only with %s=quick|full (scripts/bench-dataplane.sh)", benchEnv)
	}
	if testing.Short() {
		mode = "quick"
	}
	if mode != "quick" && mode != "full" {
		t.Fatalf("%s=%q: want quick or full", benchEnv, mode)
	}
	testpmdPath(t)
	b := &bench{t: t, set: benchConfig(t, mode)}
	b.rep = &benchReport{Generated: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), Settings: b.set}
	b.rep.LoadAvg[0] = loadAvg()
	rows := envList("VPPMESH_BENCH_ROWS", nil)
	for _, name := range envList("VPPMESH_BENCH_HOPS", benchHops) {
		if !slices.Contains(benchHops, name) {
			t.Fatalf("VPPMESH_BENCH_HOPS: unknown middle hop %q (known: %s)", name, strings.Join(benchHops, ","))
		}
		before := len(b.rep.Cells)
		t.Run(name, func(t *testing.T) { b.runHop(t, name, rows) })
		if len(b.rep.Cells) == before && !t.Failed() {
			// A skipped hop (no VPP here) still gets its line in the results.
			why := "skipped"
			if name == hopVPP {
				_, why = vpptarget.Available()
			}
			for _, r := range benchRows {
				if slices.Contains(r.Hops, name) && (rows == nil || slices.Contains(rows, r.Name)) {
					b.rep.Cells = append(b.rep.Cells, benchCell{Row: r.Name, Path: r.Path, FrameSize: r.Size, Hop: name, Skipped: why})
				}
			}
		}
	}
	if t.Failed() {
		return
	}
	b.rep.LoadAvg[1] = loadAvg()
	b.rep.Notes = benchNotes(b.rep)
	writeBenchReport(t, b.rep, mode)
}

// runHop starts one middle hop with every row it serves configured, and
// searches each row.
func (b *bench) runHop(t *testing.T, name string, rows []string) {
	h := b.startHop(t, name)
	for _, r := range benchRows {
		if !slices.Contains(r.Hops, name) || (rows != nil && !slices.Contains(rows, r.Name)) {
			continue
		}
		cell := benchCell{Row: r.Name, Path: r.Path, FrameSize: r.Size, Hop: name}
		if ok, why := h.e.lab.Netns(); strings.Contains(r.Name, "vxlan") && !ok {
			cell.Skipped = "two nodes need network namespaces: " + why
			b.rep.Cells = append(b.rep.Cells, cell)
			continue
		}
		p := b.pathFor(h, r)
		maxPPS := b.set.MaxPPS64
		if r.Size > 64 {
			maxPPS = b.set.MaxPPSBig
		}
		cfg := searchConfig{MaxPPS: maxPPS, MinPPS: b.set.MinPPS, Resolution: b.set.Resolution, PDRLossPct: b.set.PDRLossPct,
			Repeats: b.set.Repeats, MaxSteps: b.set.MaxSteps}
		for range b.set.Searches {
			cell.Searches = append(cell.Searches, runSearch(cfg, func(rate float64) trialResult { return b.trial(h, p, r, rate) }))
		}
		cell.NDR = figure(cell.Searches, func(s searchResult) (float64, float64) { return s.NDRPass, s.NDRFail })
		cell.PDR = figure(cell.Searches, func(s searchResult) (float64, float64) { return s.PDRPass, s.PDRFail })
		t.Logf("%s on %s: NDR %.3f Mpps [%.3f–%.3f] (%s), PDR %.3f Mpps [%.3f–%.3f] (%s), %.3f CPU-s/Mpkt",
			r.Name, name, cell.NDR.PPS/1e6, cell.NDR.MinPPS/1e6, cell.NDR.MaxPPS/1e6, orNone(cell.NDR.Limit),
			cell.PDR.PPS/1e6, cell.PDR.MinPPS/1e6, cell.PDR.MaxPPS/1e6, orNone(cell.PDR.Limit), cell.NDR.CPUPerMpkt)
		b.rep.Cells = append(b.rep.Cells, cell)
	}
}

func orNone(s string) string {
	if s == "" {
		return "ceiling reached"
	}
	return s
}

// figure sums one goal over the searches: median and spread of the highest
// passing rate, the middle hop's CPU at it and who failed above it.
func figure(ss []searchResult, goal func(searchResult) (pass, fail float64)) benchFigure {
	var f benchFigure
	var passes, fails, cpu, util []float64
	for _, s := range ss {
		pass, fail := goal(s)
		passes, fails = append(passes, pass), append(fails, fail)
		if st := s.step(pass); st != nil {
			for _, tr := range st.Trials {
				if tr.Received > 0 {
					cpu = append(cpu, tr.MidCPUS/(float64(tr.Received)/1e6))
				}
				if tr.WindowS > 0 {
					util = append(util, tr.MidCPUS/tr.WindowS)
				}
			}
		}
		if st := s.step(fail); st != nil && f.Limit == "" {
			for _, tr := range st.Trials {
				if tr.Limit != "" {
					f.Limit = tr.Limit
					break
				}
			}
		}
	}
	if len(passes) > 0 {
		f.PPS, f.MinPPS, f.MaxPPS = median(passes), slices.Min(passes), slices.Max(passes)
		f.FirstFail = median(fails)
	}
	f.CPUPerMpkt, f.CPUUtil = median(cpu), median(util)
	return f
}

// startHop starts the middle hop (pinned) and configures every row on it.
func (b *bench) startHop(t *testing.T, name string) *hop {
	t.Helper()
	var e *env
	switch name {
	case hopVPPSim, hopVPP:
		impl := vpptarget.Sim
		if name == hopVPP {
			impl = vpptarget.VPP
		}
		tg := vpptarget.Start(t, impl, vpptarget.Options{SimBinary: bin("vppsim"), MainCore: cpuMiddle})
		e = newEnv(t, tg)
	default:
		e = newBareEnv(t)
	}
	h := &hop{name: name, e: e, nsGen: e.ns("gen"), nsSink: e.ns("sink"), nsVirt: e.ns("virtio")}
	b.rep.Netns, _ = e.lab.Netns()
	if e.agent != nil && b.set.Pinned {
		pinPid(t, e.agent.Pid(), cpuPeers)
	}
	if e.vpp == nil {
		return h
	}
	h.pid = e.vpp.Pid()
	if h.pid == 0 {
		t.Skip("the middle hop is an external VPP (VPP_SOCKET): it cannot be pinned or timed")
	}
	if b.set.Pinned {
		pinPid(t, h.pid, cpuMiddle)
	}
	sr, err := newStatsReader(e.vpp.StatsSocket, name == hopVPPSim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sr.close)
	h.stats = sr
	ring := "ring_size"
	e.putXC("bxc", memifEnd(e.memif, 1, ring, benchRing), memifEnd(e.memif, 2, ring, benchRing))
	var members []map[string]any
	for _, id := range []int{3, 4} {
		n := fmt.Sprintf("bbd%d", id)
		e.put("config/vpp/v2/interfaces/"+n, map[string]any{"name": n, "type": "MEMIF", "enabled": true,
			"memif": map[string]any{"master": true, "id": id, "socket_filename": e.memif, "ring_size": benchRing}})
		members = append(members, map[string]any{"name": n})
	}
	e.put("config/vpp/l2/v2/bridge-domain/bbd", map[string]any{"name": "bbd", "flood": true,
		"unknown_unicast_flood": true, "forward": true, "learn": true, "interfaces": members})
	e.waitState("config/vpp/l2/v2/bridge-domain/bbd", "CONFIGURED")
	e.putXC("bv1", memifEnd(e.memif, 5, ring, benchRing), vhostEnd(e.lab.Path("bv1.sock"), true))
	e.putXC("bv2", vhostEnd(e.lab.Path("bv2.sock"), true), memifEnd(e.memif, 6, ring, benchRing))
	if mode := os.Getenv("VPPMESH_BENCH_VPP_RXMODE"); mode != "" && mode != "polling" && mode != "interrupt" && mode != "adaptive" {
		t.Fatalf("VPPMESH_BENCH_VPP_RXMODE=%q: want polling, interrupt or adaptive", mode)
	}
	return h
}

// vppInputs applies VPPMESH_BENCH_VPP_RXMODE (polling, interrupt or
// adaptive) to VPP's memif and vhost-user receive queues — memif queues exist
// only while connected, so this runs in every trial once traffic flows — and
// records the rx placement VPP ends up with either way: whether VPP sleeps
// between frames belongs with its figures.
func (b *bench) vppInputs(e *env) {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	if mode := os.Getenv("VPPMESH_BENCH_VPP_RXMODE"); mode != "" {
		ifs, err := e.vpp.Interfaces(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range ifs {
			if strings.HasPrefix(i.Name, "memif") || strings.HasPrefix(i.Name, "VirtualEthernet") {
				// A memif of another row has no queues now: VPP refuses, fine.
				_, _ = e.vpp.CLI(ctx, "set interface rx-mode "+i.Name+" "+mode)
			}
		}
	}
	if b.rep.VPPRxPlacement != "" {
		return
	}
	out, err := e.vpp.CLI(ctx, "show interface rx-placement")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VPP rx placement during traffic:\n%s", out)
	b.rep.VPPRxPlacement = strings.TrimSpace(out)
}

// newBareEnv is a lab without VPP or agent (direct and testpmd hops).
func newBareEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := lab.New(ctx, lab.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, lab: l}
	t.Cleanup(func() {
		if t.Failed() {
			var sb strings.Builder
			l.LogTails(&sb, 20000)
			t.Logf("process logs:\n%s", sb.String())
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	return e
}

func pinPid(t *testing.T, pid, cpu int) {
	t.Helper()
	if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("taskset pid %d to CPU %d: %v: %s", pid, cpu, err, out)
	}
}

// pathFor wires one row on one middle hop.
func (b *bench) pathFor(h *hop, r benchRow) path {
	e := h.e
	if strings.Contains(r.Name, "vxlan") {
		return b.vxlanPath(h)
	}
	vhost := strings.Contains(r.Name, "vhost")
	switch h.name {
	case hopDirect:
		return path{genID: 1, sinkID: 1, sinkMaster: true,
			before: func(n int) (string, string, []int) {
				sock := e.lab.Path(fmt.Sprintf("direct-%d.sock", n))
				return sock, sock, nil
			},
			after: func() (midCounters, bool) { return midCounters{}, false }}
	case hopTestpmd:
		var mid, virt *testpmd
		return path{genID: 1, sinkID: 2,
			before: func(n int) (string, string, []int) {
				sock := e.lab.Path(fmt.Sprintf("tp-%d.sock", n))
				vdevs := []string{memifVdev(0, sock, 1, "server", 10), memifVdev(1, sock, 2, "server", 10)}
				var h1, h2 string
				if vhost {
					h1, h2 = e.lab.Path(fmt.Sprintf("tv1-%d.sock", n)), e.lab.Path(fmt.Sprintf("tv2-%d.sock", n))
					vdevs = []string{memifVdev(0, sock, 1, "server", 10), "net_vhost0,iface=" + h1 + ",queues=1",
						"net_vhost1,iface=" + h2 + ",queues=1", memifVdev(1, sock, 2, "server", 10)}
				}
				mid = b.testpmd(e, h.nsGen, fmt.Sprintf("tpmid-%d", n), cpuMiddle, vdevs)
				e.waitFile(sock, 20*time.Second)
				if vhost {
					e.waitFile(h1, 20*time.Second)
					e.waitFile(h2, 20*time.Second)
					virt = b.testpmd(e, h.nsVirt, fmt.Sprintf("tpvirt-%d", n), cpuPeers, []string{virtioVdev(0, h1, false), virtioVdev(1, h2, false)})
					virt.waitForwarding()
					mid.waitForwarding()
				}
				return sock, sock, []int{mid.p.Pid()}
			},
			after: func() (midCounters, bool) {
				if virt != nil {
					virt.halt()
					virt = nil
				}
				mid.halt()
				var m midCounters
				for _, ps := range parseTestpmdStats(mid.p.Stdout()) {
					m.Rx += ps.RX
					m.Tx += ps.TX
					m.TxFull += ps.TXDropped
					m.Drops += ps.RXDropped
				}
				return m, true
			}}
	}
	// vppsim and VPP: configured once in startHop.
	p := path{genID: 1, sinkID: 2, stats: []*statsReader{h.stats},
		before: func(int) (string, string, []int) { return e.memif, e.memif, []int{h.pid} },
		after:  func() (midCounters, bool) { return midCounters{}, false }}
	switch {
	case strings.Contains(r.Name, "bd2"):
		p.genID, p.sinkID = 3, 4
	case vhost:
		var virt *testpmd
		p.genID, p.sinkID = 5, 6
		p.before = func(n int) (string, string, []int) {
			virt = b.testpmd(e, h.nsVirt, fmt.Sprintf("virt-%d", n), cpuPeers,
				[]string{virtioVdev(0, e.lab.Path("bv1.sock"), false), virtioVdev(1, e.lab.Path("bv2.sock"), false)})
			virt.waitForwarding()
			return e.memif, e.memif, []int{h.pid}
		}
		p.after = func() (midCounters, bool) {
			virt.halt()
			return midCounters{}, false
		}
	}
	return p
}

// testpmd starts dpdk-testpmd for the benchmark: io forwarding, both lcores
// (main, which sleeps on stdin, and the forwarding one) on cpu, 4k pages,
// bursts of benchBatch and rings of benchRing like the CNFs.
func (b *bench) testpmd(e *env, ns *lab.Namespace, name string, cpu int, vdevs []string) *testpmd {
	e.t.Helper()
	tp := testpmdPath(e.t)
	prefix := fmt.Sprintf("vppmesh-bench-%d-%s-%d", os.Getpid(), name, time.Now().UnixNano())
	e.t.Cleanup(func() { removeDPDKRuntime(prefix) })
	c := strconv.Itoa(cpu)
	if !b.set.Pinned {
		c = "0"
	}
	args := []string{"-c", c, "stdbuf", "-oL", tp, "--no-huge", "-m", "1024", "--no-pci", "--file-prefix=" + prefix,
		fmt.Sprintf("--lcores=0@%s,1@%s", c, c), "--main-lcore=0", "--log-level=lib.eal:notice"}
	for _, v := range vdevs {
		args = append(args, "--vdev="+v)
	}
	args = append(args, "--", "--total-num-mbufs=16384", "--no-mlockall", "--no-flush-rx", "--forward-mode=io", "--auto-start",
		"--nb-cores=1", fmt.Sprintf("--rxd=%d", benchRing), fmt.Sprintf("--txd=%d", benchRing), fmt.Sprintf("--burst=%d", benchBatch))
	p, err := e.lab.Start(e.ctx, lab.ProcSpec{Name: name, Namespace: ns, Path: "taskset", Args: args, Stdin: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return &testpmd{e: e, p: p, name: name}
}

// peer starts a generator or sink pinned to cpuPeers.
func (b *bench) peer(h *hop, ns *lab.Namespace, name, mode, sock string, id int, args ...string) *cnf {
	e := h.e
	e.t.Helper()
	c := &cnf{e: e, stats: e.lab.Path(name + ".stats.json")}
	all := []string{"-c", strconv.Itoa(cpuPeers), bin("vppmesh-cnf"), mode, "--socket", sock, "--id", strconv.Itoa(id),
		"--stats-file", c.stats, "--stats-interval", "10ms", "--log-level", "warn",
		"--ring-size", strconv.Itoa(benchRing), "--batch", strconv.Itoa(benchBatch)}
	all = append(all, args...)
	p, err := e.lab.Start(e.ctx, lab.ProcSpec{Name: name, Namespace: ns, Path: "taskset", Args: all})
	if err != nil {
		e.t.Fatal(err)
	}
	c.p = p
	return c
}

// trial offers rate for the trial length and counts at every component.
func (b *bench) trial(h *hop, p path, r benchRow, rate float64) trialResult {
	t := h.e.t
	t.Helper()
	b.seq++
	n := b.seq
	trialDur := time.Duration(b.set.TrialS * float64(time.Second))
	genSock, sinkSock, pids := p.before(n)
	m0 := readAll(t, p.stats)
	var sinkArgs []string
	if p.sinkMaster {
		sinkArgs = append(sinkArgs, "--role", "master")
	}
	sink := b.peer(h, h.nsSink, fmt.Sprintf("sink-%d", n), "sink", sinkSock, p.sinkID, sinkArgs...)
	if p.sinkMaster {
		h.e.waitFile(sinkSock, 20*time.Second)
	} else {
		sink.waitLinkUp()
	}
	gen := b.peer(h, h.nsGen, fmt.Sprintf("gen-%d", n), "gen", genSock, p.genID, "--rate", strconv.FormatFloat(rate, 'f', 0, 64),
		"--duration", trialDur.String(), "--size", strconv.Itoa(r.Size), "--stream", strconv.Itoa(n), "--linger", "1500ms")
	// The CPU window: from the first frame, one trial length.
	h.e.eventually(gen.p.Name+" first frame", 20*time.Second, func() error {
		if gen.p.Exited() {
			return nil
		}
		s, err := gen.live()
		if err != nil {
			return err
		}
		if s.Sent == 0 {
			return fmt.Errorf("nothing sent yet")
		}
		return nil
	})
	if h.name == hopVPP {
		b.vppInputs(h.e)
	}
	c0, t0 := b.cpu(pids), time.Now()
	time.Sleep(time.Until(t0.Add(trialDur)))
	c1, t1 := b.cpu(pids), time.Now()
	// The generator lingers with its link up: the middle hop is stopped
	// (testpmd reports its counters) while both peers are still connected,
	// as a memif port's counters go when its peer leaves.
	b.settle(h.e, gen, sink)
	mid, fromProc := p.after()
	g := gen.finish(false)
	s := sink.finish(true)
	if len(p.stats) > 0 && !fromProc {
		time.Sleep(150 * time.Millisecond) // vppsim publishes counters every 100 ms
		mid = readAll(t, p.stats).sub(m0)
	}
	// The offered load runs over the generator's own sending time (first to
	// last frame): a late start (link set-up, a slow first wake-up) is not
	// loss, a stall or back-pressure in the middle is.
	// Capped at the trial length: a generator held back by a full ring sends
	// its last frames after its deadline. A generator that started more than
	// a tenth of the trial late is held to the whole trial (and so counts as
	// short): a late start must not shrink the offered load.
	dur := min(g.DurationS, b.set.TrialS)
	if dur < 0.9*b.set.TrialS {
		dur = b.set.TrialS
	}
	tr := trialResult{RatePPS: rate, DurationS: dur, Offered: uint64(rate * dur), Sent: g.Sent, Received: s.Received,
		GenRingFull: g.TxRingFull, SinkRxDrops: s.RxDrops, Mid: mid, MidCPUS: c1 - c0, WindowS: t1.Sub(t0).Seconds()}
	if s.Received > g.Sent || s.Duplicates != 0 || s.Foreign != 0 {
		t.Fatalf("trial %d (%s on %s at %.0f pps): sink received %d of %d sent, %d duplicates, %d foreign",
			n, r.Name, h.name, rate, s.Received, g.Sent, s.Duplicates, s.Foreign)
	}
	// The middle hop cannot have forwarded fewer frames than the sink got
	// (twice each on the vhost row), nor more than it received.
	if h.name != hopDirect && (mid.Tx < s.Received || (!p.loose && mid.Tx > mid.Rx)) {
		t.Fatalf("trial %d (%s on %s): middle hop rx %d tx %d, sink received %d: its counters do not add up",
			n, r.Name, h.name, mid.Rx, mid.Tx, s.Received)
	}
	tr.account(benchBatch, h.name == hopDirect)
	t.Logf("trial %d %s %s %.0f pps: sent %d/%d recv %d loss %.4f%% ring-full %d mid rx %d tx %d txfull %d drops %d cpu %.2fs/%.2fs %s",
		n, r.Name, h.name, rate, tr.Sent, tr.Offered, tr.Received, tr.LossPct, tr.GenRingFull, mid.Rx, mid.Tx, mid.TxFull, mid.Drops,
		tr.MidCPUS, tr.WindowS, tr.Limit)
	if len(mid.Errors) > 0 {
		t.Logf("trial %d middle hop error counters: %v", n, mid.Errors)
	}
	return tr
}

// settle waits until the generator has sent its last frame and the sink's
// count has stopped moving.
func (b *bench) settle(e *env, gen, sink *cnf) {
	e.t.Helper()
	var last [2]uint64
	still := 0
	e.eventually("trial settles", 20*time.Second, func() error {
		time.Sleep(30 * time.Millisecond)
		g, err := gen.live()
		if err != nil {
			return err
		}
		s, err := sink.live()
		if err != nil {
			return err
		}
		now := [2]uint64{g.Sent, s.Received}
		if now != last {
			last, still = now, 0
			return fmt.Errorf("sent %d received %d, still moving", g.Sent, s.Received)
		}
		if still++; still < 3 {
			return fmt.Errorf("checking")
		}
		return nil
	})
}

// cpu is the middle hop's CPU time so far, all its processes (0 without).
func (b *bench) cpu(pids []int) float64 {
	var sum float64
	for _, pid := range pids {
		s, err := procCPUSeconds(pid)
		if err != nil {
			b.t.Fatalf("middle hop CPU time: %v", err)
		}
		sum += s
	}
	return sum
}

// readAll sums the counters of several stats segments (both VXLAN nodes).
func readAll(t *testing.T, rs []*statsReader) midCounters {
	t.Helper()
	var m midCounters
	for _, r := range rs {
		m = m.add(r.mustRead(t))
	}
	return m
}

// writeBenchReport writes bench-results.json and .md: into
// VPPMESH_BENCH_OUT, else this directory in full mode, else the test's temp dir.
func writeBenchReport(t *testing.T, rep *benchReport, mode string) {
	t.Helper()
	dir := os.Getenv("VPPMESH_BENCH_OUT")
	if dir == "" {
		dir = "."
		if mode == "quick" {
			dir = t.TempDir()
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-results.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	md := benchMarkdown(rep)
	if err := os.WriteFile(filepath.Join(dir, "bench-results.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s/bench-results.{json,md}\n%s", dir, md)
}

// loadAvg is the 1-minute load average (0 when unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// benchNotes says how to read the figures, including whether the generator
// and sink outran every middle hop (the direct row against the others).
func benchNotes(rep *benchReport) []string {
	notes := []string{
		"NDR: highest offered rate with no frame lost in every repeat; PDR: loss at most " + strconv.FormatFloat(rep.Settings.PDRLossPct, 'f', -1, 64) +
			" % in every repeat. A rate is offered for one trial length by the generator's token bucket; loss = frames offered and not counted at the sink.",
		"Spread: lowest and highest figure over the independent searches; first fail: the lowest rate that failed, so the true figure lies between.",
		"limited by: at the first failing rate, who lost frames by their own counters: the generator (could not keep the rate with room in its ring), " +
			"the middle hop (left the generator's ring full, or dropped), the sink (its ring full at the middle hop's transmit).",
		"CPU s/Mpkt: the middle hop's user+system CPU (/proc/<pid>/stat, all threads) over the trial's steady part, per million frames delivered. " +
			"Busy-polling hops (testpmd, VPP polling) use their whole CPU at any rate: lower rates raise their figure.",
		"Conditions, the same for every middle hop: " + rep.Settings.Layout + "; 4k pages for all (VPP without hugepages, testpmd --no-huge, vppsim and CNFs in Go); " +
			fmt.Sprintf("memif rings %d slots (the CNFs, memif slaves, size them), bursts of %d at the CNFs and testpmd; ", rep.Settings.Ring, rep.Settings.Burst) +
			"the generator retries a full ring (so back-pressure shows as a shortfall, counted as loss); each middle hop keeps its own transmit policy " +
			"(VPP memif retries a full ring a few times within one call, testpmd io forwarding drops at once).",
		"Middle-hop counters are summed over all its interfaces: a frame counts once per interface it enters or leaves " +
			"(twice on the vhost row, on both nodes and the tunnel on the VXLAN row).",
		"VXLAN row: two nodes (network namespaces, a veth underlay); both nodes' middle-hop processes share the middle CPU and count together. " +
			"vppsim and VPP encapsulate in VXLAN over AF_PACKET; testpmd forwards memif ↔ net_af_packet without encapsulation (50 bytes less per frame), so its figure is a reference for the link, not the same work.",
		"vhost row: every frame crosses the middle hop twice; the virtio-user testpmd busy-polls the peers' CPU, so this row shares that CPU three ways; " +
			"a full ring at the middle hop's transmit there may be the virtio-user peer's, not the sink's.",
	}
	// The benchmark itself keeps about two CPUs busy at the top rates; much
	// more load means other work shared the pinned CPUs, and busy-polling
	// hops (testpmd, VPP) lose most from that.
	if l := max(rep.LoadAvg[0], rep.LoadAvg[1]); l > float64(rep.CPUs)+1 {
		notes = append([]string{fmt.Sprintf("WARNING: load average %.1f on %d CPUs during the run: other work shared the CPUs, the figures are not the middle hops'. Measure on a quiet machine.",
			l, rep.CPUs)}, notes...)
	}
	// Calibration: the generator and sink back to back against the best middle hop.
	for _, size := range []int{64, 1500} {
		var direct, best float64
		bestHop := ""
		for _, c := range rep.Cells {
			if c.FrameSize != size || c.Skipped != "" || !strings.Contains(c.Row, "-xc-") {
				continue
			}
			if c.Hop == hopDirect {
				direct = c.NDR.PPS
			} else if c.NDR.PPS > best {
				best, bestHop = c.NDR.PPS, c.Hop
			}
		}
		if direct == 0 || bestHop == "" {
			continue
		}
		verdict := "faster than every middle hop: the middle hops' figures are theirs"
		if direct <= best {
			verdict = "NOT faster than " + bestHop + ": that hop's figure is a floor, set by the peers"
		}
		notes = append(notes, fmt.Sprintf("%d B: generator → sink direct reaches NDR %.3f Mpps, best middle hop %s %.3f Mpps: the peers are %s.",
			size, direct/1e6, bestHop, best/1e6, verdict))
	}
	return notes
}

func benchMarkdown(rep *benchReport) string {
	var sb strings.Builder
	s := rep.Settings
	fmt.Fprintf(&sb, "Dataplane NDR/PDR (%s: trials of %gs × %d repeats, %d search(es), resolution %g %%, PDR ≤ %g %% loss; %d CPUs, load %.1f → %.1f, netns %v, %s)\n\n",
		s.Mode, s.TrialS, s.Repeats, s.Searches, 100*s.Resolution, s.PDRLossPct, rep.CPUs, rep.LoadAvg[0], rep.LoadAvg[1], rep.Netns, rep.Generated)
	fmt.Fprintf(&sb, "Core layout: %s.\n\n", s.Layout)
	vppNDR := map[string]float64{}
	for _, c := range rep.Cells {
		if c.Hop == hopVPP && c.Skipped == "" {
			vppNDR[c.Row] = c.NDR.PPS
		}
	}
	sb.WriteString("| row | middle hop | NDR Mpps [spread] | PDR Mpps [spread] | ÷ VPP (NDR) | CPU s/Mpkt at NDR (CPU use) | NDR limited by | PDR limited by |\n")
	sb.WriteString("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, c := range rep.Cells {
		if c.Skipped != "" {
			fmt.Fprintf(&sb, "| %s | %s | — | — | — | — | skipped: %s | |\n", c.Row, c.Hop, c.Skipped)
			continue
		}
		ratio := "—"
		if v := vppNDR[c.Row]; v > 0 && c.Hop != hopVPP {
			ratio = fmt.Sprintf("%.2f", c.NDR.PPS/v)
		}
		cpu := "—"
		if c.Hop != hopDirect && c.NDR.PPS > 0 {
			cpu = fmt.Sprintf("%.3f (%.0f %%)", c.NDR.CPUPerMpkt, 100*c.NDR.CPUUtil)
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Row, c.Hop, fig(c.NDR), fig(c.PDR), ratio, cpu,
			orNone(c.NDR.Limit), orNone(c.PDR.Limit))
	}
	sb.WriteString("\n")
	for _, n := range rep.Notes {
		sb.WriteString("- " + n + "\n")
	}
	if rep.VPPRxPlacement != "" {
		sb.WriteString("\nVPP's input modes during the run (`show interface rx-placement`):\n\n```\n" + rep.VPPRxPlacement + "\n```\n")
	}
	return sb.String()
}

// fig renders a figure: "≥" when the ceiling passed, the spread over searches.
func fig(f benchFigure) string {
	if f.PPS == 0 && f.FirstFail > 0 {
		return fmt.Sprintf("< %.3f", f.FirstFail/1e6)
	}
	pre := ""
	if f.FirstFail == 0 && f.PPS > 0 {
		pre = "≥ "
	}
	return fmt.Sprintf("%s%.3f [%.3f–%.3f]", pre, f.PPS/1e6, f.MinPPS/1e6, f.MaxPPS/1e6)
}
