package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vxlanPath: gen → memif → node A's middle hop → veth → node B's middle hop →
// memif → sink, two nodes as in the multi-node lab (TestVxlanTwoNodes).
// vppsim and VPP carry the frames in VXLAN over AF_PACKET uplinks; testpmd
// (one per node, io forwarding between a memif server port and a
// net_af_packet port on a second veth pair, so the VPPs' packet sockets do
// not see its frames) moves the same frames over the same kind of link
// without encapsulation (50 bytes less per frame). Both nodes' processes are
// the middle hop: both on the middle CPU, their CPU time and counters summed.
func (b *bench) vxlanPath(h *hop) path {
	e := h.e
	t := e.t
	t.Helper()
	tn := newTwoNodes(t)
	tn.mainCore = cpuMiddle
	if h.name == hopTestpmd {
		tp := [2]string{tn.veth[0] + "t", tn.veth[1] + "t"}
		tn.ip("-n", tn.ns[0].Name, "link", "add", tp[0], "type", "veth", "peer", "name", tp[1], "netns", tn.ns[1].Name)
		for i := range 2 {
			tn.quiet(i, tp[i])
			tn.ip("-n", tn.ns[i].Name, "link", "set", tp[i], "up")
		}
		var mids [2]*testpmd
		return path{genID: 1, sinkID: 1, loose: true,
			before: func(n int) (string, string, []int) {
				socks := [2]string{tn.lab.Path(fmt.Sprintf("tpvx-a-%d.sock", n)), tn.lab.Path(fmt.Sprintf("tpvx-b-%d.sock", n))}
				var pids []int
				for i := range 2 {
					mids[i] = b.testpmd(e, tn.ns[i], fmt.Sprintf("tpvx-%c-%d", 'a'+i, n), cpuMiddle,
						[]string{memifVdev(0, socks[i], 1, "server", 10), "net_af_packet0,iface=" + tp[i] + ",qpairs=1"})
					pids = append(pids, mids[i].p.Pid())
				}
				for i := range 2 {
					e.waitFile(socks[i], 20*time.Second)
				}
				return socks[0], socks[1], pids
			},
			after: func() (midCounters, bool) {
				var m midCounters
				for i := range 2 {
					mids[i].halt()
					for _, ps := range parseTestpmdStats(mids[i].p.Stdout()) {
						m = m.add(midCounters{Rx: ps.RX, Tx: ps.TX, TxFull: ps.TXDropped, Drops: ps.RXDropped})
					}
				}
				return m, true
			}}
	}
	a, z := tn.node(0, h.name), tn.node(1, h.name)
	a.putXC("benchvx", memifEnd(a.memif, 1, "ring_size", benchRing), vxlanEnd(underlayB, vxVNI))
	z.putXC("benchvx", memifEnd(z.memif, 1, "ring_size", benchRing), vxlanEnd(underlayA, vxVNI))
	// ARP resolves on the first frames (dropped meanwhile), before any trial.
	a.startCNF(tn.ns[0], "bvx-warm", "gen", 1, "--count", "50", "--rate", "500").finish(false)
	p := path{genID: 1, sinkID: 1, loose: true, after: func() (midCounters, bool) { return midCounters{}, false }}
	var pids []int
	for _, node := range []*env{a, z} {
		api, stats := agentFlag(t, node, "--vpp-socket"), agentFlag(t, node, "--vpp-stats-socket")
		pid := middlePid(t, api)
		if b.set.Pinned {
			pinPid(t, pid, cpuMiddle)
			pinPid(t, node.agent.Pid(), cpuPeers)
		}
		pids = append(pids, pid)
		sr, err := newStatsReader(stats, h.name == hopVPPSim)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sr.close)
		p.stats = append(p.stats, sr)
	}
	p.before = func(int) (string, string, []int) { return a.memif, z.memif, pids }
	return p
}

// agentFlag is the value of one of an env's agent flags, from its command line.
func agentFlag(t *testing.T, e *env, flag string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", e.agent.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	t.Fatalf("agent %s has no %s flag: %q", e.agent.Name, flag, args)
	return ""
}

// middlePid finds the process serving the VPP API socket api: a vppsim
// started with --socket api, or a VPP whose startup.conf sits beside it
// (vpprun). Both were started by this test, in a node's namespace.
func middlePid(t *testing.T, api string) int {
	t.Helper()
	marks := [][]byte{[]byte("\x00" + api + "\x00"), []byte("\x00" + filepath.Join(filepath.Dir(api), "startup.conf") + "\x00")}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue // gone meanwhile
		}
		cmd = append([]byte{0}, cmd...)
		if bytes.Contains(cmd, []byte("vppmesh-agent")) || bytes.HasPrefix(cmd[1:], []byte("ip\x00")) {
			continue
		}
		for _, m := range marks {
			if bytes.Contains(cmd, m) {
				return pid
			}
		}
	}
	t.Fatalf("no process serves the VPP API at %s", api)
	return 0
}
