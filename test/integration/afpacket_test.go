package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestAfPacketOnVeth: an AF_PACKET interface on a veth (the uplink to use
// where VPP has no NICs): configured, visible in VPP as host-<name>, kept
// across an agent restart without a VPP write, and removed again.
func TestAfPacketOnVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a veth pair")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip(8)")
	}
	forEach(t, func(t *testing.T, e *env) {
		host := fmt.Sprintf("vppaf%d", os.Getpid()%100000)
		if out, err := exec.Command(ip, "link", "add", host, "type", "veth", "peer", "name", host+"p").CombinedOutput(); err != nil {
			t.Skipf("cannot make a veth pair: %v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command(ip, "link", "del", host).Run() })
		_ = exec.Command(ip, "link", "set", host, "up").Run()
		_ = exec.Command(ip, "link", "set", host+"p", "up").Run()
		e.put("config/vpp/v2/interfaces/up0", fmt.Sprintf(`{"name":"up0","type":"AF_PACKET","enabled":true,"afpacket":{"host_if_name":%q}}`, host))
		e.waitState("config/vpp/v2/interfaces/up0", "CONFIGURED")
		i, ok := e.vppIf("up0")
		if !ok || i.Name != "host-"+host || !i.AdminUp {
			t.Fatalf("af_packet interface in VPP: %+v %v", i, ok)
		}
		e.stopAgent()
		if err := e.vpp.ResetCalls(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.startAgent()
		e.waitState("config/vpp/v2/interfaces/up0", "CONFIGURED")
		calls, err := e.vpp.Calls(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n, names := writeCalls(calls); n != 0 {
			t.Fatalf("agent restart made %d VPP write calls: %v", n, names)
		}
		e.del("config/vpp/v2/interfaces/up0")
		e.eventually("af_packet interface removed", func() bool { _, ok := e.vppIf("up0"); return !ok })
	})
}
