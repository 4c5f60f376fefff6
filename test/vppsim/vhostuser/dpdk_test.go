package vhostuser

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DPDK virtio-user interop.
//
// testpmd runs without hugepages: with --no-huge, DPDK's EAL backs its memory
// with one memfd (eal_legacy_hugepage_init, "nohuge" memfd, MAP_SHARED) and
// registers it as the segment-list fd, so virtio-user can pass it to the
// backend in SET_MEM_TABLE. No --in-memory or --single-file-segments flag is
// needed (--no-huge implies single-file segments); --no-pci keeps it off the
// host's devices; -m 1024 sizes that memfd. Descriptor addresses are then
// process virtual addresses, equal to the regions' guest_phys_addr and
// userspace_addr. The command lines that work (DPDK 22.11, Debian):
//
//	dpdk-testpmd --no-huge -m 1024 --no-pci --file-prefix=<unique> -l 0,1 \
//	  --vdev=net_virtio_user0,path=<sock>,queues=1 \
//	  -- --total-num-mbufs=16384 --no-mlockall \
//	  --forward-mode=macswap --port-topology=loop --auto-start
//
// (--total-num-mbufs and --no-mlockall are testpmd options: before "--" EAL
// rejects them.)
//
// and, with the backend connecting (vhostuser.Config{Client: true}), the
// same with --vdev=net_virtio_user0,path=<sock>,queues=1,server=1.

const testpmdBin = "dpdk-testpmd"

type testpmd struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when testpmd exits
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startTestpmd(t *testing.T, vdev string, extra ...string) *testpmd {
	t.Helper()
	bin, err := exec.LookPath(testpmdBin)
	if err != nil {
		t.Skipf("%s not found: install Debian packages dpdk and librte-net-virtio23 to run the virtio-user interop test", testpmdBin)
	}
	args := []string{"--no-huge", "-m", "1024", "--no-pci",
		fmt.Sprintf("--file-prefix=vhostuser-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
		"-l", "0,1", "--log-level=lib.eal:notice", "--vdev=" + vdev,
		// --total-num-mbufs and --no-mlockall are testpmd's own options, after "--".
		"--", "--total-num-mbufs=16384", "--no-mlockall",
		"--forward-mode=macswap", "--port-topology=loop", "--auto-start"}
	args = append(args, extra...)
	tp := &testpmd{out: &syncBuffer{}, done: make(chan struct{})}
	tp.cmd = exec.Command(bin, args...)
	tp.cmd.Stdout, tp.cmd.Stderr = tp.out, tp.out
	// testpmd without -i waits for a line on stdin to quit; keep stdin open.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	tp.cmd.Stdin = pr
	tp.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tp.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	pr.Close()
	go func() { tp.cmd.Wait(); close(tp.done) }()
	t.Cleanup(func() {
		pw.Write([]byte("\n"))
		pw.Close()
		select {
		case <-tp.done:
		case <-time.After(10 * time.Second):
			tp.cmd.Process.Kill()
			<-tp.done
		}
		if t.Failed() {
			t.Logf("testpmd output:\n%s", tp.out.String())
		}
	})
	return tp
}

// ethFrame builds a 64-byte Ethernet frame with a sequence number.
func ethFrame(seq int) []byte {
	f := make([]byte, 64)
	copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 0x02})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 0x01})
	binary.BigEndian.PutUint16(f[12:], 0x88b5) // local experimental ethertype
	binary.BigEndian.PutUint32(f[14:], uint32(seq))
	return f
}

