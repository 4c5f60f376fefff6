package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/test/vpptarget"
)

// A Ligato user's etcdctl lines: two memifs and an xconnect each way, then an
// update and deletes, all visible in VPP.
func TestPutUpdateDelete(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := filepath.Join(e.dir, "memif.sock")
		e.put("config/vpp/v2/interfaces/memif1", memif("memif1", 1, sock))
		e.put("config/vpp/v2/interfaces/memif2", memif("memif2", 2, sock))
		e.put("config/vpp/l2/v2/xconnect/memif1", `{"receive_interface":"memif1","transmit_interface":"memif2"}`)
		e.put("config/vpp/l2/v2/xconnect/memif2", `{"receive_interface":"memif2","transmit_interface":"memif1"}`)
		e.waitState("config/vpp/l2/v2/xconnect/memif2", "CONFIGURED")

		m1, ok := e.vppIf("memif1")
		if !ok || !m1.AdminUp || m1.DevType != "memif" && !strings.HasPrefix(m1.Name, "memif") {
			t.Fatalf("memif1 in VPP: %+v ok=%v", m1, ok)
		}
		m2, _ := e.vppIf("memif2")
		if m1.L2 != "xconnect "+m2.Name || m2.L2 != "xconnect "+m1.Name {
			t.Fatalf("xconnect in VPP: memif1 %q, memif2 %q", m1.L2, m2.L2)
		}

		// VPP's own view, through the agent's CLI passthrough (agentctl vpp cli).
		resp, err := http.Post("http://"+e.agent.HTTPAddr()+"/vpp/command?command=show+interface", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(out), m1.Name) || !strings.Contains(string(out), m2.Name) {
			t.Fatalf("show interface: %d %s", resp.StatusCode, out)
		}

		// Update in place: admin down.
		e.put("config/vpp/v2/interfaces/memif1", strings.Replace(memif("memif1", 1, sock), `"enabled":true`, `"enabled":false`, 1))
		e.eventually("memif1 admin down", func() bool { i, ok := e.vppIf("memif1"); return ok && !i.AdminUp })
		if i, _ := e.vppIf("memif1"); i.SwIfIndex != m1.SwIfIndex {
			t.Fatalf("admin-down recreated memif1: index %d → %d", m1.SwIfIndex, i.SwIfIndex)
		}

		e.del("config/vpp/l2/v2/xconnect/memif1")
		e.eventually("xconnect memif1 removed", func() bool { i, _ := e.vppIf("memif1"); return i.L2 == "" })
		e.eventually("status key of deleted xconnect removed", func() bool {
			_, ok := e.status("config/vpp/l2/v2/xconnect/memif1")
			return !ok
		})
		// Deleting an interface turns the xconnect using it back to PENDING.
		e.del("config/vpp/v2/interfaces/memif1")
		e.eventually("memif1 gone", func() bool { _, ok := e.vppIf("memif1"); return !ok })
		e.waitState("config/vpp/l2/v2/xconnect/memif2", "PENDING")
		if i, _ := e.vppIf("memif2"); i.L2 != "" {
			t.Fatalf("memif2 still xconnected to a deleted interface: %q", i.L2)
		}
		// And re-adding it restores the path.
		e.put("config/vpp/v2/interfaces/memif1", memif("memif1", 1, sock))
		e.waitState("config/vpp/l2/v2/xconnect/memif2", "CONFIGURED")
	})
}

func TestPendingThenResolved(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.put("config/vpp/l2/v2/xconnect/loopA", `{"receive_interface":"loopA","transmit_interface":"loopB"}`)
		e.waitState("config/vpp/l2/v2/xconnect/loopA", "PENDING")
		e.put("config/vpp/v2/interfaces/loopA", `{"name":"loopA","type":"SOFTWARE_LOOPBACK","enabled":true}`)
		e.put("config/vpp/v2/interfaces/loopB", `{"name":"loopB","type":"SOFTWARE_LOOPBACK","enabled":true}`)
		e.waitState("config/vpp/l2/v2/xconnect/loopA", "CONFIGURED")
		a, _ := e.vppIf("loopA")
		b, _ := e.vppIf("loopB")
		if a.L2 != "xconnect "+b.Name {
			t.Fatalf("loopA l2 = %q, want xconnect %s", a.L2, b.Name)
		}
	})
}

