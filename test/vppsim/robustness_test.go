package vppsim

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/codec"
)

// rawClient speaks the socket protocol by hand, to send what govpp never would.
type rawClient struct {
	t     *testing.T
	sim   *Sim
	conn  net.Conn
	r     *bufio.Reader
	index uint32
}

func dialRaw(t *testing.T, sim *Sim) *rawClient {
	t.Helper()
	conn, err := net.Dial("unix", sim.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, sim: sim, conn: conn, r: bufio.NewReader(conn)}
}

func (rc *rawClient) writeFrame(msg []byte) {
	rc.t.Helper()
	if _, err := rc.conn.Write(appendFrame(nil, msg)); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawClient) send(m api.Message, context uint32) {
	rc.t.Helper()
	e := rc.sim.table.entryOf(m)
	data, err := codec.DefaultCodec.EncodeMsg(m, e.id)
	if err != nil {
		rc.t.Fatal(err)
	}
	binary.BigEndian.PutUint32(data[2:6], rc.index)
	binary.BigEndian.PutUint32(data[6:10], context)
	rc.writeFrame(data)
}

// recv reads one message; it returns an error when the connection is closed.
func (rc *rawClient) recv() ([]byte, error) {
	rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(rc.r, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	_, err := io.ReadFull(rc.r, msg)
	return msg, err
}

func (rc *rawClient) handshake() {
	rc.t.Helper()
	rc.send(&memclnt.SockclntCreate{Name: "raw"}, 1)
	msg, err := rc.recv()
	if err != nil {
		rc.t.Fatal(err)
	}
	var rep memclnt.SockclntCreateReply
	if err := codec.DefaultCodec.DecodeMsg(msg, &rep); err != nil {
		rc.t.Fatal(err)
	}
	rc.index = rep.Index
}

func (rc *rawClient) expectClosed() {
	rc.t.Helper()
	if _, err := rc.recv(); err == nil {
		rc.t.Fatal("connection still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		rc.t.Fatal("connection neither answered nor closed")
	}
}

func TestBadInputClosesOnlyThatClient(t *testing.T) {
	sim := startSim(t)
	good := connect(t, sim)
	vc := vpe.NewServiceClient(good)
	cases := map[string]func(rc *rawClient){
		"unknown message id": func(rc *rawClient) {
			rc.handshake()
			rc.writeFrame([]byte{0xff, 0xf0, 0, 0, 0, 1, 0, 0, 0, 9})
		},
		"frame shorter than request header": func(rc *rawClient) {
			rc.handshake()
			rc.writeFrame([]byte{0, 1, 2})
		},
		"oversized length": func(rc *rawClient) {
			var hdr [frameHeaderLen]byte
			binary.BigEndian.PutUint32(hdr[8:12], 1<<31)
			rc.conn.Write(hdr[:])
		},
		"message before sockclnt_create": func(rc *rawClient) {
			rc.send(&memclnt.ControlPing{}, 5)
		},
		"truncated frame then EOF": func(rc *rawClient) {
			var hdr [frameHeaderLen]byte
			binary.BigEndian.PutUint32(hdr[8:12], 100)
			rc.conn.Write(append(hdr[:], 1, 2, 3))
			rc.conn.(*net.UnixConn).CloseWrite()
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, sim)
			fn(rc)
			rc.expectClosed()
			if _, err := vc.ShowVersion(context.Background(), &vpe.ShowVersion{}); err != nil {
				t.Fatalf("well-behaved client disturbed: %v", err)
			}
		})
	}
}

func TestTruncatedMessageGetsErrorReply(t *testing.T) {
	sim := startSim(t)
	rc := dialRaw(t, sim)
	rc.handshake()
	e := sim.table.byName["sw_interface_set_flags"]
	msg := []byte{byte(e.id >> 8), byte(e.id), 0, 0, 0, 0, 0, 0, 0, 42, 0, 0} // fields cut short
	binary.BigEndian.PutUint32(msg[2:6], rc.index)
	rc.writeFrame(msg)
	data, err := rc.recv()
	if err != nil {
		t.Fatal(err)
	}
	var rep interfaces.SwInterfaceSetFlagsReply
	if err := codec.DefaultCodec.DecodeMsg(data, &rep); err != nil {
		t.Fatal(err)
	}
	if ctx := binary.BigEndian.Uint32(data[2:6]); ctx != 42 || rep.Retval != errInvalidValue {
		t.Errorf("reply context %d retval %d, want 42 and %d", ctx, rep.Retval, errInvalidValue)
	}
	// The connection is still usable.
	rc.send(&memclnt.ControlPing{}, 43)
	if _, err := rc.recv(); err != nil {
		t.Fatalf("after error reply: %v", err)
	}
}

