package vhostuser

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// TestMalformedMessagesDropOnlyThatFrontend feeds bad messages; each must end
// the offending connection, leave the port serving the next frontend and
// leave a second port's packet path untouched.
func TestMalformedMessagesDropOnlyThatFrontend(t *testing.T) {
	tp := openPort(t, Config{MaxQueuePairs: 2})
	other := openPort(t, Config{})
	of := connect(t, other, feOpts{})

	type step func(f *frontend) error
	send := func(req, flags uint32, pl []byte, fds ...int) step {
		return func(f *frontend) error { return f.rawSend(req, flags, pl, fds...) }
	}
	setup := func(o feOpts) step {
		return func(f *frontend) error { f.handshake(o); return nil }
	}
	v := flagVersion
	cases := []struct {
		name  string
		steps []step
	}{
		{"version 0", []step{send(reqGetFeatures, 0, nil)}},
		{"version 2", []step{send(reqGetFeatures, 2, nil)}},
		{"reply flag", []step{send(reqGetFeatures, v|flagReply, nil)}},
		{"oversize", []step{func(f *frontend) error {
			b := make([]byte, headerSize)
			putHeader(b, header{Request: reqSetMemTable, Flags: v, Size: 1 << 30})
			_, err := f.c.Write(b)
			return err
		}}},
		{"short SET_FEATURES", []step{send(reqSetFeatures, v, []byte{1, 2, 3, 4})}},
		{"unoffered feature", []step{send(reqSetFeatures, v, le64(1<<40))}},
		{"unoffered protocol feature", []step{send(reqSetProtocolFeatures, v, le64(1<<9))}},
		{"mem table 0 regions", []step{func(f *frontend) error {
			return f.rawSend(reqSetMemTable, v, state(0, 0), f.memfd)
		}}},
		{"mem table 9 regions", []step{func(f *frontend) error {
			return f.rawSend(reqSetMemTable, v, append(state(9, 0), make([]byte, 9*32)...), f.memfd)
		}}},
		{"mem table short payload", []step{func(f *frontend) error {
			return f.rawSend(reqSetMemTable, v, f.memTablePayload(feRegion)[:20], f.memfd)
		}}},
		{"mem table without fd", []step{func(f *frontend) error {
			return f.rawSend(reqSetMemTable, v, f.memTablePayload(feRegion))
		}}},
		{"mem table two fds", []step{func(f *frontend) error {
			return f.rawSend(reqSetMemTable, v, f.memTablePayload(feRegion), f.memfd, f.memfd)
		}}},
		{"mem table beyond file", []step{func(f *frontend) error {
			return f.rawSend(reqSetMemTable, v, f.memTablePayload(feRegion+1<<20), f.memfd)
		}}},
		{"mem table size zero", []step{func(f *frontend) error {
			return f.rawSend(reqSetMemTable, v, f.memTablePayload(0), f.memfd)
		}}},
		{"mem table wraps", []step{func(f *frontend) error {
			p := f.memTablePayload(feRegion)
			binary.LittleEndian.PutUint64(p[8:], ^uint64(0)-10)
			return f.rawSend(reqSetMemTable, v, p, f.memfd)
		}}},
		{"vring index out of range", []step{send(reqSetVringNum, v, state(4, 256))}},
		{"vring size not power of 2", []step{send(reqSetVringNum, v, state(0, 300))}},
		{"vring size too big", []step{send(reqSetVringNum, v, state(0, 65536))}},
		{"vring base too big", []step{send(reqSetVringBase, v, state(0, 70000))}},
		{"vring enable 2", []step{send(reqSetVringEnable, v, state(0, 2))}},
		{"short vring addr", []step{send(reqSetVringAddr, v, make([]byte, 39))}},
		{"kick without fd", []step{send(reqSetVringKick, v, le64(0))}},
		{"kick nofd with fd", []step{func(f *frontend) error {
			return f.rawSend(reqSetVringKick, v, le64(vringNoFD), f.rings[0].kick)
		}}},
		{"kick stray bits", []step{send(reqSetVringKick, v, le64(1<<20|vringNoFD))}},
		{"too many fds", []step{func(f *frontend) error {
			fds := make([]int, 12)
			for i := range fds {
				fds[i] = f.rings[0].kick
			}
			return f.rawSend(reqSetVringCall, v, le64(0), fds...)
		}}},
		{"vring addr outside memory", []step{setup(feOpts{skipRings: true}), func(f *frontend) error {
			f.call(reqSetVringNum, state(0, 256))
			p := f.vringAddrPayload(0)
			binary.LittleEndian.PutUint64(p[8:], feUA+feRegion-64) // desc table runs past the region
			return f.rawSend(reqSetVringAddr, v, p)
		}}},
		{"vring addr misaligned", []step{setup(feOpts{skipRings: true}), func(f *frontend) error {
			f.call(reqSetVringNum, state(0, 256))
			p := f.vringAddrPayload(0)
			binary.LittleEndian.PutUint64(p[16:], feUA+8194) // used ring must be 4-aligned
			return f.rawSend(reqSetVringAddr, v, p)
		}}},
		{"vring misaligned in host memory", []step{func(f *frontend) error {
			f.handshake(feOpts{skipRings: true})
			p := f.memTablePayload(feRegion)
			binary.LittleEndian.PutUint64(p[24:], feUA+2) // region user address shifted by 2
			f.call(reqSetMemTable, p, f.memfd)
			f.call(reqSetVringNum, state(1, 256))
			return f.rawSend(reqSetVringAddr, v, f.vringAddrPayload(1)) // in range, host offset 2 mod 4
		}}},
		{"new mem table hides running rings", []step{setup(feOpts{}), func(f *frontend) error {
			p := f.memTablePayload(feRegion)
			binary.LittleEndian.PutUint64(p[24:], feUA+feRegion) // user addresses moved away
			return f.rawSend(reqSetMemTable, v, p, f.memfd)
		}}},
		{"resize running ring", []step{setup(feOpts{}), send(reqSetVringNum, v, state(1, 128))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := tp.Stats().ProtocolErrors
			f := newFrontend(t)
			f.dial(tp.cfg.SocketPath)
			for _, s := range c.steps {
				if err := s(f); err != nil {
					break // the backend may already have hung up
				}
			}
			f.waitClosed()
			drainLink(tp)
			// The next frontend is served normally.
			g := connect(t, tp, feOpts{})
			g.sendTx(testFrames(2, 64), 0, true)
			if got := rxAll(t, tp.Port, 2); len(got) != 2 {
				t.Fatalf("port unusable after %s", c.name)
			}
			g.c.Close()
			tp.waitLink(t, false)
			drainLink(tp)
			if tp.Stats().ProtocolErrors == before {
				t.Fatalf("%s not counted as a protocol error", c.name)
			}
			checkOther(t, other, of)
		})
	}
}

