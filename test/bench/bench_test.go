package bench

import (
	"context"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

func TestSummarizeAndPercentile(t *testing.T) {
	s := Summarize([]float64{5, 1, 3, 2, 4})
	if s.Median != 3 || s.Min != 1 || s.Max != 5 || len(s.Samples) != 5 {
		t.Fatalf("Summarize = %+v", s)
	}
	if s.Samples[0] != 5 {
		t.Fatal("Summarize reordered the caller's samples")
	}
	if got := Summarize([]float64{1, 2}).Median; got != 1.5 {
		t.Fatalf("median of 1,2 = %v", got)
	}
	sorted := make([]float64, 101)
	for i := range sorted {
		sorted[i] = float64(i)
	}
	if p := Percentile(sorted, 99); p != 99 {
		t.Fatalf("p99 of 0..100 = %v", p)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Fatal("percentile of nothing should be NaN")
	}
	if z := Summarize(nil); z.Median != 0 || z.Samples != nil {
		t.Fatalf("Summarize(nil) = %+v", z)
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		"go_memstats_heap_inuse_bytes 1.5e+06\nvppmesh_ops_total{descriptor=\"x\"} 3\n"
	m, err := parseMetrics(strings.NewReader(text), []string{"go_goroutines", "go_memstats_heap_inuse_bytes"})
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 1.5e6 {
		t.Fatalf("parsed %v", m)
	}
	if _, err := parseMetrics(strings.NewReader(text), []string{"nope"}); err == nil {
		t.Fatal("a missing metric must be an error")
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines x\n"), []string{"go_goroutines"}); err == nil {
		t.Fatal("a bad value must be an error")
	}
}

func TestParseVmRSS(t *testing.T) {
	v, err := parseVmRSS("Name:\tx\nVmRSS:\t  2048 kB\nThreads: 3\n")
	if err != nil || v != 2048*1024 {
		t.Fatalf("parseVmRSS = %d, %v", v, err)
	}
	for _, bad := range []string{"Name: x\n", "VmRSS: 12 MB\n", "VmRSS: x kB\n"} {
		if _, err := parseVmRSS(bad); err == nil {
			t.Errorf("parseVmRSS(%q) accepted", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 2 with a space and a parenthesis, utime 250 and stime 50 ticks.
	stat := "1234 (vpp mesh) agent) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0\n"
	d, err := parseStatCPU(stat)
	if err != nil || d != 3*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 3s", d, err)
	}
	for _, bad := range []string{"1234 no-parens S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 5 0"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
}

func TestSnapshotProgrammed(t *testing.T) {
	s := &Snapshot{ByTag: map[string]uint32{"x-a": 1, "x-b": 2, "y-a": 3, "y-b": 4, "z-a": 5, "z-b": 6},
		Up: map[uint32]bool{1: true, 2: true, 3: true, 4: false, 5: true, 6: true},
		XC: map[uint32]uint32{1: 2, 2: 1, 3: 4, 4: 3, 5: 6, 6: 1}}
	if !s.Programmed("x") {
		t.Error("x is complete")
	}
	if s.Programmed("y") {
		t.Error("y-b is down")
	}
	if s.Programmed("z") {
		t.Error("z-b is cross-connected to the wrong interface")
	}
	if s.Programmed("w") {
		t.Error("w does not exist")
	}
	if got := s.Count([]string{"x", "y", "z", "w"}); got != 1 {
		t.Errorf("Count = %d", got)
	}
	if got := s.CountTagged("y-"); got != 2 {
		t.Errorf("CountTagged(y-) = %d", got)
	}
}

func TestMemifSlotsUnique(t *testing.T) {
	for _, files := range []int{1, 3, 4} {
		seen := map[[2]uint32]int{}
		for i := 0; i < 1000; i++ {
			for side := 0; side < 2; side++ {
				f, id := memifSlot(i, side, files)
				if id == 0 {
					t.Fatalf("memif id 0 for slot %d", i)
				}
				k := [2]uint32{uint32(f), id}
				if prev, dup := seen[k]; dup {
					t.Fatalf("files=%d: slot %d side %d reuses file %d id %d of slot %d", files, i, side, f, id, prev)
				}
				seen[k] = i
			}
		}
	}
}

func TestXCValueIsValidCrossConnect(t *testing.T) {
	v := xcValue("x7", 7, []string{"/tmp/a.sock", "/tmp/b.sock"})
	var xc vppmeshv1.CrossConnect
	if err := protojson.Unmarshal([]byte(v), &xc); err != nil {
		t.Fatalf("%s: %v", v, err)
	}
	if err := xconnect.Validate(XCKey("x7"), &xc); err != nil {
		t.Fatal(err)
	}
	if xc.GetA().GetMemif().GetId() == xc.GetB().GetMemif().GetId() {
		t.Fatalf("both ends share memif id: %s", v)
	}
	if !strings.HasPrefix(XCKey("x7"), "/vnf-agent/"+Label+"/"+xconnect.KeyPrefix) {
		t.Fatalf("key %s is not under the agent's cross-connect prefix", XCKey("x7"))
	}
}

func TestWriteCalls(t *testing.T) {
	counts := map[string]uint64{"memif_create_v2": 4, "sw_interface_dump": 9, "control_ping": 9,
		"want_interface_events": 1, "sw_interface_set_l2_xconnect": 2, "sockclnt_create": 1, "show_version": 1}
	if n := WriteCalls(counts); n != 6 {
		t.Fatalf("WriteCalls = %d, want 6", n)
	}
}

func report(metrics map[string][]float64) *Report {
	sr := SizeResult{N: 10000, Metrics: map[string]Summary{}}
	for k, v := range metrics {
		sr.Metrics[k] = Summarize(v)
	}
	r := &Report{Runs: 1, Sizes: []SizeResult{sr}, Units: metricUnits}
	r.Targets = checkTargets(r)
	return r
}

func saneMetrics() map[string][]float64 {
	m := map[string][]float64{}
	for k := range metricUnits {
		m[k] = []float64{1}
	}
	m["resync_unchanged_writes"] = []float64{0}
	return m
}

func TestSanity(t *testing.T) {
	if p := Sanity(report(saneMetrics()), true, nil); len(p) != 0 {
		t.Fatalf("sane report flagged: %v", p)
	}
	m := saneMetrics()
	m["resync_unchanged_writes"] = []float64{3}
	if p := Sanity(report(m), true, nil); len(p) != 1 || !strings.Contains(p[0], "wrote") {
		t.Fatalf("writes on unchanged resync not flagged: %v", p)
	}
	m = saneMetrics()
	m["bulk_s"] = []float64{0}
	delete(m, "churn_ops_per_s")
	if p := Sanity(report(m), true, nil); len(p) != 2 {
		t.Fatalf("zero bulk_s and missing churn should be 2 problems: %v", p)
	}
	if p := Sanity(report(m), true, []string{"latency"}); len(p) != 1 {
		t.Fatalf("with only latency, churn is not required but bulk is: %v", p)
	}
	m = saneMetrics()
	m["churn_goroutines_end"] = []float64{500}
	if p := Sanity(report(m), true, nil); len(p) != 1 || !strings.Contains(p[0], "goroutines") {
		t.Fatalf("goroutine growth not flagged: %v", p)
	}
}

func TestTargetsAndMarkdown(t *testing.T) {
	m := saneMetrics()
	m["bulk_s"] = []float64{4, 3, 5}
	m["rss_per_xc_kib"] = []float64{5}
	r := report(m)
	r.Machine = Machine{CPUs: 2, CPUModel: "Test CPU"}
	var bulk, mem TargetResult
	for _, tr := range r.Targets {
		switch tr.Metric {
		case "bulk_s":
			bulk = tr
		case "rss_per_xc_kib":
			mem = tr
		}
	}
	if bulk.Met || bulk.MissedBy != 2 || bulk.Value != 4 {
		t.Fatalf("bulk target: %+v", bulk)
	}
	if !mem.Met {
		t.Fatalf("memory target: %+v", mem)
	}
	md := r.Markdown()
	for _, want := range []string{"2 cores (Test CPU)", "| bulk_s | s | 4 (3–5) |", "missed: 2.0× the limit", "| agent memory per cross-connect | 10.0 KiB | 5 KiB | met |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func quietSim(t testing.TB) *vppsim.Sim {
	t.Helper()
	sim, err := vppsim.Start(context.Background(), vppsim.Config{Socket: filepath.Join(t.TempDir(), "api.sock"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// The floor must issue exactly the calls the agent needs per cross-connect
// (8 per cross-connect plus one per socket file) and leave VPP as it found it.
func TestFloorAgainstVppsim(t *testing.T) {
	sim := quietSim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := DialVPP(ctx, sim.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	before := len(sim.Interfaces())
	sim.ResetCallCounts()
	const n = 300
	files := []string{filepath.Join(t.TempDir(), "f0.sock"), filepath.Join(t.TempDir(), "f1.sock")}
	r, err := v.Floor(ctx, n, files)
	if err != nil {
		t.Fatal(err)
	}
	if r.WriteCalls != 8*n+len(files) || r.Seconds <= 0 {
		t.Fatalf("floor result %+v", r)
	}
	calls := sim.CallCounts()
	for msg, want := range map[string]uint64{"memif_create_v2": 2 * n, "sw_interface_tag_add_del": 2 * n,
		"sw_interface_set_flags": 2 * n, "sw_interface_set_l2_xconnect": 2 * n, "memif_delete": 2 * n} {
		if calls[msg] != want {
			t.Errorf("%s called %d times, want %d", msg, calls[msg], want)
		}
	}
	if after := len(sim.Interfaces()); after != before {
		t.Fatalf("floor left %d interfaces behind", after-before)
	}
}

// Snapshot and WatchInterfaces must see what a client did to VPP.
func TestSnapshotAndEventsAgainstVppsim(t *testing.T) {
	sim := quietSim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := DialVPP(ctx, sim.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	events, stop, err := v.WatchInterfaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// The floor creates, tags, ups and cross-connects pairs, then deletes
	// them: the events must show admin-up and deletion of each interface.
	const n = 5
	if _, err := v.Floor(ctx, n, []string{filepath.Join(t.TempDir(), "e.sock")}); err != nil {
		t.Fatal(err)
	}
	up, del := map[uint32]bool{}, map[uint32]bool{}
	deadline := time.After(10 * time.Second)
	for len(up) < 2*n || len(del) < 2*n {
		select {
		case ev := <-events:
			if ev.Deleted {
				del[ev.SwIfIndex] = true
			} else if ev.AdminUp {
				up[ev.SwIfIndex] = true
			}
		case <-deadline:
			t.Fatalf("saw %d admin-up and %d deleted events, want %d each", len(up), len(del), 2*n)
		}
	}
	snap, err := v.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.XC) != 0 || len(snap.ByTag) != 0 {
		t.Fatalf("after the floor's cleanup VPP still has %v / %v", snap.XC, snap.ByTag)
	}
}
