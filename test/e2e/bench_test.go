package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
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

// The dataplane benchmark: frames per second through one vppsim
// cross-connect beside dpdk-testpmd as the middle hop between the same two
// peers, in the same run, as a ratio. It runs only when asked:
//
//	VPPMESH_DATAPLANE_BENCH=full  repeated runs, medians, writes bench-results.{json,md}
//	VPPMESH_DATAPLANE_BENCH=quick one short run of each case (CI smoke), or any mode with -short
//
// scripts/bench-dataplane.sh is the front door. Nothing here asserts a time:
// quick mode checks that every case completes with sane numbers.
const benchEnv = "VPPMESH_DATAPLANE_BENCH"

type benchMeasure struct {
	PPS       []float64 `json:"pps"`        // per run: frames delivered to the sink / first-to-last-frame time
	Lost      []uint64  `json:"lost"`       // per run: sent - received
	MedianPPS float64   `json:"median_pps"` // median over runs
}

type benchCase struct {
	Name      string       `json:"name"`
	Path      string       `json:"path"`
	FrameSize int          `json:"frame_size"`
	RingSize  int          `json:"ring_size"`
	Frames    int          `json:"frames_per_run"`
	VPPSim    benchMeasure `json:"vppsim"`
	Testpmd   benchMeasure `json:"testpmd"`
	Ratio     float64      `json:"ratio_vppsim_to_testpmd"`
}

type benchReport struct {
	Generated string      `json:"generated"`
	Mode      string      `json:"mode"`
	Runs      int         `json:"runs"`
	CPUs      int         `json:"cpus"`
	Netns     bool        `json:"netns"`
	Cases     []benchCase `json:"cases"`
	Notes     []string    `json:"notes"`
}

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

// bencher runs one gen → middle → sink pass at a time in a shared env.
type bencher struct {
	e        *env
	nsGen    *lab.Namespace
	nsSink   *lab.Namespace
	nsTP     *lab.Namespace
	seq      int
	parallel []string
}

// pass runs gen (--count n, as fast as the ring takes) into sink and returns
// the sink's delivered rate and the loss.
func (b *bencher) pass(genSock string, genID int, sinkSock string, sinkID int, size, ring, n int) (float64, uint64) {
	t := b.e.t
	t.Helper()
	b.seq++
	rs := strconv.Itoa(ring)
	sink := b.e.startCNFOn(b.nsSink, fmt.Sprintf("bsink%d", b.seq), "sink", sinkSock, sinkID,
		"--ring-size", rs, "--idle", "1s", "--log-level", "warn")
	sink.waitLinkUp()
	gen := b.e.startCNFOn(b.nsGen, fmt.Sprintf("bgen%d", b.seq), "gen", genSock, genID,
		"--ring-size", rs, "--size", strconv.Itoa(size), "--count", strconv.Itoa(n), "--log-level", "warn")
	g := gen.finish(false)
	s := sink.finish(false)
	if s.Received == 0 || s.PPS <= 0 || math.IsNaN(s.PPS) || math.IsInf(s.PPS, 0) {
		t.Fatalf("pass %d (%dB, ring %d): sink %+v, gen %+v", b.seq, size, ring, s, g)
	}
	if s.Received > g.Sent || s.Duplicates != 0 {
		t.Fatalf("pass %d: received %d of %d sent, %d duplicates", b.seq, s.Received, g.Sent, s.Duplicates)
	}
	return s.PPS, g.Sent - s.Received
}