func drainLink(tp *testPort) {
	for {
		select {
		case <-tp.link:
		default:
			return
		}
	}
}

func checkOther(t *testing.T, other *testPort, of *frontend) {
	t.Helper()
	if !other.LinkUp() {
		t.Fatal("unrelated port went down")
	}
	of.sendTx(testFrames(1, 64), 0, true)
	if got := rxAll(t, other.Port, 1); len(got) != 1 {
		t.Fatal("unrelated port lost traffic")
	}
	of.reapTx()
}

// TestBogusDescriptors corrupts descriptors the guest posts; the backend must
// drop the connection with the link going down, never crash, and keep
// serving the next frontend.
func TestBogusDescriptors(t *testing.T) {
	tp := openPort(t, Config{})
	other := openPort(t, Config{})
	of := connect(t, other, feOpts{})
	tx := func(mod func(f *frontend, head int)) func(f *frontend) {
		return func(f *frontend) {
			head := f.slotHead(1)
			f.sendTx(testFrames(1, 64), 0, false)
			mod(f, head)
			tp.RxBurst(makeBufs(4, 2048))
		}
	}
	rx := func(mod func(f *frontend, head int)) func(f *frontend) {
		return func(f *frontend) {
			head := f.slotHead(0)
			f.postRx(1, 1, 2048)
			mod(f, head)
			// Big enough that a looping chain is caught before the frame fits.
			tp.TxBurst(testFrames(1, 4000))
		}
	}
	cases := []struct {
		name string
		run  func(f *frontend)
	}{
		{"tx addr outside memory", tx(func(f *frontend, h int) { f.setDesc(1, h+1, feGPA+feRegion+4096, 64, 0, 0) })},
		{"tx addr below memory", tx(func(f *frontend, h int) { f.setDesc(1, h+1, 4096, 64, 0, 0) })},
		{"tx length past region", tx(func(f *frontend, h int) { f.setDesc(1, h+1, feGPA+feRegion-32, 64, 0, 0) })},
		{"tx huge length", tx(func(f *frontend, h int) { f.setDesc(1, h+1, feGPA, 0xffffffff, 0, 0) })},
		{"tx chain loop", tx(func(f *frontend, h int) {
			f.setDesc(1, h+1, feGPA+uint64(f.bufOff(1, h+1)), 64, descFNext, uint16(h))
		})},
		{"tx self loop", tx(func(f *frontend, h int) {
			f.setDesc(1, h, feGPA+uint64(f.bufOff(1, h)), 12, descFNext, uint16(h))
		})},
		{"tx next out of range", tx(func(f *frontend, h int) {
			f.setDesc(1, h+1, feGPA+uint64(f.bufOff(1, h+1)), 64, descFNext, 999)
		})},
		{"tx head out of range", tx(func(f *frontend, h int) {
			av := f.rings[1].base + 4096
			binary.LittleEndian.PutUint16(f.mem[av+4+2*int((f.rings[1].availIdx-1)%feRingSize):], 4000)
		})},
		{"tx avail index beyond ring", tx(func(f *frontend, h int) {
			w := f.word32(f.rings[1].base + 4096)
			*w = uint32(f.rings[1].availIdx+feRingSize+1) << 16
		})},
		{"rx avail index beyond ring", rx(func(f *frontend, h int) {
			w := f.word32(f.rings[0].base + 4096)
			*w = uint32(f.rings[0].availIdx+feRingSize+1) << 16
		})},
		{"tx indirect", tx(func(f *frontend, h int) { f.setDesc(1, h, feGPA, 16, descFIndirect, 0) })},
		{"tx write-only buffer", tx(func(f *frontend, h int) { f.setDesc(1, h+1, feGPA, 64, descFWrite, 0) })},
		{"rx read-only buffer", rx(func(f *frontend, h int) { f.setDesc(0, h, feGPA+uint64(f.bufOff(0, h)), 2048, 0, 0) })},
		{"rx buffer shorter than header", rx(func(f *frontend, h int) {
			f.setDesc(0, h, feGPA+uint64(f.bufOff(0, h)), 4, descFWrite, 0)
		})},
		{"rx addr outside memory", rx(func(f *frontend, h int) { f.setDesc(0, h, 1<<60, 2048, descFWrite, 0) })},
		{"rx chain loop", rx(func(f *frontend, h int) {
			f.setDesc(0, h, feGPA+uint64(f.bufOff(0, h)), 12, descFWrite|descFNext, uint16(h))
		})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			drainLink(tp)
			f := connect(t, tp, feOpts{})
			c.run(f)
			tp.waitLink(t, false)
			f.waitClosed()
			if n := tp.RxBurst(makeBufs(4, 2048)); n != 0 {
				t.Fatalf("RxBurst after drop = %d", n)
			}
			if n := tp.TxBurst(testFrames(1, 64)); n != 0 {
				t.Fatalf("TxBurst after drop = %d", n)
			}
			g := connect(t, tp, feOpts{})
			g.sendTx(testFrames(3, 64), 0, true)
			got := rxAll(t, tp.Port, 3)
			if !bytes.Equal(got[2], testFrames(3, 64)[2]) {
				t.Fatal("next frontend's frames corrupted")
			}
			g.c.Close()
			tp.waitLink(t, false)
			checkOther(t, other, of)
		})
	}
}

