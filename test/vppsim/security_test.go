package vppsim

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"
)

// TestHandlerPanicDoesNotHang: a handler that panics while holding the API
// lock costs its client the connection; the next client must still be
// served (the lock used to stay held and the simulator hung silently).
func TestHandlerPanicDoesNotHang(t *testing.T) {
	sim := startSim(t)
	orig := sim.handlers["show_version"]
	var calls atomic.Int32
	sim.handlers["show_version"] = func(c *client, hdr requestHeader, req api.Message) error {
		if calls.Add(1) == 1 {
			return c.serve(hdr, func(st *state) []api.Message {
				var m map[string]int
				m["boom"]++ // a real nil-map bug inside the locked section
				return nil
			})
		}
		return orig(c, hdr, req)
	}
	conn := connect(t, sim)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	vpe.NewServiceClient(conn).ShowVersion(ctx, &vpe.ShowVersion{}) // its client is dropped
	// Before the fix even connecting hung (sockclnt_create waits for the
	// lock): run it aside and give up after a while.
	done := make(chan error, 1)
	go func() {
		c, err := core.Connect(socketclient.NewVppClient(sim.SocketPath()))
		if err != nil {
			done <- err
			return
		}
		defer c.Disconnect()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		_, err = vpe.NewServiceClient(c).ShowVersion(ctx2, &vpe.ShowVersion{})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after a handler panic the simulator no longer answers: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("after a handler panic the simulator hangs (API lock left held)")
	}
}

// TestAPISocketNeverTakesOverLiveListener: starting on the path of a live
// server (a running VPP's api.sock) fails and leaves that server alone.
func TestAPISocketNeverTakesOverLiveListener(t *testing.T) {
	dir, err := os.MkdirTemp("", "sec-sim-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "api.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	sim, err := Start(context.Background(), Config{Socket: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Drivers: NoDrivers})
	if err == nil {
		sim.Close()
		t.Fatal("vppsim took over a live socket")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live listener is gone: %v", err)
	}
	c.Close()
}

// TestAPIAcceptSurvivesEMFILE: out of descriptors, accept fails with
// EMFILE; the API socket must serve again once descriptors are free (the
// accept loop used to exit for good).
func TestAPIAcceptSurvivesEMFILE(t *testing.T) {
	sim := startSim(t)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	if lim.Cur > 256 {
		lim.Cur = 256
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	var files []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		files = append(files, f)
	}
	if len(files) > 0 {
		files[len(files)-1].Close() // one for the client; accept gets none
		files = files[:len(files)-1]
	}
	c, derr := net.Dial("unix", sim.SocketPath())
	time.Sleep(200 * time.Millisecond)
	for _, f := range files {
		f.Close()
	}
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	if derr != nil {
		t.Fatalf("dial with one free descriptor: %v", derr)
	}
	c.Close()
	conn := connect(t, sim)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := vpe.NewServiceClient(conn).ShowVersion(ctx, &vpe.ShowVersion{}); err != nil {
		t.Fatalf("API socket no longer serves after EMFILE: %v", err)
	}
}
