package vppsim

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/core"
)

// startSim runs a vppsim in a temp dir for the duration of the test.
func startSim(t testing.TB) *Sim {
	t.Helper()
	sim, err := Start(context.Background(), Config{
		Socket: filepath.Join(t.TempDir(), "api.sock"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
