package memif

import (
	"errors"
	"net"
	"testing"
	"time"
)

// rawSlave connects to a master socket and speaks raw bytes, as a broken peer would.
func rawSlave(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.Dial("unixpacket", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	uc := c.(*net.UnixConn)
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	n, err := uc.Read(buf)
	if err != nil || n != msgSize {
		t.Fatalf("HELLO: %d bytes, %v", n, err)
	}
	if m, err := parseMessage(buf[:n]); err != nil || m.typ != msgHello || m.hello.maxVersion != Version {
		t.Fatalf("HELLO parse: %+v, %v", m, err)
	}
	return uc
}

// expectDisconnect reads until the master's DISCONNECT and returns its reason.
func expectDisconnect(t *testing.T, uc *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	for {
		n, err := uc.Read(buf)
		if err != nil {
			t.Fatalf("no DISCONNECT before the socket ended: %v", err)
		}
		m, err := parseMessage(buf[:n])
		if err != nil {
			t.Fatalf("master sent a malformed message: %v", err)
		}
		if m.typ == msgDisconnect {
			return m.disconnect.reason
		}
	}
}

func TestMalformedControlMessagesDisconnectOnlyThatPeer(t *testing.T) {
	p := newPair(t, Config{ID: 1}, Config{ID: 1})
	p.waitUp(t)
	// A second master on the same socket that broken peers attack.
	victim, err := NewMaster(p.sock, Config{ID: 2, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	victim.Connect()

	var b [msgSize]byte
	initMsgBytes := func(id uint32, mode Mode) []byte {
		m := message{typ: msgInit, init: initMsg{version: Version, id: id, mode: mode}}
		m.encode(&b)
		return append([]byte(nil), b[:]...)
	}
	cases := []struct {
		name string
		msgs [][]byte
	}{
		{"short", [][]byte{{3}}},
		{"unknown type", [][]byte{{77, 0, 1, 2}}},
		{"truncated init", [][]byte{initMsgBytes(2, ModeEthernet)[:20]}},
		{"unknown id", [][]byte{initMsgBytes(99, ModeEthernet)}},
		{"punt inject", [][]byte{initMsgBytes(2, ModePuntInject)}},
		{"region without fd", [][]byte{initMsgBytes(2, ModeEthernet), func() []byte {
			m := message{typ: msgAddRegion, addRegion: addRegionMsg{size: 4096}}
			m.encode(&b)
			return append([]byte(nil), b[:]...)
		}()}},
		{"connect without rings", [][]byte{initMsgBytes(2, ModeEthernet), func() []byte {
			m := message{typ: msgConnect, ifName: "x"}
			m.encode(&b)
			return append([]byte(nil), b[:]...)
		}()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			uc := rawSlave(t, p.sock.Path())
			for _, m := range c.msgs {
				if _, err := uc.Write(m); err != nil {
					t.Fatal(err)
				}
			}
			if reason := expectDisconnect(t, uc); reason == "" {
				t.Fatal("DISCONNECT without a reason")
			}
		})
	}
	// The healthy link on the same socket never noticed.
	transfer(t, p.slave.TxQueues()[0], p.master.RxQueues()[0], [][]byte{frame(1, 64)})
	// And the attacked interface still accepts a good slave.
	s2, err := NewSlave(p.sock.Path(), Config{ID: 2, Logger: quietLogger(), RetryInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s2.Connect()
	if err := victim.WaitUp(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// TestBadDescriptorDisconnects corrupts a descriptor the way a hostile slave could and
// checks the master refuses to read outside the region and takes the link down.
func TestBadDescriptorDisconnects(t *testing.T) {
	for _, corrupt := range []struct {
		name string
		f    func(d *desc)
	}{
		{"region", func(d *desc) { d.region = 9 }},
		{"offset", func(d *desc) { d.offset = 0xfffffff0 }},
		{"length", func(d *desc) { d.length = 1 << 30 }},
	} {
		t.Run(corrupt.name, func(t *testing.T) {
			p := newPair(t, Config{ID: 1}, Config{ID: 1, RetryInterval: time.Hour})
			p.waitUp(t)
			tx, rx := p.slave.TxQueues()[0], p.master.RxQueues()[0]
			if n, _ := tx.TxBurst([][]byte{frame(1, 64)}); n != 1 {
				t.Fatal("TxBurst failed")
			}
			corrupt.f(&tx.r.descs[0])
			n, err := rx.RxBurst(makeBufs(4, 2048))
			if n != 0 || !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("RxBurst = %d, %v; want ErrBadDescriptor", n, err)
			}
			ctx := ctxT(t)
			if err := p.master.WaitDown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.slave.WaitDown(ctx); err != nil {
				t.Fatal(err)
			}
			evs := p.sEvents.list()
			if len(evs) < 2 || evs[1].Up || evs[1].Reason == "" {
				t.Fatalf("slave events %+v, want a down event with the master's reason", evs)
			}
		})
	}
}
