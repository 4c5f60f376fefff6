package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/agent"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifstats"
	"github.com/vppmesh/vppmesh/test/vpptarget"
)

// counters reads the agent's counter report (GET /vpp/counters).
func (e *env) counters() (ifstats.Report, error) {
	var r ifstats.Report
	resp, err := http.Get("http://" + e.agent.HTTPAddr() + "/vpp/counters")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("/vpp/counters: %s", resp.Status)
	}
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

func xcJSON(name, sock string, idA, idB int) string {
	return fmt.Sprintf(`{"name":%q,"a":{"memif":{"master":true,"id":%d,"socket_filename":%q}},"b":{"memif":{"master":true,"id":%d,"socket_filename":%q}}}`,
		name, idA, sock, idB, sock)
}

// TestVPPKillRestart: VPP dies with kill -9 (a crash) and comes back
// empty; the agent resyncs everything, interface states are right (enabled
// ones admin up, a disabled one down), counters are read from the new
// stats segment, and the agent keeps taking changes.
func TestVPPKillRestart(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		sock := filepath.Join(e.dir, "memif.sock")
		e.put("config/vppmesh/v1/xconnect/xc", xcJSON("xc", sock, 1, 2))
		e.put("config/vpp/v2/interfaces/down", `{"name":"down","type":"SOFTWARE_LOOPBACK","enabled":false}`)
		e.put("config/vpp/l2/v2/bridge-domain/bd", `{"name":"bd","flood":true,"forward":true,"learn":true,"interfaces":[{"name":"down"}]}`)
		e.waitState("config/vppmesh/v1/xconnect/xc", "CONFIGURED")
		e.waitState("config/vpp/l2/v2/bridge-domain/bd", "CONFIGURED")
		e.eventually("counters of xc", func() bool {
			r, err := e.counters()
			_, ok := r.CrossConnects["xc"]
			return err == nil && r.Connected && ok
		})
		pid := e.vpp.Pid()
		e.vpp.Kill()
		if e.vpp.Ping() == nil {
			t.Fatal("VPP still answers after kill")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.vpp.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if pid != 0 && e.vpp.Pid() == pid {
			t.Fatal("VPP has the same pid after restart")
		}
		e.eventually("cross-connect back in VPP", func() bool {
			a, okA := e.vppIf("xc-a")
			b, okB := e.vppIf("xc-b")
			return okA && okB && a.AdminUp && b.AdminUp && a.L2 == "xconnect "+b.Name && b.L2 == "xconnect "+a.Name
		})
		e.eventually("disabled loopback back, down, in its bridge domain", func() bool {
			d, ok := e.vppIf("down")
			return ok && !d.AdminUp && len(d.L2) > 7 && d.L2[:7] == "bridge "
		})
		bds, err := e.vpp.BridgeDomains(ctx)
		if err != nil || len(bds) != 1 || !bds[0].Flood || !bds[0].Learn {
			t.Fatalf("bridge domains after restart: %+v %v", bds, err)
		}
		e.eventually("counters from the new VPP", func() bool {
			r, err := e.counters()
			_, ok := r.CrossConnects["xc"]
			return err == nil && r.Connected && ok
		})
		for _, k := range []string{"config/vppmesh/v1/xconnect/xc", "config/vpp/v2/interfaces/down", "config/vpp/l2/v2/bridge-domain/bd"} {
			e.waitState(k, "CONFIGURED")
		}
		e.put("config/vpp/v2/interfaces/after", `{"name":"after","type":"SOFTWARE_LOOPBACK","enabled":true}`)
		e.waitState("config/vpp/v2/interfaces/after", "CONFIGURED")
		if !e.agent.Ready() {
			t.Fatal("agent not ready after VPP restart")
		}
	})
}