func TestDataplaneBench(t *testing.T) {
	mode := os.Getenv(benchEnv)
	if mode == "" {
		t.Skipf("the dataplane benchmark runs only with %s=quick|full (scripts/bench-dataplane.sh)", benchEnv)
	}
	if testing.Short() {
		mode = "quick"
	}
	testpmdPath(t)
	runs, small, large := 5, 2000000, 500000
	if mode == "quick" {
		runs, small, large = 1, 20000, 5000
	}
	// The dataplane benchmark measures vppsim against dpdk-testpmd (its
	// report has one vppsim column); it is a benchmark, not part of the
	// vppsim/VPP test matrix.
	e := newEnv(t, vpptarget.Start(t, vpptarget.Sim, vpptarget.Options{SimBinary: bin("vppsim")}))
	e.benchmark = true
	ok, _ := e.lab.Netns()
	b := &bencher{e: e, nsGen: e.ns("gen"), nsSink: e.ns("sink"), nsTP: e.ns("testpmd")}
	rep := benchReport{Generated: time.Now().UTC().Format(time.RFC3339), Mode: mode, Runs: runs, CPUs: runtime.NumCPU(), Netns: ok}

	rings := []int{1024, 16384}
	// One cross-connect per ring size; vppsim's memif master takes the ring the
	// slave (the CNF) asks for, as VPP does.
	for i, ring := range rings {
		e.putXC(fmt.Sprintf("bench%d", ring), memifEnd(e.memif, 1+2*i, "ring_size", ring), memifEnd(e.memif, 2+2*i, "ring_size", ring))
	}
	for _, size := range []int{64, 1500} {
		n := small
		if size > 64 {
			n = large
		}
		for i, ring := range rings {
			c := benchCase{Name: fmt.Sprintf("memif-xconnect-%dB-ring%d", size, ring), Path: "cnf gen → memif → [middle] → memif → cnf sink",
				FrameSize: size, RingSize: ring, Frames: n}
			for r := 0; r < runs; r++ {
				// Alternate which middle hop goes first, so neither always
				// runs on a warmer machine.
				order := []bool{r%2 == 0, r%2 != 0}
				for _, vpp := range order {
					if vpp {
						pps, lost := b.pass(e.memif, 1+2*i, e.memif, 2+2*i, size, ring, n)
						c.VPPSim.PPS, c.VPPSim.Lost = append(c.VPPSim.PPS, pps), append(c.VPPSim.Lost, lost)
						continue
					}
					// A socket per run: a testpmd that crashed on exit leaves its socket behind.
					sock := e.lab.Path(fmt.Sprintf("tp-%d-%d-%d.sock", size, ring, r))
					tp := e.startTestpmd(b.nsTP, fmt.Sprintf("tp-%d-%d-%d", size, ring, r), 1, []string{
						memifVdev(0, sock, 1, "server", 10), memifVdev(1, sock, 2, "server", 10)}, "io")
					e.waitFile(sock, 20*time.Second)
					pps, lost := b.pass(sock, 1, sock, 2, size, ring, n)
					tp.halt()
					c.Testpmd.PPS, c.Testpmd.Lost = append(c.Testpmd.PPS, pps), append(c.Testpmd.Lost, lost)
				}
			}
			finishCase(&c)
			t.Logf("%s: vppsim %.0f pps, testpmd %.0f pps, ratio %.2f", c.Name, c.VPPSim.MedianPPS, c.Testpmd.MedianPPS, c.Ratio)
			rep.Cases = append(rep.Cases, c)
		}
	}
	rep.Cases = append(rep.Cases, b.vhostCase(runs, small))
	rep.Notes = []string{
		"pps: frames the sink received over its first-to-last-frame time; the generator sends as fast as its ring takes (a full ring is retried).",
		"testpmd middle hop: dpdk-testpmd io forwarding between two memif server ports (or memif and vhost-user ports), the same CNF peers, same host, same run; ratio = median vppsim / median testpmd.",
		"2 shared CPUs: the generator, the middle hop and the sink compete; ring size decides how much a descheduled sink can absorb.",
		"open loop: the generator is not paced, so both middle hops drop (as VPP does) what the sink's full ring cannot take; lost counts those frames. pps is the delivered rate, not a no-drop rate.",
	}
	writeBenchReport(t, &rep, mode)
}

func finishCase(c *benchCase) {
	c.VPPSim.MedianPPS, c.Testpmd.MedianPPS = median(c.VPPSim.PPS), median(c.Testpmd.PPS)
	if c.Testpmd.MedianPPS > 0 {
		c.Ratio = c.VPPSim.MedianPPS / c.Testpmd.MedianPPS
	}
}

