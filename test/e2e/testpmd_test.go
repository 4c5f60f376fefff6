package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/test/lab"
)

// dpdkPackages are what ./scripts/ci-deps.sh (make deps) installs for testpmd.
const dpdkPackages = "dpdk dpdk-dev librte-net-memif23 librte-net-vhost23 librte-net-virtio23"

// testpmdPath finds dpdk-testpmd. CI runs as root after `make deps`, so there
// a missing testpmd is a failure; elsewhere the test is skipped saying what
// to install.
func testpmdPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("dpdk-testpmd")
	if err == nil {
		return p
	}
	msg := "dpdk-testpmd not found: install Debian packages " + dpdkPackages + " (make deps does, as root)"
	if os.Geteuid() == 0 && os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// testpmd is a dpdk-testpmd process forwarding from start (no -i); closing
// its stdin stops it and makes it print its forward statistics.
type testpmd struct {
	e    *env
	p    *lab.Proc
	name string
}

// startTestpmd runs testpmd without hugepages (options found by the memif and
// vhostuser interop tests: EAL memory from one memfd, so virtio-user can hand
// it to the vhost backend) with the given vdevs and forwarding mode. One port
// forwards to itself (loop topology); more ports pair up 0↔1, 2↔3.
//
// lcore is the CPU of its forwarding thread (0 or 1): two testpmds busy-polling
// the same CPU starve each other, so a second one goes on the other CPU.
func (e *env) startTestpmd(ns *lab.Namespace, name string, lcore int, vdevs []string, fwd string) *testpmd {
	e.t.Helper()
	path := testpmdPath(e.t)
	prefix := fmt.Sprintf("vppmesh-e2e-%d-%s-%d", os.Getpid(), name, time.Now().UnixNano())
	// EAL's runtime directory outlives a killed testpmd: remove it at the end.
	e.t.Cleanup(func() { removeDPDKRuntime(prefix) })
	// nice: testpmd's forwarding lcore busy-polls a whole CPU. Two cores are
	// shared by every process here, and vppsim waiting behind a poller for a
	// time slice lets rings overflow; a little lower priority lets vppsim in
	// sooner (much lower starves testpmd itself).
	// stdbuf: line-buffered stdout, so "Press enter to exit" (printed once
	// forwarding runs) reaches us while testpmd runs instead of at exit.
	niceness := "5"
	if e.benchmark { // measured beside vppsim: same priority
		niceness = "0"
	}
	args := []string{"-n", niceness, "stdbuf", "-oL", path, "--no-huge", "-m", "1024", "--no-pci", "--file-prefix=" + prefix,
		"-l", "0,1", fmt.Sprintf("--main-lcore=%d", 1-lcore), "--log-level=lib.eal:notice"}
	for _, v := range vdevs {
		args = append(args, "--vdev="+v)
	}
	args = append(args, "--", "--total-num-mbufs=16384", "--no-mlockall", "--no-flush-rx",
		"--forward-mode="+fwd, "--auto-start", "--nb-cores=1", "--rxd=1024", "--txd=1024")
	if len(vdevs) == 1 {
		args = append(args, "--port-topology=loop")
	}
	p, err := e.lab.Start(e.ctx, lab.ProcSpec{Name: name, Namespace: ns, Path: "nice", Args: args, Stdin: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return &testpmd{e: e, p: p, name: name}
}

// waitForwarding waits until testpmd forwards: it prints "Press enter to
// exit" after every port's link is up (or its link wait gave up).
func (tp *testpmd) waitForwarding() {
	tp.e.t.Helper()
	tp.e.eventually(tp.name+" forwarding", 30*time.Second, func() error {
		if tp.p.Exited() {
			return fmt.Errorf("exited %v:\n%s\n%s", tp.p.ExitErr(), tp.p.Stdout(), tp.p.Stderr())
		}
		if !strings.Contains(tp.p.Stdout(), "Press enter to exit") {
			return fmt.Errorf("not forwarding yet")
		}
		return nil
	})
}

// memifVdev is a testpmd memif port; as client it sizes the rings (rsize is
// log2 of the slots, 10 = 1024 like VPP's default).
func removeDPDKRuntime(prefix string) {
	dirs := []string{"/var/run/dpdk"}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		dirs = append(dirs, filepath.Join(x, "dpdk"))
	}
	dirs = append(dirs, filepath.Join(os.TempDir(), "dpdk"))
	for _, d := range dirs {
		_ = os.RemoveAll(filepath.Join(d, prefix))
	}
}

func virtioVdev(n int, sock string, server bool) string {
	// queue_size: the default 256 descriptors overflow while the backend waits for a CPU.
	v := fmt.Sprintf("net_virtio_user%d,path=%s,queues=1,queue_size=1024", n, sock)
	if server {
		v += ",server=1"
	}
	return v
}

func memifVdev(n int, sock string, id int, role string, rsize int) string {
	return fmt.Sprintf("net_memif%d,role=%s,socket=%s,socket-abstract=no,id=%d,rsize=%d", n, role, sock, id, rsize)
}

// portStats are one port's forward statistics printed when testpmd stops.
type portStats struct{ RX, TX, RXDropped, TXDropped uint64 }

var (
	portHeader = regexp.MustCompile(`Forward statistics for port (\d+)`)
	rxLine     = regexp.MustCompile(`RX-packets:\s*(\d+)\s+RX-dropped:\s*(\d+)`)
	txLine     = regexp.MustCompile(`TX-packets:\s*(\d+)\s+TX-dropped:\s*(\d+)`)
)

// parseTestpmdStats reads the per-port blocks of testpmd's exit report.
func parseTestpmdStats(out string) map[int]portStats {
	stats := map[int]portStats{}
	port := -1
	for _, line := range strings.Split(out, "\n") {
		if m := portHeader.FindStringSubmatch(line); m != nil {
			port, _ = strconv.Atoi(m[1])
			continue
		}
		if strings.Contains(line, "Accumulated forward statistics") {
			port = -1
			continue
		}
		if port < 0 {
			continue
		}
		s := stats[port]
		if m := rxLine.FindStringSubmatch(line); m != nil {
			s.RX, _ = strconv.ParseUint(m[1], 10, 64)
			s.RXDropped, _ = strconv.ParseUint(m[2], 10, 64)
		}
		if m := txLine.FindStringSubmatch(line); m != nil {
			s.TX, _ = strconv.ParseUint(m[1], 10, 64)
			s.TXDropped, _ = strconv.ParseUint(m[2], 10, 64)
		}
		stats[port] = s
	}
	return stats
}

// halt ends testpmd (EOF on stdin) and waits, whatever its exit: the
// benchmark counts at the CNFs and must survive testpmd's own shutdown
// trouble (DPDK 22.11's memif server has crashed there with 16384-slot rings).
func (tp *testpmd) halt() {
	_ = tp.p.CloseStdin()
	select {
	case <-tp.p.Done():
	case <-time.After(20 * time.Second):
		tp.p.Kill()
	}
	if err := tp.p.ExitErr(); err != nil {
		tp.e.t.Logf("%s exited: %v", tp.name, err)
	}
}

// stop ends testpmd (EOF on stdin) and returns its per-port statistics.
func (tp *testpmd) stop() map[int]portStats {
	tp.e.t.Helper()
	_ = tp.p.CloseStdin()
	select {
	case <-tp.p.Done():
	case <-time.After(20 * time.Second):
		tp.p.Kill()
		tp.e.t.Fatalf("%s did not stop on EOF", tp.name)
	}
	st := parseTestpmdStats(tp.p.Stdout())
	if len(st) == 0 {
		tp.e.t.Fatalf("%s printed no forward statistics:\n%s", tp.name, tp.p.Stdout())
	}
	return st
}
