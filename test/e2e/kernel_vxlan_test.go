package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestVxlanKernelPeer uses the Linux kernel's own VXLAN device as an
// independent peer: node B is no VPP but `ip link add … type vxlan id N
// remote <A> dstport 4789`. The test writes frames into that device (the
// kernel encapsulates them), node A's VPP decapsulates them into a memif
// where a reflecting CNF swaps the MACs and sends them back, VPP
// encapsulates them and the kernel decapsulates them: every frame comes back
// once, in order and byte for byte (MACs swapped).
func TestVxlanKernelPeer(t *testing.T) {
	for _, impl := range []string{"vppsim", "vpp"} {
		t.Run(impl, func(t *testing.T) { vxlanKernelPeer(t, impl) })
	}
}

func vxlanKernelPeer(t *testing.T, impl string) {
	tn := newTwoNodes(t)
	a := tn.node(0, impl)
	nsB := tn.ns[1].Name
	dev := "vxk"
	tn.ip("-n", nsB, "addr", "add", underlayB+"/24", "dev", tn.veth[1])
	// noudpcsum: over a veth the kernel leaves the UDP checksum to an
	// offload that never completes it, and VPP (like vppsim) drops such
	// packets as "bad udp checksum"; a zero checksum is valid over IPv4.
	if out, err := exec.Command("ip", "-n", nsB, "link", "add", dev, "type", "vxlan", "id", fmt.Sprint(vxVNI), "remote", underlayA,
		"local", underlayB, "dev", tn.veth[1], "dstport", "4789", "noudpcsum").CombinedOutput(); err != nil {
		if strings.Contains(string(out), "Unknown device type") || strings.Contains(string(out), "not supported") {
			t.Skipf("this kernel has no VXLAN devices: %s", bytes.TrimSpace(out))
		}
		t.Fatalf("ip link add %s type vxlan: %v: %s", dev, err, out)
	}
	tn.quiet(1, dev)
	tn.ip("-n", nsB, "link", "set", dev, "up")

	a.putXC("span", memifEnd(a.memif, 1), vxlanEnd(underlayB, vxVNI))
	refl := a.startCNF(tn.ns[0], "reflect", "reflect", 1, "--swap-macs")
	refl.waitLinkUp()

	fd, err := packetSocketIn(nsB, dev)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	macK, macC := [6]byte{0x02, 0xfe, 0, 0, 0x0b, 0x01}, [6]byte{0x02, 0xfe, 0, 0, 0x0a, 0x01}
	frame := func(seq uint32) []byte {
		f := make([]byte, 128)
		copy(f[0:6], macC[:])
		copy(f[6:12], macK[:])
		binary.BigEndian.PutUint16(f[12:14], 0x88b5)
		binary.BigEndian.PutUint32(f[14:18], seq)
		for i := 18; i < len(f); i++ {
			f[i] = byte(i * 7)
		}
		return f
	}
	reflected := func(f []byte) []byte {
		r := bytes.Clone(f)
		copy(r[0:6], f[6:12])
		copy(r[6:12], f[0:6])
		return r
	}
	buf := make([]byte, 2048)
	recv := func() ([]byte, bool) {
		for {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return nil, false // SO_RCVTIMEO
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			if n >= 18 && binary.BigEndian.Uint16(buf[12:14]) == 0x88b5 {
				return buf[:n], true
			}
		}
	}

	// Warm-up until one frame makes the round trip (ARP on both sides).
	deadline := time.Now().Add(20 * time.Second)
	for warm := uint32(1 << 31); ; warm++ {
		if _, err := unix.Write(fd, frame(warm)); err != nil {
			t.Fatalf("write to %s: %v", dev, err)
		}
		if _, ok := recv(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no frame came back through %s VXLAN ↔ the kernel's\n%s", impl, a.showInterfaces())
		}
	}
	for { // drain warm-up echoes
		if _, ok := recv(); !ok {
			break
		}
	}

	const n = 1000
	done := make(chan error, 1)
	go func() {
		for i := range uint32(n) {
			if _, err := unix.Write(fd, frame(i)); err != nil {
				done <- err
				return
			}
			if i%10 == 9 {
				time.Sleep(5 * time.Millisecond) // about 2,000 frames/s
			}
		}
		done <- nil
	}()
	var next uint32
	deadline = time.Now().Add(30 * time.Second)
	for next < n {
		f, ok := recv()
		if !ok {
			if time.Now().After(deadline) {
				t.Fatalf("got %d of %d frames back; the next never came\n%s", next, n, a.showInterfaces())
			}
			continue
		}
		seq := binary.BigEndian.Uint32(f[14:18])
		if seq >= 1<<31 {
			continue // a late warm-up echo
		}
		if seq != next {
			t.Fatalf("frame %d came back as seq %d (lost or reordered)", next, seq)
		}
		if want := reflected(frame(seq)); !bytes.Equal(f, want) {
			t.Fatalf("frame %d came back altered:\n got %x\nwant %x", seq, f, want)
		}
		next++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The cross-connect's counters saw the frames on both ways through VPP.
	a.eventually("agent counts the round trips", 15*time.Second, func() error {
		x, err := a.xcCounters("span")
		if err != nil {
			return err
		}
		if x.BtoA.RxPackets < n || x.AtoB.TxPackets < n {
			return fmt.Errorf("tunnel in %d, tunnel out %d, want ≥ %d", x.BtoA.RxPackets, x.AtoB.TxPackets, n)
		}
		return nil
	})
}

// packetSocketIn opens a raw packet socket on link in network namespace ns
// (a socket stays in the namespace it was created in). Receives time out
// after 200 ms; frames the socket sends are not read back.
func packetSocketIn(ns, link string) (int, error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("setns %s: %w", ns, err)
	}
	fd, serr := func() (int, error) {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return -1, err
		}
		proto := int(uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return -1, err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return -1, err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		// A deep buffer: the reader may be descheduled on a busy machine.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread stays in the other namespace: keep it locked so it
		// dies with its goroutine instead of running other code.
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, errors.Join(serr, fmt.Errorf("setns back: %w", err))
	}
	runtime.UnlockOSThread()
	if serr != nil {
		return -1, fmt.Errorf("packet socket on %s in %s: %w", link, ns, serr)
	}
	return fd, nil
}
