package vpprun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
)

func TestStartupConfMatchesLabConfig(t *testing.T) {
	c := Config{Dir: "/run/x", Name: "p1", Bin: "/nonexistent/bin/vpp"}
	if err := c.withDefaults(); err != nil {
		t.Fatal(err)
	}
	got := StartupConf(c)
	for _, want := range []string{
		"unix { nodaemon cli-listen /run/x/cli.sock log /run/x/vpp.log runtime-dir /run/x }",
		"api-segment { prefix p1 }",
		"socksvr { socket-name /run/x/api.sock }",
		"memory { main-heap-size 1G main-heap-page-size 4k }",
		"buffers { buffers-per-numa 16384 page-size 4k }",
		"statseg { socket-name /run/x/stats.sock page-size 4k }",
		"plugin default { disable }",
		"plugin memif_plugin.so { enable }",
		"plugin vhost_plugin.so { enable }",
		"plugin af_packet_plugin.so { enable }",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("startup.conf lacks %q:\n%s", want, got)
		}
	}
	// The documented lab config carries the same stanzas (RUN/PREFIX filled in).
	lab, err := os.ReadFile("../../vpp-config/startup-lab.conf")
	if err != nil {
		t.Fatal(err)
	}
	labS := strings.NewReplacer("RUN", "/run/x", "PREFIX", "p1").Replace(string(lab))
	for _, line := range strings.Split(got, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "path ") {
			continue
		}
		if !strings.Contains(labS, line) {
			t.Errorf("vpp-config/startup-lab.conf lacks the generated line %q", line)
		}
	}
}

func TestStartupConfMainCore(t *testing.T) {
	c := Config{Dir: "/run/x", Name: "p1", Bin: "/nonexistent/bin/vpp", MainCore: 1}
	if err := c.withDefaults(); err != nil {
		t.Fatal(err)
	}
	if got := StartupConf(c); !strings.Contains(got, "cpu { main-core 1 }") || strings.Contains(got, "main-core 0") {
		t.Fatalf("startup.conf with MainCore 1:\n%s", got)
	}
}

func TestConfigRejectsBadInput(t *testing.T) {
	for _, c := range []Config{
		{Name: "x"},
		{Dir: "/tmp/x", Name: "bad name"},
		{Dir: "/tmp/x", Name: "x", MainHeap: "1G; rm"},
		{Dir: "/tmp/x", Name: "x", Plugins: []string{"../evil"}},
		{Dir: "/tmp/" + strings.Repeat("d", 110), Name: "x"},
		{Dir: "/tmp/x", Name: "x", MainCore: -1},
	} {
		c.Bin = "/bin/true"
		if err := c.withDefaults(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func TestFindHonoursVPPBin(t *testing.T) {
	t.Setenv("VPP_BIN", "/nonexistent/vpp")
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "VPP_BIN") {
		t.Fatalf("Find with a bad VPP_BIN: %v", err)
	}
	t.Setenv("VPP_BIN", "")
	t.Setenv("PATH", t.TempDir())
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "put vpp on PATH") {
		t.Fatalf("Find without vpp: %v", err)
	}
}

// TestRealVPPLifecycle starts a real VPP, uses its API, CLI and log, kills
// it with SIGKILL, restarts it on the same sockets (state gone) and stops it.
func TestRealVPPLifecycle(t *testing.T) {
	v := StartT(t, Config{Plugins: []string{"memif"}})
	ctx := context.Background()
	out, err := v.CLI(ctx, "show version")
	if err != nil || !strings.Contains(out, "vpp v") {
		t.Fatalf("show version: %q %v", out, err)
	}
	out, err = CLIInband(v.APISocket, "show plugins")
	if err != nil || !strings.Contains(out, "memif_plugin.so") || strings.Contains(out, "vxlan_plugin.so") {
		t.Fatalf("show plugins (only memif enabled): %q %v", out, err)
	}
	if err := v.CLIErr(ctx, "create loopback interface"); err != nil {
		t.Fatal(err)
	}
	if err := v.APITraceReset(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countInterfaces(t, v.APISocket); n != 2 { // local0 + loop0
		t.Fatalf("%d interfaces after creating a loopback, want 2", n)
	}
	if calls, err := v.APITraceCounts(ctx); err != nil || calls["sw_interface_dump"] != 1 {
		t.Fatalf("api trace after one dump: %v %v", calls, err)
	}
	if _, err := os.Stat(v.StatsSocket); err != nil {
		t.Fatal(err)
	}
	pid := v.Pid()
	v.Kill()
	if !v.Exited() {
		t.Fatal("still running after Kill")
	}
	if err := Ping(v.APISocket); err == nil {
		t.Fatal("API answers after kill -9")
	}
	ctx2, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := v.Restart(ctx2); err != nil {
		t.Fatal(err)
	}
	if v.Pid() == pid {
		t.Fatal("same pid after restart")
	}
	if n := countInterfaces(t, v.APISocket); n != 1 {
		t.Fatalf("%d interfaces after restart, want 1 (local0): state should be gone", n)
	}
	if tail := v.LogTail(5); tail == "" {
		t.Error("no log tail")
	}
	v.Stop()
	if !v.Exited() {
		t.Fatal("still running after Stop")
	}
	v.Stop() // idempotent
}

func countInterfaces(t *testing.T, socket string) int {
	t.Helper()
	conn, err := govpp.Connect(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	ch, err := conn.NewAPIChannel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	req := ch.SendMultiRequest(&interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	n := 0
	for {
		last, err := req.ReceiveReply(&interfaces.SwInterfaceDetails{})
		if err != nil {
			t.Fatal(err)
		}
		if last {
			return n
		}
		n++
	}
}

func TestParseAPITrace(t *testing.T) {
	got := ParseAPITrace("vl_api_create_loopback_t:\n  mac_address: 0000.0000.0000\nvl_api_sw_interface_dump_t:\n  sw_if_index: 4294967295\nvl_api_control_ping_t:\nvl_api_control_ping_t:\n  not vl_api_x_t: here\n")
	if len(got) != 3 || got["create_loopback"] != 1 || got["control_ping"] != 2 || got["sw_interface_dump"] != 1 {
		t.Fatalf("%v", got)
	}
}

// TestRealVPPInNetns runs VPP inside a network namespace of its own (as a
// multi-node test does): its API socket is still reachable by path, and
// its host interfaces are those of the namespace.
func TestRealVPPInNetns(t *testing.T) {
	if ok, why := Available(); !ok {
		t.Skip(why)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip(8) to make a network namespace")
	}
	ns := fmt.Sprintf("vpprun-%d", os.Getpid())
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	v := StartT(t, Config{Netns: ns, Plugins: []string{"af_packet"}})
	// The namespace's own loopback is there for an af_packet interface.
	out, err := v.CLI(context.Background(), "create host-interface name lo")
	if err != nil || !strings.Contains(out, "host-lo") {
		t.Fatalf("af_packet on the namespace's lo: %q %v", out, err)
	}
	target, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", v.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	if target == self {
		t.Fatalf("VPP runs in the test's own network namespace %s", self)
	}
}