// vppmesh's CrossConnect renders as two interfaces and both directions.
func TestCrossConnectExpansion(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := filepath.Join(e.dir, "xc.sock")
		e.put("config/vppmesh/v1/xconnect/xc1", fmt.Sprintf(
			`{"name":"xc1","a":{"memif":{"master":true,"id":1,"socket_filename":%q}},"b":{"vhost_user":{"socket_filename":%q,"server":true},"mtu":1500}}`,
			sock, filepath.Join(e.dir, "vh.sock")))
		e.waitState("config/vppmesh/v1/xconnect/xc1", "CONFIGURED")
		a, okA := e.vppIf("xc1-a")
		b, okB := e.vppIf("xc1-b")
		if !okA || !okB {
			t.Fatalf("derived interfaces missing: %+v", e.vppIfs())
		}
		if !a.AdminUp || !b.AdminUp || !strings.HasPrefix(b.Name, "VirtualEthernet0/0/") {
			t.Fatalf("derived interfaces: a=%+v b=%+v", a, b)
		}
		if a.L2 != "xconnect "+b.Name || b.L2 != "xconnect "+a.Name {
			t.Fatalf("xconnects: a %q b %q", a.L2, b.L2)
		}
		e.del("config/vppmesh/v1/xconnect/xc1")
		e.eventually("cross-connect removed from VPP", func() bool {
			_, okA := e.vppIf("xc1-a")
			_, okB := e.vppIf("xc1-b")
			return !okA && !okB
		})
	})
}

// Bad values in one etcd transaction: each gets its own status, the good
// one beside them is configured, the agent keeps running.
func TestBadInputIsolated(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := filepath.Join(e.dir, "memif.sock")
		long := strings.Repeat("x", 64)
		bad := map[string]string{
			"config/vpp/v2/interfaces/malformed": `{"name":"malformed",`,
			"config/vpp/v2/interfaces/unknownf":  `{"name":"unknownf","colour":"blue"}`,
			"config/vpp/v2/interfaces/unknowne":  `{"name":"unknowne","type":"WORMHOLE"}`,
			"config/vpp/v2/interfaces/mismatch":  `{"name":"other","type":"SOFTWARE_LOOPBACK"}`,
			"config/vpp/v2/interfaces/" + long:   fmt.Sprintf(`{"name":%q,"type":"SOFTWARE_LOOPBACK"}`, long),
		}
		ops := []clientv3.Op{clientv3.OpPut(root("config/vpp/v2/interfaces/good"), `{"name":"good","type":"SOFTWARE_LOOPBACK","enabled":true}`)}
		for k, v := range bad {
			ops = append(ops, clientv3.OpPut(root(k), v))
		}
		if _, err := e.etcd.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		e.waitState("config/vpp/v2/interfaces/good", "CONFIGURED")
		for k := range bad {
			e.eventually("error status for "+k, func() bool {
				st, ok := e.status(k)
				return ok && st.State != "CONFIGURED" && st.Error != ""
			})
		}
		st, _ := e.status("config/vpp/v2/interfaces/unknowne")
		if !strings.Contains(st.Error, "WORMHOLE") {
			t.Errorf("unknown enum error does not name the value: %q", st.Error)
		}

		// Two memifs with the same socket and id: the second is refused alone.
		e.put("config/vpp/v2/interfaces/m1", memif("m1", 7, sock))
		e.waitState("config/vpp/v2/interfaces/m1", "CONFIGURED")
		e.put("config/vpp/v2/interfaces/m2", memif("m2", 7, sock))
		e.eventually("duplicate memif refused", func() bool {
			st, ok := e.status("config/vpp/v2/interfaces/m2")
			return ok && st.Error != "" && strings.Contains(st.Error, "m1")
		})

		// A value VPP rejects: FAILED with VPP's error, then retried to success.
		if e.vpp.Sim != nil {
			// vppsim: injected failures of the create call itself.
			e.vpp.Sim.FailNext("create_loopback", 3, -1)
			e.put("config/vpp/v2/interfaces/flaky", `{"name":"flaky","type":"SOFTWARE_LOOPBACK"}`)
		} else {
			// FD.io VPP: a second IPv4 address in a subnet another
			// interface already has is refused (sw_interface_add_del_address
			// retval -105 "Address in use" on 25.10) until that interface lets go of it.
			e.put("config/vpp/v2/interfaces/holder", `{"name":"holder","type":"SOFTWARE_LOOPBACK","ip_addresses":["198.51.100.1/24"]}`)
			e.waitState("config/vpp/v2/interfaces/holder", "CONFIGURED")
			e.put("config/vpp/v2/interfaces/flaky", `{"name":"flaky","type":"SOFTWARE_LOOPBACK","ip_addresses":["198.51.100.2/24"]}`)
		}
		e.eventually("flaky FAILED with an error", func() bool {
			st, ok := e.status("config/vpp/v2/interfaces/flaky")
			return ok && st.State == "FAILED" && st.Error != ""
		})
		if e.vpp.Sim == nil {
			if st, _ := e.status("config/vpp/v2/interfaces/flaky"); !strings.Contains(st.Error, "Address in use") {
				t.Errorf("flaky's error does not carry VPP's: %q", st.Error)
			}
			e.put("config/vpp/v2/interfaces/holder", `{"name":"holder","type":"SOFTWARE_LOOPBACK"}`)
		}
		e.waitState("config/vpp/v2/interfaces/flaky", "CONFIGURED")
		if e.vpp.Sim == nil {
			// Every failed attempt created a loopback and removed it again:
			// none is left over beside good, holder and flaky.
			n := 0
			for _, i := range e.vppIfs() {
				if strings.HasPrefix(i.Name, "loop") {
					n++
				}
			}
			if n != 3 {
				t.Errorf("%d loopbacks in VPP, want 3 (good, holder, flaky): failed attempts leaked: %+v", n, e.vppIfs())
			}
		}

		for _, name := range []string{"good", "m1", "flaky"} {
			if _, ok := e.vppIf(name); !ok {
				t.Errorf("%s missing in VPP", name)
			}
		}
		if !e.agent.Ready() {
			t.Fatal("agent not ready after bad input")
		}
	})
}