// vhostCase: memif → vppsim → vhost-user → testpmd virtio-user (io, port 0 to
// port 1) → vhost-user → vppsim → memif, beside the same peers with a testpmd
// (memif and vhost PMD ports) in vppsim's place.
func (b *bencher) vhostCase(runs, n int) benchCase {
	e := b.e
	e.t.Helper()
	const ring = 1024
	v1, v2 := e.lab.Path("bv1.sock"), e.lab.Path("bv2.sock")
	e.putXC("benchv1", memifEnd(e.memif, 11, "ring_size", ring), vhostEnd(v1, true))
	e.putXC("benchv2", vhostEnd(v2, true), memifEnd(e.memif, 12, "ring_size", ring))
	c := benchCase{Name: "memif-vhost-64B-ring1024", Path: "cnf gen → memif → [middle] → vhost-user → testpmd virtio-user io → vhost-user → [middle] → memif → cnf sink",
		FrameSize: 64, RingSize: ring, Frames: n}
	nsR := e.ns("virtio")
	for r := 0; r < runs; r++ {
		for _, vpp := range []bool{r%2 == 0, r%2 != 0} {
			if vpp {
				rf := e.startTestpmd(nsR, fmt.Sprintf("virtio-v-%d", r), 1, []string{virtioVdev(0, v1, false), virtioVdev(1, v2, false)}, "io")
				rf.waitForwarding()
				pps, lost := b.pass(e.memif, 11, e.memif, 12, 64, ring, n)
				rf.halt()
				c.VPPSim.PPS, c.VPPSim.Lost = append(c.VPPSim.PPS, pps), append(c.VPPSim.Lost, lost)
				continue
			}
			h1, h2 := e.lab.Path(fmt.Sprintf("hv1-%d.sock", r)), e.lab.Path(fmt.Sprintf("hv2-%d.sock", r))
			sock := e.lab.Path(fmt.Sprintf("mid-%d.sock", r))
			mid := e.startTestpmd(b.nsTP, fmt.Sprintf("mid-%d", r), 0, []string{
				memifVdev(0, sock, 1, "server", 10), "net_vhost0,iface=" + h1 + ",queues=1",
				"net_vhost1,iface=" + h2 + ",queues=1", memifVdev(1, sock, 2, "server", 10)}, "io")
			e.waitFile(h1, 20*time.Second)
			e.waitFile(h2, 20*time.Second)
			rf := e.startTestpmd(nsR, fmt.Sprintf("virtio-t-%d", r), 1, []string{virtioVdev(0, h1, false), virtioVdev(1, h2, false)}, "io")
			rf.waitForwarding()
			mid.waitForwarding()
			pps, lost := b.pass(sock, 1, sock, 2, 64, ring, n)
			rf.halt()
			mid.halt()
			c.Testpmd.PPS, c.Testpmd.Lost = append(c.Testpmd.PPS, pps), append(c.Testpmd.Lost, lost)
		}
	}
	finishCase(&c)
	e.t.Logf("%s: vppsim %.0f pps, testpmd %.0f pps, ratio %.2f", c.Name, c.VPPSim.MedianPPS, c.Testpmd.MedianPPS, c.Ratio)
	return c
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

// lossPct is the median loss of the runs as a percentage of the frames sent.
func lossPct(lost []uint64, frames int) float64 {
	f := make([]float64, len(lost))
	for i, l := range lost {
		f[i] = float64(l)
	}
	return 100 * median(f) / float64(frames)
}

func benchMarkdown(rep *benchReport) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Dataplane benchmark (%s, %d run(s) each, medians, %d CPUs, netns %v, %s)\n\n", rep.Mode, rep.Runs, rep.CPUs, rep.Netns, rep.Generated)
	sb.WriteString("| case | frame | ring | vppsim pps | testpmd pps | vppsim / testpmd | lost vppsim / testpmd (median % of sent) |\n")
	sb.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range rep.Cases {
		fmt.Fprintf(&sb, "| %s | %d B | %d | %.0f | %.0f | %.2f | %.1f%% / %.1f%% |\n", c.Name, c.FrameSize, c.RingSize,
			c.VPPSim.MedianPPS, c.Testpmd.MedianPPS, c.Ratio, lossPct(c.VPPSim.Lost, c.Frames), lossPct(c.Testpmd.Lost, c.Frames))
	}
	return sb.String()
}
