package vppsim

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/core"
)

// startSim runs a vppsim in a temp dir for the duration of the test.
func startSim(t testing.TB) *Sim {
	t.Helper()
	sim, err := Start(context.Background(), Config{
		Socket: filepath.Join(t.TempDir(), "api.sock"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		// Control-plane tests name socket files under /tmp and /run/vpp: open none.
		Drivers: NoDrivers,
	})
	if err != nil {
		t.Fatalf("start vppsim: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// connect attaches govpp's own socket client and connection to sim.
func connect(t testing.TB, sim *Sim) *core.Connection {
	t.Helper()
	conn, err := core.Connect(socketclient.NewVppClient(sim.SocketPath()))
	if err != nil {
		t.Fatalf("govpp connect: %v", err)
	}
	t.Cleanup(conn.Disconnect)
	return conn
}

// retval extracts the VPP error code from a service client error.
func retval(err error) int32 {
	if e, ok := err.(api.VPPApiError); ok {
		return int32(e)
	}
	if err == nil {
		return 0
	}
	return 1 // not a VPP retval
}

type (
	netConn   = net.Conn
	netDialer = net.Dialer
)

func interfaceClient(conn api.Connection) interfaces.RPCService {
	return interfaces.NewServiceClient(conn)
}

func setFlags(idx uint32, up bool) *interfaces.SwInterfaceSetFlags {
	m := &interfaces.SwInterfaceSetFlags{SwIfIndex: interface_types.InterfaceIndex(idx)}
	if up {
		m.Flags = interface_types.IF_STATUS_API_FLAG_ADMIN_UP
	}
	return m
}

func uint32InterfaceIndex() interface_types.InterfaceIndex { return 0 }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// drain reads a dump stream to its end (the control_ping reply).
func drain[T any](t testing.TB, recv func() (T, error)) []T {
	t.Helper()
	var out []T
	for {
		d, err := recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}
