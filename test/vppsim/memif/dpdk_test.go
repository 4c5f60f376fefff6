package memif

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestInteropDPDKTestpmd runs DPDK's memif PMD as an independent peer, in each role
// against ours, and checks that frames we send come back unchanged and in order.
//
// What we learned about dpdk-testpmd (DPDK 22.11) for this:
//   - EAL options (before "--"): --no-huge -m 1024 --no-pci --file-prefix=<unique> -l 0,1
//     run it without hugepages or devices; -l 0,1 gives one main and one forwarding lcore.
//     --total-num-mbufs=16384 and --no-mlockall are testpmd options and go after "--";
//     EAL rejects them with "Invalid 'command line' arguments".
//   - The memif vdev is --vdev=net_memif0,role=client,socket=<path>,socket-abstract=no,id=<n>;
//     without socket-abstract=no the PMD uses an abstract socket named by the path.
//     "client"/"server" are DPDK's names for slave/master; the client creates the shared
//     memory, the server creates the socket file.
//   - With a single port, --port-topology=loop makes port 0 transmit what it receives
//     (the default "paired" topology needs an even number of ports); --forward-mode=io
//     reflects frames unchanged, macswap would swap the MAC addresses.
//   - When forwarding starts testpmd drains ("flushes") every rx queue and discards what
//     it finds. The memif link comes up while it waits for link status, so frames sent
//     right after link-up were silently eaten (port stats RX 32, forward stats RX 0);
//     --no-flush-rx keeps them.
//   - Without -i, testpmd forwards from start (--auto-start is implied) and then blocks on
//     "Press enter to exit" reading stdin: EOF or a newline stops it cleanly, so stdin is
//     kept open on a pipe for the test's duration. --stats-period=N would print port
//     statistics every N seconds instead of waiting on stdin.
func TestInteropDPDKTestpmd(t *testing.T) {
	bin, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		t.Skip("dpdk-testpmd not on PATH; install Debian packages dpdk and librte-net-memif23 (README's CI command does)")
	}
	t.Run("our-master", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "memif.sock")
		s, err := Listen(path, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m, err := NewMaster(s, Config{ID: 0, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Connect(); err != nil {
			t.Fatal(err)
		}
		reflectThroughTestpmd(t, bin, "client", path, m)
	})
	t.Run("our-slave", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "memif.sock")
		sl, err := NewSlave(path, Config{ID: 0, Logger: quietLogger(), RetryInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer sl.Close()
		if err := sl.Connect(); err != nil { // retries until testpmd has created the socket
			t.Fatal(err)
		}
		reflectThroughTestpmd(t, bin, "server", path, sl)
	})
}

// reflectThroughTestpmd starts testpmd with a memif port in role on path, waits for our
// interface to come up, sends frames and checks each comes back unchanged, in order.
func reflectThroughTestpmd(t *testing.T, bin, role, path string, ifc *Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--no-huge", "-m", "1024", "--no-pci",
		fmt.Sprintf("--file-prefix=vppmesh-memif-%d-%s", os.Getpid(), role), "-l", "0,1",
		"--vdev=net_memif0,role="+role+",socket="+path+",socket-abstract=no,id=0",
		"--", "--total-num-mbufs=16384", "--no-mlockall", "--no-flush-rx",
		"--forward-mode=io", "--port-topology=loop", "--nb-cores=1")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- cmd.Wait()
		cancel() // testpmd gone: stop waiting for it
	}()
	defer func() {
		stdin.Write([]byte("\n"))
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("testpmd output:\n%s", out.String())
		}
	}()
	if err := ifc.WaitUp(ctx); err != nil {
		t.Fatalf("%v\ntestpmd output:\n%s", err, out.String())
	}
	inf := ifc.Info()
	t.Logf("connected to %q (%s), ring size %d", inf.PeerName, inf.PeerIfName, inf.RingSize)

	const n = 2000
	frames := make([][]byte, n)
	for i := range frames {
		f := frame(i, 64+(i*37)%1400)
		copy(f[0:6], []byte{0x02, 0, 0, 0, 0, 1}) // locally administered unicast MACs
		copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 2})
		frames[i] = f
	}
	tx, rx := ifc.TxQueues()[0], ifc.RxQueues()[0]
	bufs := makeBufs(64, 2048)
	sent, got := 0, 0
	for got < n {
		if sent < n && sent-got < 256 {
			k, err := tx.TxBurst(frames[sent:min(sent+32, n)])
			if err != nil {
				t.Fatalf("TxBurst: %v", err)
			}
			sent += k
		}
		k, err := rx.RxBurst(bufs)
		if err != nil {
			t.Fatalf("RxBurst: %v", err)
		}
		for j := 0; j < k; j++ {
			if !bytes.Equal(bufs[j], frames[got]) {
				t.Fatalf("frame %d came back as %d bytes %x..., sent %d bytes", got, len(bufs[j]), head(bufs[j]), len(frames[got]))
			}
			bufs[j] = bufs[j][:cap(bufs[j])]
			got++
		}
		if k == 0 && sent == got {
			// Nothing in flight: the peer has not offered buffers yet (DPDK refills its
			// receive ring from its polling loop); try transmitting again shortly.
			select {
			case <-ctx.Done():
				t.Fatalf("testpmd never offered buffers: %v", ctx.Err())
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if k == 0 {
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			err := rx.PollWait(wctx, 50)
			wcancel()
			if err != nil {
				t.Fatalf("after %d sent, %d back: %v", sent, got, err)
			}
		}
	}
	t.Logf("%d frames reflected by testpmd", got)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