func TestManyClientsAtOnce(t *testing.T) {
	sim := startSim(t)
	const clients = 16
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := connect(t, sim)
			ic := interfaces.NewServiceClient(conn)
			for j := 0; j < 10; j++ {
				lo, err := ic.CreateLoopback(context.Background(), &interfaces.CreateLoopback{})
				if err != nil {
					errs <- err
					return
				}
				if _, err := ic.SwInterfaceSetFlags(context.Background(), setFlags(uint32(lo.SwIfIndex), true)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ifs := sim.Interfaces()
	seen := map[string]bool{}
	for _, i := range ifs {
		if seen[i.Name] {
			t.Errorf("duplicate name %s", i.Name)
		}
		seen[i.Name] = true
	}
	if len(ifs) != 1+clients*10 {
		t.Errorf("interfaces = %d, want %d", len(ifs), 1+clients*10)
	}
}

func TestClientLeavingMidDumpDoesNotDisturbOthers(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	ic := interfaces.NewServiceClient(conn)
	for i := 0; i < 300; i++ {
		if _, err := ic.CreateLoopback(context.Background(), &interfaces.CreateLoopback{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		rc := dialRaw(t, sim)
		rc.handshake()
		rc.send(&interfaces.SwInterfaceDump{SwIfIndex: ^uint32InterfaceIndex()}, 7)
		rc.send(&memclnt.ControlPing{}, 7)
		rc.recv() // read one detail, then vanish
		rc.conn.Close()
	}
	if got := dumpIfaces(t, conn, ""); len(got) != 301 {
		t.Errorf("dump after others left = %d interfaces, want 301", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for sim.ClientCount() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := sim.ClientCount(); n != 1 {
		t.Errorf("clients = %d, want 1", n)
	}
}

func TestSockclntDelete(t *testing.T) {
	sim := startSim(t)
	rc := dialRaw(t, sim)
	rc.handshake()
	rc.send(&memclnt.SockclntDelete{Index: rc.index}, 9)
	data, err := rc.recv()
	if err != nil {
		t.Fatal(err)
	}
	if id := binary.BigEndian.Uint16(data); id != sim.table.byName["sockclnt_delete_reply"].id {
		t.Errorf("reply id %d", id)
	}
}

func FuzzFrame(f *testing.F) {
	table, err := newMsgTable()
	if err != nil {
		f.Fatal(err)
	}
	h := newHandlers()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytesReader(data))
		var hdr [frameHeaderLen]byte
		for {
			msg, err := readFrame(r, &hdr, nil)
			if err != nil {
				if len(msg) != 0 {
					t.Fatalf("error %v with %d bytes", err, len(msg))
				}
				return
			}
			if len(msg) < requestHeaderLen || len(msg) > maxFrameLen {
				t.Fatalf("readFrame accepted %d bytes", len(msg))
			}
			rh, err := parseRequestHeader(msg)
			if err != nil {
				t.Fatal(err)
			}
			e := table.lookupID(rh.msgID)
			if e == nil || h[e.name] == nil {
				continue
			}
			// Decoding whatever arrives must fail cleanly, never panic.
			_ = codec.DefaultCodec.DecodeMsg(msg[:len(msg):len(msg)], e.new())
		}
	})
}

func TestFrameRejectsGarbage(t *testing.T) {
	for _, n := range []uint32{0, 9, maxFrameLen + 1, 1<<32 - 1} {
		var hdr [frameHeaderLen]byte
		binary.BigEndian.PutUint32(hdr[8:12], n)
		if _, err := parseFrameHeader(hdr[:]); err == nil {
			t.Errorf("length %d accepted", n)
		} else if !errors.Is(err, errFrameTooLong) && !errors.Is(err, errFrameTooShort) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	if _, err := parseFrameHeader(make([]byte, 3)); err == nil {
		t.Error("short header accepted")
	}
}
