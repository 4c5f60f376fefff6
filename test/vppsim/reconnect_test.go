package vppsim

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/codec"
	"go.fd.io/govpp/core"
)

func TestGovppReconnectsAfterRestart(t *testing.T) {
	sim := startSim(t)
	conn, events, err := core.AsyncConnect(socketclient.NewVppClient(sim.SocketPath()), 50, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	waitState := func(want core.ConnectionState) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.State == want {
					return
				}
			case <-timeout:
				t.Fatalf("no %v event", want)
			}
		}
	}
	waitState(core.Connected)
	if err := sim.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	// govpp notices through its control_ping health check and connects again.
	waitState(core.Disconnected)
	waitState(core.Connected)
	if _, err := memclnt.NewServiceClient(conn).ControlPing(context.Background(), &memclnt.ControlPing{}); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

func TestFloodingClientIsDisconnected(t *testing.T) {
	sim, err := Start(context.Background(), Config{
		Socket:       filepath.Join(t.TempDir(), "api.sock"),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		WriteTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	good := connect(t, sim)
	ic := interfaces.NewServiceClient(good)
	for i := 0; i < 200; i++ {
		if _, err := ic.CreateLoopback(context.Background(), &interfaces.CreateLoopback{}); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, sim)
	rc.handshake()
	e := sim.table.byName["sw_interface_dump"]
	dump, err := codec.DefaultCodec.EncodeMsg(&interfaces.SwInterfaceDump{SwIfIndex: ^uint32InterfaceIndex()}, e.id)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(dump[2:6], rc.index)
	go func() {
		// Ask for far more than the socket buffers hold and never read it; writes fail
		// once vppsim hangs up, which ends the loop.
		for i := 0; i < 500; i++ {
			if _, err := rc.conn.Write(appendFrame(nil, dump)); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for sim.ClientCount() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := sim.ClientCount(); n != 1 {
		t.Fatalf("flooding client still connected (clients = %d)", n)
	}
	if got := dumpIfaces(t, good, ""); len(got) != 201 {
		t.Errorf("good client dump = %d", len(got))
	}
}
