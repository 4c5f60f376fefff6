package vppsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"
)

func TestRestartDropsClientsAndState(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	c := context.Background()
	if _, err := memif.NewServiceClient(conn).MemifCreateV2(c, &memif.MemifCreateV2{ID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Restart(c); err != nil {
		t.Fatal(err)
	}
	if n := sim.ClientCount(); n != 0 {
		t.Errorf("clients after restart = %d", n)
	}
	conn2 := connect(t, sim)
	ifs := dumpIfaces(t, conn2, "")
	if len(ifs) != 1 || ifs[0].InterfaceName != "local0" {
		t.Errorf("state after restart = %v", names(ifs))
	}
	// Counts survive a restart so a test can compare before and after.
	if sim.CallCounts()["memif_create_v2"] != 1 {
		t.Errorf("call counts = %v", sim.CallCounts())
	}
}

func TestCallCountsAndReset(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	vc := vpe.NewServiceClient(conn)
	for i := 0; i < 3; i++ {
		if _, err := vc.ShowVersion(context.Background(), &vpe.ShowVersion{}); err != nil {
			t.Fatal(err)
		}
	}
	counts := sim.CallCounts()
	if counts["show_version"] != 3 || counts["sockclnt_create"] != 1 {
		t.Errorf("counts = %v", counts)
	}
	sim.ResetCallCounts()
	if n := len(sim.CallCounts()); n != 0 {
		t.Errorf("after reset: %v", sim.CallCounts())
	}
}

func TestFailNext(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	mc := memif.NewServiceClient(conn)
	sim.FailNext("memif_create_v2", 2, errSyscallError1)
	for i := 0; i < 2; i++ {
		if _, err := mc.MemifCreateV2(context.Background(), &memif.MemifCreateV2{ID: 1}); !errors.Is(err, api.SYSCALL_ERROR_1) {
			t.Fatalf("call %d: err = %v", i, err)
		}
	}
	if _, err := mc.MemifCreateV2(context.Background(), &memif.MemifCreateV2{ID: 1}); err != nil {
		t.Fatalf("third call: %v", err)
	}
	// The failed calls had no effect: one memif exists.
	if ifs := dumpIfaces(t, conn, "memif"); len(ifs) != 1 {
		t.Errorf("memifs = %v", names(ifs))
	}
}

func TestLatencyDelaysOnlyNamedMessage(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	sim.SetLatency("show_version", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := vpe.NewServiceClient(conn).ShowVersion(ctx, &vpe.ShowVersion{})
	if err == nil {
		t.Fatal("show_version answered despite an hour of latency")
	}
	// Other messages are not delayed (on another connection: one client's messages are
	// answered in order, as VPP does).
	if ifs := dumpIfaces(t, connect(t, sim), ""); len(ifs) != 1 {
		t.Errorf("dump = %v", names(ifs))
	}
}

func TestHangAndResume(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	sim.Hang()
	done := make(chan error, 1)
	go func() {
		_, err := vpe.NewServiceClient(conn).ShowVersion(context.Background(), &vpe.ShowVersion{})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("answered while hung: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	sim.Resume()
	if err := <-done; err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

func TestRestartWhileHung(t *testing.T) {
	sim := startSim(t)
	conn := connect(t, sim)
	sim.Hang()
	go vpe.NewServiceClient(conn).ShowVersion(context.Background(), &vpe.ShowVersion{})
	for sim.CallCounts()["show_version"] == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := sim.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A restart clears the hang.
	c2, err := core.Connect(socketclient.NewVppClient(sim.SocketPath()))
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	defer c2.Disconnect()
	if _, err := vpe.NewServiceClient(c2).ShowVersion(context.Background(), &vpe.ShowVersion{}); err != nil {
		t.Fatal(err)
	}
}

func TestControlEndpoint(t *testing.T) {
	sim := startSim(t)
	srv := httptest.NewServer(sim.ControlHandler())
	defer srv.Close()
	conn := connect(t, sim)
	post := func(path string, want int) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	post("/fail?msg=sw_interface_set_flags&n=1&retval=-2", 200)
	post("/fail?msg=x&n=one&retval=-2", 400)
	post("/latency?delay=soon", 400)
	post("/latency?msg=show_version&delay=1ms", 200)
	_, err := interfaceClient(conn).SwInterfaceSetFlags(context.Background(), setFlags(0, true))
	if !errors.Is(err, api.INVALID_SW_IF_INDEX) {
		t.Errorf("armed failure via HTTP: err = %v", err)
	}
	resp, err := http.Get(srv.URL + "/calls")
	if err != nil {
		t.Fatal(err)
	}
	var counts map[string]uint64
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if counts["sw_interface_set_flags"] != 1 {
		t.Errorf("GET /calls = %v", counts)
	}
	post("/calls/reset", 200)
	if len(sim.CallCounts()) != 0 {
		t.Errorf("counts after reset: %v", sim.CallCounts())
	}
	post("/hang", 200)
	post("/resume", 200)
	post("/clear", 200)
	post("/restart", 200)
	if sim.ClientCount() != 0 {
		t.Errorf("clients after /restart = %d", sim.ClientCount())
	}
}

func TestServeControlOnUnixSocket(t *testing.T) {
	sim := startSim(t)
	path := t.TempDir() + "/ctl.sock"
	stop, err := sim.ServeControl(context.Background(), "unix:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
		var d netDialer
		return d.DialContext(ctx, "unix", path)
	}}}
	resp, err := client.Get("http://vppsim/interfaces")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ifs []InterfaceInfo
	if err := json.NewDecoder(resp.Body).Decode(&ifs); err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "local0" {
		t.Errorf("GET /interfaces = %+v", ifs)
	}
}
