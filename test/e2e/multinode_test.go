package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/plugins/vpp/ifstats"
	"github.com/vppmesh/vppmesh/test/lab"
	"github.com/vppmesh/vppmesh/test/vpprun"
)

// The multi-node lab: two "nodes" (network namespaces) joined by a veth pair
// on the underlay 198.51.100.0/24 (RFC 5737; no default route anywhere), one
// VPP (vppsim or FD.io VPP) per node with an AF_PACKET uplink on its veth end,
// one agent per node (in the host namespace: the VPP API and memif sockets
// are files), one etcd (embedded in node A's agent) and memif CNFs. Each
// node gets one CrossConnect: its CNF's memif ↔ VXLAN towards the other node.

const (
	underlayA = "198.51.100.1"
	underlayB = "198.51.100.2"
	vxVNI     = 7001
	uplinkKey = "config/vpp/v2/interfaces/uplink"
)

var vethSeq atomic.Int32

type twoNodes struct {
	t        *testing.T
	ctx      context.Context
	lab      *lab.Lab
	ns       [2]*lab.Namespace
	veth     [2]string
	etcdAddr string
	// mainCore is FD.io VPP's main-thread CPU (the dataplane benchmark
	// pins the middle hops apart from their peers).
	mainCore int
}

func newTwoNodes(t *testing.T) *twoNodes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := lab.New(ctx, lab.Options{Name: "vx-" + t.Name(), Netns: lab.NetnsRequired}) // "vx-": a test may also have a one-node lab
	if err != nil {
		t.Skipf("the multi-node lab needs network namespaces (root, iproute2): %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var sb strings.Builder
			l.LogTails(&sb, 20000)
			t.Logf("process logs:\n%s", sb.String())
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	tn := &twoNodes{t: t, ctx: ctx, lab: l}
	for i, label := range []string{"node-a", "node-b"} {
		if tn.ns[i], err = l.AddNamespace(ctx, label); err != nil {
			t.Fatal(err)
		}
	}
	n := vethSeq.Add(1)
	tn.veth = [2]string{fmt.Sprintf("vx%d-%da", os.Getpid()%100000, n), fmt.Sprintf("vx%d-%db", os.Getpid()%100000, n)}
	tn.ip("-n", tn.ns[0].Name, "link", "add", tn.veth[0], "type", "veth", "peer", "name", tn.veth[1], "netns", tn.ns[1].Name)
	for i := range 2 {
		tn.quiet(i, tn.veth[i])
		tn.ip("-n", tn.ns[i].Name, "link", "set", tn.veth[i], "up")
	}
	return tn
}

func (tn *twoNodes) ip(args ...string) {
	tn.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tn.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// quiet turns IPv6 off on a link so the kernel sends nothing on its own.
func (tn *twoNodes) quiet(i int, link string) {
	tn.t.Helper()
	// sh rather than sysctl: procps is not among the CI packages.
	if out, err := exec.Command("ip", "netns", "exec", tn.ns[i].Name, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv6/conf/"+link+"/disable_ipv6").CombinedOutput(); err != nil {
		tn.t.Fatalf("sysctl in %s: %v: %s", tn.ns[i].Name, err, out)
	}
}

// node starts VPP (impl "vppsim" or "vpp") in node i's namespace and its
// agent, and configures the uplink (AF_PACKET on the veth end, with the
// node's underlay address).
func (tn *twoNodes) node(i int, impl string) *env {
	t := tn.t
	t.Helper()
	label := []string{"node-a", "node-b"}[i]
	e := &env{t: t, ctx: tn.ctx, lab: tn.lab, memif: tn.lab.Path(label + "-memif.sock"), agentLabel: label}
	var api, stats string
	switch impl {
	case "vppsim":
		api, stats = tn.lab.Path(label+"-api.sock"), tn.lab.Path(label+"-stats.sock")
		var err error
		if _, err = tn.lab.Start(tn.ctx, lab.ProcSpec{Name: label + "-vppsim", Namespace: tn.ns[i], Path: bin("vppsim"),
			Args: []string{"--socket", api, "--stats-socket", stats, "--log-level", "info"}}); err != nil {
			t.Fatal(err)
		}
		e.waitFile(api, 10*time.Second)
	case "vpp":
		v := vpprun.StartT(t, vpprun.Config{Netns: tn.ns[i].Name, MainCore: tn.mainCore})
		api, stats = v.APISocket, v.StatsSocket
	default:
		t.Fatalf("unknown VPP implementation %q", impl)
	}
	e.httpPort = freePort(t)
	args := []string{"--label", label, "--vpp-socket", api, "--vpp-stats-socket", stats,
		"--data-dir", tn.lab.Path(label + "-data"), "--socket-dir", tn.lab.Dir(), "--http", fmt.Sprintf("127.0.0.1:%d", e.httpPort),
		"--stats-interval", "200ms", "--counters-publish-interval", "300ms", "--log-level", "info"}
	if tn.etcdAddr == "" {
		tn.etcdAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		args = append(args, "--etcd-endpoints", "", "--etcd-listen", "http://"+tn.etcdAddr,
			"--etcd-peer", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	} else {
		args = append(args, "--etcd-endpoints", "http://"+tn.etcdAddr)
	}
	e.etcdAddr = tn.etcdAddr
	var err error
	if e.agent, err = tn.lab.Start(tn.ctx, lab.ProcSpec{Name: label + "-agent", Path: bin("vppmesh-agent"), Args: args}); err != nil {
		t.Fatal(err)
	}
	e.eventually(label+" agent ready", 30*time.Second, func() error {
		var st struct{ Ready bool }
		if err := e.ctlJSON(&st, "status"); err != nil {
			return err
		}
		if !st.Ready {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, cmd := range []string{"show interface", "show errors"} {
				out, err := e.ctl(append([]string{"vpp", "cli"}, strings.Fields(cmd)...)...)
				t.Logf("%s (%s) %s: %v\n%s", label, impl, cmd, err, out)
			}
		}
	})
	e.put(uplinkKey, map[string]any{"name": "uplink", "type": "AF_PACKET", "enabled": true,
		"ip_addresses": []string{[]string{underlayA, underlayB}[i] + "/24"},
		"afpacket":     map[string]any{"host_if_name": tn.veth[i]}})
	e.waitState(uplinkKey, "CONFIGURED")
	return e
}

func vxlanEnd(remote string, vni int) map[string]any {
	return map[string]any{"vxlan": map[string]any{"remote": remote, "vni": vni, "uplink": "uplink"}}
}

// xcCounters is one agent's counters of a cross-connect (agentctl stats).
func (e *env) xcCounters(name string) (ifstats.CrossConnectCounters, error) {
	r, err := e.counters()
	if err != nil {
		return ifstats.CrossConnectCounters{}, err
	}
	x, ok := r.CrossConnects[name]
	if !ok {
		return x, fmt.Errorf("no cross-connect %s in the counters", name)
	}
	return x, nil
}

// TestVxlanTwoNodes carries frames between a CNF on node A and a CNF on
// node B over VXLAN, both directions at once, for each pairing of VPP
// implementations: every frame arrives, in order; both agents' counters and
// their etcd statuses count them; deleting either node's key stops the
// traffic, putting it back restores it.
func TestVxlanTwoNodes(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"vppsim-vppsim", "vppsim", "vppsim"},
		{"vpp-vpp", "vpp", "vpp"},
		{"vppsim-vpp", "vppsim", "vpp"},
	} {
		t.Run(c.name, func(t *testing.T) { vxlanTwoNodes(t, c.a, c.b) })
	}
}

func vxlanTwoNodes(t *testing.T, implA, implB string) {
	tn := newTwoNodes(t)
	a, b := tn.node(0, implA), tn.node(1, implB)
	a.putXC("span", memifEnd(a.memif, 1), vxlanEnd(underlayB, vxVNI))
	b.putXC("span", memifEnd(b.memif, 1), vxlanEnd(underlayA, vxVNI))

	// Warm-up: the first frames towards an unresolved neighbour are dropped
	// while ARP resolves (in VPP as in vppsim); a few frames go before the
	// counted runs, while no sink listens. B learns A from A's request.
	a.startCNF(tn.ns[0], "warm-a", "gen", 1, "--count", "50", "--rate", "500", "--stream", "90").finish(false)

	const n = 3000
	run := func(from, to *env, fromI, toI int, dir string) {
		sink := to.startCNF(tn.ns[toI], "sink-"+dir, "sink", 1)
		sink.waitLinkUp()
		var before [2]ifstats.CrossConnectCounters
		for i, e := range []*env{from, to} {
			e.eventually("counters before "+dir, 15*time.Second, func() (err error) { before[i], err = e.xcCounters("span"); return err })
		}
		g := from.startCNF(tn.ns[fromI], "gen-"+dir, "gen", 1, "--count", strconv.Itoa(n), "--rate", "3000").finish(false)
		if g.Sent != n {
			t.Fatalf("%s: generator sent %d of %d", dir, g.Sent, n)
		}
		s := sink.waitReceived(n)
		if err := s.clean(); err != nil {
			t.Fatalf("%s: sink: %v", dir, err)
		}
		if got := sink.settle(); got != n {
			t.Fatalf("%s: sink received %d, sent %d", dir, got, n)
		}
		sink.finish(true)
		// Both agents count the frames: memif in and tunnel out on the
		// sender (a→b), tunnel in and memif out on the receiver (b→a); the
		// etcd status of each cross-connect says the same.
		for i, e := range []*env{from, to} {
			e.eventually(fmt.Sprintf("%s: %s counts %d frames", dir, e.agentLabel, n), 15*time.Second, func() error {
				x, err := e.xcCounters("span")
				if err != nil {
					return err
				}
				d := x.AtoB
				b := before[i].AtoB
				if i == 1 {
					d, b = x.BtoA, before[i].BtoA
				}
				if d.RxPackets-b.RxPackets != n || d.TxPackets-b.TxPackets != n {
					return fmt.Errorf("in %d out %d since the run started, want %d", d.RxPackets-b.RxPackets, d.TxPackets-b.TxPackets, n)
				}
				st, err := e.xcStatusCounters("span")
				if err != nil {
					return err
				}
				if st != x {
					return fmt.Errorf("etcd status counters %+v differ from the agent's %+v", st, x)
				}
				return nil
			})
		}
	}
	run(a, b, 0, 1, "a-to-b")
	run(b, a, 1, 0, "b-to-a")

	// Deleting either node's key stops the traffic; putting it back restores it.
	sink := b.startCNF(tn.ns[1], "sink-del", "sink", 1)
	sink.waitLinkUp()
	gen := a.startCNF(tn.ns[0], "gen-del", "gen", 1, "--rate", "2000", "--stream", "7")
	gen.waitLinkUp()
	got := sink.waitReceived(500).Received
	for _, side := range []*env{b, a} {
		side.del(xcKey("span"))
		side.waitGone(xcKey("span"))
		stopped := sink.settle()
		time.Sleep(time.Second) // the generator keeps sending: nothing may arrive
		if s, err := sink.live(); err != nil || s.Received != stopped {
			t.Fatalf("traffic continued after %s's key was deleted: %d then %d (%v)", side.agentLabel, stopped, s.Received, err)
		}
		side.putXC("span", memifEnd(side.memif, 1), vxlanEnd(map[*env]string{a: underlayB, b: underlayA}[side], vxVNI))
		got = sink.waitReceived(stopped + 500).Received
	}
	gen.finish(true)
	if s := sink.finish(true); s.Duplicates != 0 || s.Reordered != 0 || s.Received < got {
		t.Fatalf("sink across delete and re-put: %+v", s)
	}
}

// TestVxlanBadInputStatus: each bad vxlan end gets its own etcd status on a
// node whose good cross-connect keeps working: a VNI another cross-connect
// holds (FAILED, naming it), a VNI out of range (INVALID), an unknown uplink
// (the tunnel PENDING on it) and an uplink without an IPv4 address (the
// tunnel FAILED saying so).
func TestVxlanBadInputStatus(t *testing.T) {
	tn := newTwoNodes(t)
	a := tn.node(0, "vppsim")
	a.putXC("span", memifEnd(a.memif, 1), vxlanEnd(underlayB, vxVNI))
	a.put("config/vpp/v2/interfaces/bare", map[string]any{"name": "bare", "type": "SOFTWARE_LOOPBACK", "enabled": true})
	a.waitState("config/vpp/v2/interfaces/bare", "CONFIGURED")
	bad := map[string]map[string]any{
		"clash":    vxlanEnd(underlayB, vxVNI),
		"range":    vxlanEnd(underlayB, 1<<24),
		"nouplink": {"vxlan": map[string]any{"remote": underlayB, "vni": vxVNI + 1, "uplink": "eth9"}},
		"noaddr":   {"vxlan": map[string]any{"remote": underlayB, "vni": vxVNI + 2, "uplink": "bare"}},
	}
	id := 2
	for name, end := range bad {
		a.put(xcKey(name), map[string]any{"name": name, "a": memifEnd(a.memif, id), "b": end})
		id++
	}
	type derived struct {
		Key     string   `json:"key"`
		State   string   `json:"state"`
		Error   string   `json:"error"`
		Missing []string `json:"missing"`
	}
	type status struct {
		State   string    `json:"state"`
		Error   string    `json:"error"`
		Derived []derived `json:"derived"`
	}
	check := func(name string, ok func(s status) error) {
		a.eventually("status of "+name, 20*time.Second, func() error {
			var s status
			found, err := a.get("status/vppmesh/v1/xconnect/"+name, &s)
			if err != nil || !found {
				return fmt.Errorf("no status (%v)", err)
			}
			if err := ok(s); err != nil {
				return fmt.Errorf("%w: %+v", err, s)
			}
			return nil
		})
	}
	tunnel := func(s status, name string) derived {
		for _, d := range s.Derived {
			if d.Key == "config/vpp/v2/interfaces/"+name+"-b" {
				return d
			}
		}
		return derived{}
	}
	check("clash", func(s status) error {
		if s.State != "FAILED" || !strings.Contains(s.Error, `used by cross-connect "span"`) {
			return fmt.Errorf("want FAILED naming span")
		}
		return nil
	})
	check("range", func(s status) error {
		if s.State != "INVALID" || !strings.Contains(s.Error, "vxlan.vni 16777216 is out of range") {
			return fmt.Errorf("want INVALID: out of range")
		}
		return nil
	})
	check("nouplink", func(s status) error {
		d := tunnel(s, "nouplink")
		if d.State != "PENDING" || len(d.Missing) != 1 || d.Missing[0] != "config/vpp/v2/interfaces/eth9" {
			return fmt.Errorf("want the tunnel PENDING on the uplink")
		}
		return nil
	})
	check("noaddr", func(s status) error {
		d := tunnel(s, "noaddr")
		if d.State != "FAILED" || !strings.Contains(d.Error, `vxlan src_interface "bare" has no IPv4 address`) {
			return fmt.Errorf("want the tunnel FAILED: no IPv4 address")
		}
		return nil
	})
	check("span", func(s status) error {
		if s.State != "CONFIGURED" {
			return fmt.Errorf("want CONFIGURED")
		}
		return nil
	})
}
