package vppsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/vhost_user"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// lockedBuffer collects a child process's output.
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

// virtioUser is dpdk-testpmd as a virtio-user frontend of a vhost-user socket,
// swapping MAC addresses and sending every frame back (no hugepages: see the
// vhostuser package's README for why these options).
type virtioUser struct {
	cmd   *exec.Cmd
	out   *lockedBuffer
	done  chan struct{}
	stdin *os.File
}

func startVirtioUser(t *testing.T, sock string, extra ...string) *virtioUser {
	t.Helper()
	bin, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		t.Skip("dpdk-testpmd not found: install Debian dpdk and librte-net-virtio23 to run the vhost-user packet test")
	}
	v := &virtioUser{out: &lockedBuffer{}, done: make(chan struct{})}
	v.cmd = exec.Command(bin, "--no-huge", "-m", "1024", "--no-pci",
		fmt.Sprintf("--file-prefix=vppsim-%d-%d", os.Getpid(), time.Now().UnixNano()),
		"-l", "0,1", "--log-level=lib.eal:notice", "--vdev=net_virtio_user0,path="+sock+",queues=1"+strings.Join(extra, ""),
		"--", "--total-num-mbufs=16384", "--no-mlockall",
		"--forward-mode=macswap", "--port-topology=loop", "--auto-start")
	v.cmd.Stdout, v.cmd.Stderr = v.out, v.out
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdin, v.stdin = pr, pw
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	pr.Close()
	go func() { v.cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		v.kill()
		if t.Failed() {
			t.Logf("testpmd output:\n%s", v.out.String())
		}
	})
	return v
}

// kill ends testpmd abruptly, as a crashing VM would.
func (v *virtioUser) kill() {
	select {
	case <-v.done:
		return
	default:
	}
	v.cmd.Process.Kill()
	<-v.done
	v.stdin.Close()
}

const probe = 0xffffffff