// An agent restart that finds VPP configured changes nothing in VPP.
func TestAgentRestartZeroWrites(t *testing.T) {
	forEach(t, agentRestartZeroWrites)
}

// The same on a VPP with only the memif plugin loaded (no af_packet, tap or
// vhost-user messages): the agent's dumps of those must not fail its resync
// (FD.io VPP answers them with "unknown message"; vppsim has them all).
func TestAgentRestartZeroWritesMemifOnlyVPP(t *testing.T) {
	vpptarget.ForEach(t, vpptarget.Options{Logger: logger(t), Plugins: []string{"memif"}},
		func(t *testing.T, tg *vpptarget.Target) { agentRestartZeroWrites(t, newEnv(t, tg)) })
}

func agentRestartZeroWrites(t *testing.T, e *env) {
	{
		sock := filepath.Join(e.dir, "memif.sock")
		for i := 1; i <= 10; i++ {
			e.put(fmt.Sprintf("config/vppmesh/v1/xconnect/x%d", i), fmt.Sprintf(
				`{"name":"x%d","a":{"memif":{"master":true,"id":%d,"socket_filename":%q}},"b":{"memif":{"master":true,"id":%d,"socket_filename":%q},"phys_address":"02:00:00:00:00:%02x"}}`,
				i, 2*i, sock, 2*i+1, sock, i))
		}
		e.put("config/vpp/l2/v2/bridge-domain/bd1", `{"name":"bd1","flood":true,"forward":true,"learn":true,"interfaces":[{"name":"l1"},{"name":"l2"}]}`)
		e.put("config/vpp/v2/interfaces/l1", `{"name":"l1","type":"SOFTWARE_LOOPBACK","enabled":true,"ip_addresses":["10.0.0.1/24"]}`)
		e.put("config/vpp/v2/interfaces/l2", `{"name":"l2","type":"SOFTWARE_LOOPBACK","enabled":true,"mtu":1500}`)
		for i := 1; i <= 10; i++ {
			e.waitState(fmt.Sprintf("config/vppmesh/v1/xconnect/x%d", i), "CONFIGURED")
		}
		for _, k := range []string{"config/vpp/l2/v2/bridge-domain/bd1", "config/vpp/v2/interfaces/l1", "config/vpp/v2/interfaces/l2"} {
			e.waitState(k, "CONFIGURED")
		}
		e.eventually("loopbacks in the bridge domain", func() bool {
			a, _ := e.vppIf("l1")
			b, _ := e.vppIf("l2")
			return strings.HasPrefix(a.L2, "bridge") && strings.HasPrefix(b.L2, "bridge")
		})
		before := e.vppIfs()

		e.stopAgent()
		// vppsim counts calls; FD.io VPP lists them with `api trace dump`.
		if err := e.vpp.ResetCalls(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.startAgent()
		e.waitState("config/vpp/l2/v2/bridge-domain/bd1", "CONFIGURED")
		calls, err := e.vpp.Calls(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) == 0 {
			t.Fatal("no VPP calls seen at all: the call count does not work")
		}
		if n, names := writeCalls(calls); n != 0 {
			t.Fatalf("agent restart made %d VPP write calls: %v", n, names)
		}
		after := e.vppIfs()
		if len(after) != len(before) {
			t.Fatalf("interfaces %d → %d", len(before), len(after))
		}
		for i := range before {
			if before[i] != after[i] {
				t.Errorf("interface changed across the agent restart: %+v → %+v", before[i], after[i])
			}
		}
	}
}