// TestSlowVPP: every reply from VPP is held back 50 ms (a unix-socket
// proxy between agent and VPP). The agent stays connected (its health
// probe allows 1 s), and eight cross-connects and their removal complete.
func TestSlowVPP(t *testing.T) {
	vpptarget.ForEach(t, vpptarget.Options{Logger: logger(t)}, func(t *testing.T, tg *vpptarget.Target) {
		proxy := vpptarget.NewSlowProxy(t, tg.Dir, tg.APISocket, 50*time.Millisecond)
		e := newEnv(t, tg, func(o *agent.Options) { o.VPPSocket = proxy.Path })
		sock := filepath.Join(e.dir, "memif.sock")
		const n = 8
		for i := 0; i < n; i++ {
			e.put(fmt.Sprintf("config/vppmesh/v1/xconnect/s%d", i), xcJSON(fmt.Sprintf("s%d", i), sock, 2*i+1, 2*i+2))
		}
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; i < n; i++ {
			for {
				st, ok := e.status(fmt.Sprintf("config/vppmesh/v1/xconnect/s%d", i))
				if ok && st.State == "CONFIGURED" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("s%d not configured through a slow VPP: %+v", i, st)
				}
				if !e.agent.Ready() {
					t.Fatalf("agent lost VPP (not ready) while VPP was only slow")
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		xc, err := tg.Xconnects(context.Background())
		if err != nil || len(xc) != 2*n {
			t.Fatalf("%d xconnect entries in VPP, want %d (%v)", len(xc), 2*n, err)
		}
		if proxy.Chunks() == 0 {
			t.Fatal("nothing went through the slow proxy")
		}
		for i := 0; i < n; i++ {
			e.del(fmt.Sprintf("config/vppmesh/v1/xconnect/s%d", i))
		}
		e.eventually("all removed from VPP", func() bool {
			xc, err := tg.Xconnects(context.Background())
			return err == nil && len(xc) == 0
		})
		// And the agent has seen VPP's (slow) replies: every status is gone.
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("config/vppmesh/v1/xconnect/s%d", i)
			e.eventually(k+" status removed", func() bool { _, ok := e.status(k); return !ok })
		}
	})
}

// TestMemifCap: with a cap of 3 memifs, a fourth waits FAILED with a status
// naming the cap (VPP never gets it), and is created once a memif is removed.
func TestMemifCap(t *testing.T) {
	vpptarget.ForEach(t, vpptarget.Options{Logger: logger(t)}, func(t *testing.T, tg *vpptarget.Target) {
		e := newEnv(t, tg, func(o *agent.Options) { o.MaxMemifs = 3 })
		sock := filepath.Join(e.dir, "memif.sock")
		for i := 1; i <= 3; i++ {
			e.put(fmt.Sprintf("config/vpp/v2/interfaces/m%d", i), memif(fmt.Sprintf("m%d", i), i, sock))
		}
		for i := 1; i <= 3; i++ {
			e.waitState(fmt.Sprintf("config/vpp/v2/interfaces/m%d", i), "CONFIGURED")
		}
		e.put("config/vpp/v2/interfaces/m4", memif("m4", 4, sock))
		e.eventually("m4 refused by the cap", func() bool {
			st, ok := e.status("config/vpp/v2/interfaces/m4")
			return ok && st.State == "FAILED" && strings.Contains(st.Error, "memif cap reached") && strings.Contains(st.Error, "--vpp-max-memifs")
		})
		if _, ok := e.vppIf("m4"); ok {
			t.Fatal("m4 is in VPP despite the cap")
		}
		// A loopback is not a memif: the cap does not apply.
		e.put("config/vpp/v2/interfaces/lo", `{"name":"lo","type":"SOFTWARE_LOOPBACK"}`)
		e.waitState("config/vpp/v2/interfaces/lo", "CONFIGURED")
		e.del("config/vpp/v2/interfaces/m1")
		e.waitState("config/vpp/v2/interfaces/m4", "CONFIGURED")
		if _, ok := e.vppIf("m4"); !ok {
			t.Fatal("m4 not in VPP after room was made")
		}
		n := 0
		for _, i := range e.vppIfs() {
			if i.DevType == "memif" || strings.HasPrefix(i.Name, "memif") {
				n++
			}
		}
		if n != 3 {
			t.Fatalf("%d memifs in VPP, cap 3", n)
		}
	})
}