// probeTestpmd sends single frames until one comes back: frames sent before testpmd
// starts forwarding are lost (it flushes its queues after link up).
func probeTestpmd(t *testing.T, c *cnf) {
	t.Helper()
	c.recv(1<<20, 100*time.Millisecond) // frames reflected by an earlier frontend
	deadline := time.Now().Add(60 * time.Second)
	for {
		c.send([][]byte{testFrame(macB, macA, 64, probe)})
		for _, f := range c.recv(1, 50*time.Millisecond) {
			if binary.BigEndian.Uint32(f[14:]) == probe {
				time.Sleep(50 * time.Millisecond)
				c.recv(1<<20, 50*time.Millisecond) // late probes
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no frame came back from testpmd")
		}
	}
}

// reflectTestpmd sends n frames from the CNF through vppsim to testpmd and back, with
// a bounded number in flight so no ring overflows, until all came back.
func reflectTestpmd(t *testing.T, c *cnf, n int, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	seen := map[uint32]bool{}
	sent := 0
	for len(seen) < n {
		if time.Now().After(deadline) {
			t.Fatalf("sent %d, %d came back; %s", sent, len(seen), diag())
		}
		if sent < n && sent-len(seen) < 64 {
			k := min(32, n-sent)
			fs := make([][]byte, k)
			for i := range fs {
				fs[i] = testFrame(macB, macA, 64, uint32(sent+i))
			}
			c.send(fs)
			sent += k
		}
		for _, f := range c.recv(64, 5*time.Millisecond) {
			if !bytes.Equal(f[0:6], macA[:]) || !bytes.Equal(f[6:12], macB[:]) {
				t.Fatalf("frame not mac-swapped by testpmd: % x", f[:12])
			}
			if seq := binary.BigEndian.Uint32(f[14:]); seq != probe {
				seen[seq] = true
			}
		}
	}
}

func TestVhostUserWithMemifThroughTestpmd(t *testing.T) {
	if _, err := exec.LookPath("dpdk-testpmd"); err != nil {
		t.Skip("dpdk-testpmd not found: install Debian dpdk and librte-net-virtio23 to run the vhost-user packet test")
	}
	e := startPacketSim(t)
	sock := e.path("memif.sock")
	e.memifSocket(1, sock)
	m := e.createMemif(masterMemif(1, 1))
	vsock := e.path("vhost1.sock")
	rep, err := vhost_user.NewServiceClient(e.conn).CreateVhostUserIfV2(context.Background(),
		&vhost_user.CreateVhostUserIfV2{IsServer: true, SockFilename: vsock})
	if err != nil {
		t.Fatal(err)
	}
	v := uint32(rep.SwIfIndex)
	e.adminUp(v, true)
	e.xconnect(m, v, true)
	e.xconnect(v, m, true)
	c := newSlaveCNF(t, sock, memif.Config{ID: 1})
	e.waitLink(m, true)
	c.waitUp()

	// A second, memif-only cross-connect that must not notice testpmd's crash.
	o := newXCPairOn(t, e, 2, 3)

	pmd := startVirtioUser(t, vsock)
	diag := func() string {
		return fmt.Sprintf("memif %+v %v, vhost %+v %v", e.counters(m), e.port(m).Drops(), e.counters(v), e.port(v).Drops())
	}
	e.waitLink(v, true)
	probeTestpmd(t, c)
	bm, bv := e.counters(m), e.counters(v)
	const n = 2000
	reflectTestpmd(t, c, n, diag)
	eventually(t, "memif tx counted", func() bool { return e.counters(m).TxPackets-bm.TxPackets >= n })
	cm, cv := e.counters(m), e.counters(v)
	for what, d := range map[string]uint64{
		"memif rx": cm.RxPackets - bm.RxPackets, "vhost tx": cv.TxPackets - bv.TxPackets,
		"vhost rx": cv.RxPackets - bv.RxPackets, "memif tx": cm.TxPackets - bm.TxPackets,
	} {
		if d != n {
			t.Errorf("%s counted %d frames, want %d (memif %+v, vhost %+v)", what, d, n, cm, cv)
		}
	}
	if cm.Drops != bm.Drops || cv.Drops != bv.Drops {
		t.Errorf("drops during traffic: memif %+v vhost %+v", cm, cv)
	}

	// Kill the frontend mid-traffic.
	c.send(frames(macB, macA, 32, 64))
	pmd.kill()
	e.waitLink(v, false)
	through(t, o.ca, o.cb, frames(macB, macA, 100, 64))
	through(t, o.cb, o.ca, frames(macA, macB, 100, 64))

	startVirtioUser(t, vsock)
	e.waitLink(v, true)
	probeTestpmd(t, c)
	reflectTestpmd(t, c, 500, diag)
	if !c.ifc.IsUp() {
		t.Error("memif CNF link dropped during the vhost-user reconnect")
	}
}

// newXCPairOn is newXCPair on its own socket id with the given memif ids.
func newXCPairOn(t *testing.T, e *pktEnv, socketID, firstID uint32) xcPair {
	t.Helper()
	sock := e.path(fmt.Sprintf("memif%d.sock", socketID))
	e.memifSocket(socketID, sock)
	p := xcPair{a: e.createMemif(masterMemif(socketID, firstID)), b: e.createMemif(masterMemif(socketID, firstID+1))}
	e.xconnect(p.a, p.b, true)
	e.xconnect(p.b, p.a, true)
	p.ca = newSlaveCNF(t, sock, memif.Config{ID: firstID})
	p.cb = newSlaveCNF(t, sock, memif.Config{ID: firstID + 1})
	e.waitLink(p.a, true)
	e.waitLink(p.b, true)
	p.ca.waitUp()
	p.cb.waitUp()
	return p
}

// TestVhostUserClientModeReconnects has vppsim dial a listening frontend (testpmd
// server=1, VPP's client mode) and dial again after the frontend restarts.
func TestVhostUserClientModeReconnects(t *testing.T) {
	if _, err := exec.LookPath("dpdk-testpmd"); err != nil {
		t.Skip("dpdk-testpmd not found: install Debian dpdk and librte-net-virtio23 to run the vhost-user packet test")
	}
	e := startPacketSim(t)
	sock := e.path("memif.sock")
	e.memifSocket(1, sock)
	m := e.createMemif(masterMemif(1, 1))
	vsock := e.path("vm.sock")
	pmd := startVirtioUser(t, vsock, ",server=1")
	rep, err := vhost_user.NewServiceClient(e.conn).CreateVhostUserIfV2(context.Background(),
		&vhost_user.CreateVhostUserIfV2{SockFilename: vsock})
	if err != nil {
		t.Fatal(err)
	}
	v := uint32(rep.SwIfIndex)
	e.adminUp(v, true)
	e.xconnect(m, v, true)
	e.xconnect(v, m, true)
	c := newSlaveCNF(t, sock, memif.Config{ID: 1})
	e.waitLink(m, true)
	c.waitUp()
	diag := func() string {
		return fmt.Sprintf("memif %+v, vhost %+v %v", e.counters(m), e.counters(v), e.port(v).Drops())
	}
	e.waitLink(v, true)
	probeTestpmd(t, c)
	reflectTestpmd(t, c, 300, diag)
	pmd.kill()
	e.waitLink(v, false)
	// A killed testpmd leaves its listening socket file behind and refuses to bind over it.
	os.Remove(vsock)
	startVirtioUser(t, vsock, ",server=1")
	e.waitLink(v, true)
	probeTestpmd(t, c)
	reflectTestpmd(t, c, 300, diag)
}