// TestMemoryUnmappedOnDisconnect checks that the frontend's memory leaves
// this process with the connection.
func TestMemoryUnmappedOnDisconnect(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	var st unix.Stat_t
	if err := unix.Fstat(f.memfd, &st); err != nil {
		t.Fatal(err)
	}
	if n := countMappings(t, st.Ino); n != 2 { // ours and the backend's
		t.Fatalf("memfd mapped %d times while connected, want 2", n)
	}
	f.c.Close()
	tp.waitLink(t, false) // reported after the teardown
	if n := countMappings(t, st.Ino); n != 1 {
		t.Fatalf("memfd mapped %d times after disconnect, want 1 (the frontend's own)", n)
	}
}

// TestCloseReleasesEverything closes a port with a frontend attached: the
// frontend is hung up on, the link reported down, the memory unmapped and
// the socket file removed.
func TestCloseReleasesEverything(t *testing.T) {
	tp := openPort(t, Config{})
	f := connect(t, tp, feOpts{})
	var st unix.Stat_t
	if err := unix.Fstat(f.memfd, &st); err != nil {
		t.Fatal(err)
	}
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	f.waitClosed()
	tp.waitLink(t, false)
	if tp.LinkUp() {
		t.Fatal("LinkUp after Close")
	}
	if n := countMappings(t, st.Ino); n != 1 {
		t.Fatalf("frontend memory mapped %d times after Close, want 1 (the frontend's own)", n)
	}
	if _, err := os.Stat(tp.cfg.SocketPath); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
	if n := tp.TxBurst(testFrames(1, 64)); n != 0 {
		t.Fatalf("TxBurst after Close = %d", n)
	}
}