func reflectThroughTestpmd(t *testing.T, tp *testPort, pmd *testpmd, n int) {
	t.Helper()
	select {
	case up := <-tp.link:
		if !up {
			t.Fatal("link went down first")
		}
	case <-pmd.done:
		t.Fatalf("testpmd exited before the link came up")
	case <-time.After(60 * time.Second):
		t.Fatalf("testpmd never brought the link up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// testpmd flushes its RX queues when forwarding starts, after the link
	// is up, so frames sent before that are legitimately dropped (and its
	// stdout is block-buffered, so we cannot wait for its banner). Probe
	// until a frame comes back.
	const probe = 0xffffffff
	bufs := makeBufs(64, 2048)
	for forwarding := false; !forwarding; {
		select {
		case <-pmd.done:
			t.Fatal("testpmd exited before forwarding")
		case <-ctx.Done():
			t.Fatal("testpmd did not start forwarding")
		case <-time.After(10 * time.Millisecond):
		}
		tp.TxBurst([][]byte{ethFrame(probe)})
		for i := range bufs {
			bufs[i] = bufs[i][:0]
		}
		forwarding = tp.RxBurst(bufs) > 0
	}
	base := tp.Stats()
	seen := make(map[uint32]bool, n)
	sent := 0
	for len(seen) < n {
		select {
		case <-pmd.done:
			t.Fatalf("testpmd exited; sent %d, got back %d", sent, len(seen))
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("sent %d, got back %d of %d frames; stats %+v", sent, len(seen), n, tp.Stats())
		}
		// Keep at most 64 frames in flight so that neither testpmd's RX ring
		// nor its TX ring (256 each) overflows: every frame must come back.
		if sent < n && sent-len(seen) < 64 {
			var burst [][]byte
			for i := sent; i < n && len(burst) < 32; i++ {
				burst = append(burst, ethFrame(i))
			}
			sent += tp.TxBurst(burst)
		}
		for i := range bufs {
			bufs[i] = bufs[i][:0]
		}
		got := tp.RxBurst(bufs)
		for _, b := range bufs[:got] {
			if len(b) != 64 || binary.BigEndian.Uint16(b[12:]) != 0x88b5 {
				t.Fatalf("unexpected frame from testpmd: % x", b)
			}
			// macswap: destination and source exchanged.
			if !bytes.Equal(b[0:6], []byte{0x02, 0, 0, 0, 0, 0x01}) {
				t.Fatalf("frame not mac-swapped: % x", b[:12])
			}
			if seq := binary.BigEndian.Uint32(b[14:]); seq != probe {
				seen[seq] = true
			}
		}
		if got == 0 {
			select {
			case <-tp.RxReady():
			case <-time.After(time.Millisecond):
			}
		}
	}
	st := tp.Stats()
	t.Logf("reflected %d frames through testpmd; stats %+v", n, st)
	if st.TxPackets-base.TxPackets != uint64(n) || st.RxPackets-base.RxPackets < uint64(n) {
		t.Fatalf("stats %+v, before the counted run %+v", st, base)
	}
}

func TestDPDKVirtioUserBackendServer(t *testing.T) {
	if _, err := exec.LookPath(testpmdBin); err != nil {
		t.Skipf("%s not found: install Debian packages dpdk and librte-net-virtio23 to run the virtio-user interop test", testpmdBin)
	}
	sock := filepath.Join(t.TempDir(), "vu.sock")
	tp := openPort(t, Config{SocketPath: sock, Name: "VirtualEthernet0/0/0", Logger: testLogger(t)})
	pmd := startTestpmd(t, "net_virtio_user0,path="+sock+",queues=1")
	reflectThroughTestpmd(t, tp, pmd, 1000)
}

func TestDPDKVirtioUserBackendClient(t *testing.T) {
	if _, err := exec.LookPath(testpmdBin); err != nil {
		t.Skipf("%s not found: install Debian packages dpdk and librte-net-virtio23 to run the virtio-user interop test", testpmdBin)
	}
	sock := filepath.Join(t.TempDir(), "vu.sock")
	tp := openPort(t, Config{SocketPath: sock, Client: true, Name: "VirtualEthernet0/0/1",
		ReconnectInterval: 50 * time.Millisecond, Logger: testLogger(t)})
	pmd := startTestpmd(t, "net_virtio_user0,path="+sock+",queues=1,server=1")
	reflectThroughTestpmd(t, tp, pmd, 1000)
}

// testLogger sends the port's log lines to the test log, shown on failure or -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestDPDKVirtioUserTwoQueuePairs(t *testing.T) {
	if _, err := exec.LookPath(testpmdBin); err != nil {
		t.Skipf("%s not found: install Debian packages dpdk and librte-net-virtio23 to run the virtio-user interop test", testpmdBin)
	}
	sock := filepath.Join(t.TempDir(), "vu.sock")
	tp := openPort(t, Config{SocketPath: sock, Name: "VirtualEthernet0/0/2", MaxQueuePairs: 2, Logger: testLogger(t)})
	pmd := startTestpmd(t, "net_virtio_user0,path="+sock+",queues=2", "--rxq=2", "--txq=2")
	reflectThroughTestpmd(t, tp, pmd, 500)
	tp.mu.RLock()
	enabled := tp.rings[2].ready && tp.rings[3].ready
	tp.mu.RUnlock()
	if !enabled {
		t.Fatal("testpmd did not enable queue pair 1")
	}
}

// TestDPDKVirtioUserBackendRestart restarts the backend (as a vppsim or VPP
// restart would) while testpmd keeps listening with server=1: the new
// backend reconnects, testpmd renegotiates, and frames flow again.
func TestDPDKVirtioUserBackendRestart(t *testing.T) {
	if _, err := exec.LookPath(testpmdBin); err != nil {
		t.Skipf("%s not found: install Debian packages dpdk and librte-net-virtio23 to run the virtio-user interop test", testpmdBin)
	}
	sock := filepath.Join(t.TempDir(), "vu.sock")
	cfg := Config{SocketPath: sock, Client: true, Name: "VirtualEthernet0/0/3",
		ReconnectInterval: 50 * time.Millisecond, Logger: testLogger(t)}
	tp := openPort(t, cfg)
	pmd := startTestpmd(t, "net_virtio_user0,path="+sock+",queues=1,server=1")
	reflectThroughTestpmd(t, tp, pmd, 200)
	tp.Close()
	tp2 := openPort(t, cfg)
	reflectThroughTestpmd(t, tp2, pmd, 200)
}
