package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodLab = `
name: t1
topology:
  defaults:
    env: {A: "1"}
  kinds:
    cnf:
      env: {B: "2"}
  nodes:
    vpp1:
      kind: vpp
      vpp:
        xconnect: [[m1, m2]]
        bridges:
          bd1: [m3, v1]
    c1: {kind: cnf, cmd: gen --count 10}
    c2: {kind: cnf, env: {B: "3"}}
    c3: {kind: cnf}
    vm: {kind: testpmd}
    h1: {kind: linux}
    h2: {kind: linux}
  links:
    - endpoints: ["c1:memif0", "vpp1:m1"]
    - endpoints: ["c2:memif0", "vpp1:m2"]
    - type: memif
      endpoints:
        - {node: c3, interface: memif0, mac: "02:00:00:00:00:03"}
        - {node: vpp1, interface: m3}
      secret: s3cret
      ring-size: 512
      mtu: 1500
    - type: vhost-user
      endpoints: ["vm:eth0", "vpp1:v1"]
      mtu: 1500
    - type: veth
      endpoints: ["h1:eth1", "h2:eth1"]
`

func TestParseGood(t *testing.T) {
	topo, err := Parse([]byte(goodLab))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(topo.NodeNames(), ","); got != "c1,c2,c3,h1,h2,vm,vpp1" {
		t.Errorf("nodes %s", got)
	}
	c2, _ := topo.Node("c2")
	if c2.Env["A"] != "1" || c2.Env["B"] != "3" {
		t.Errorf("c2 env %v: want defaults A=1 and its own B=3 over the kind's", c2.Env)
	}
	c3, _ := topo.Node("c3")
	if c3.Env["B"] != "2" {
		t.Errorf("c3 env %v: want the kind's B=2", c3.Env)
	}
	v, _ := topo.Node("vpp1")
	if v.VPP.Engine != EngineVPPSim {
		t.Errorf("engine %q: want the default vppsim", v.VPP.Engine)
	}
	l := topo.Topology.Links[2]
	if l.Endpoints[0].MAC != "02:00:00:00:00:03" || l.Secret != "s3cret" || l.LinkType() != LinkMemif {
		t.Errorf("long form link parsed as %+v", l)
	}
	if topo.Topology.Links[0].LinkType() != LinkMemif || topo.Topology.Links[0].Endpoints[1] != (Endpoint{Node: "vpp1", Interface: "m1"}) {
		t.Errorf("short form link parsed as %+v", topo.Topology.Links[0])
	}
	// Marshal → Parse gives the same topology.
	b, err := topo.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b)
	}
	if len(again.Topology.Links) != 5 || len(again.Topology.Nodes) != 7 {
		t.Errorf("re-parse lost things:\n%s", b)
	}
}

func TestParseBad(t *testing.T) {
	base := func(nodes, links string) string {
		return "name: bad\ntopology:\n  nodes:\n" + nodes + "  links:\n" + links
	}
	vppCNF := "    vpp1: {kind: vpp}\n    c1: {kind: cnf}\n    c2: {kind: cnf}\n"
	cases := []struct {
		name, file string
		want       []string
	}{
		{"unknown top key", "name: x\nmgmt: {}\ntopology:\n  nodes:\n    a: {kind: linux}\n", []string{"line 2", "mgmt"}},
		{"unknown node key", "name: x\ntopology:\n  nodes:\n    a: {kind: linux, startup-config: x}\n", []string{"line 4", "startup-config"}},
		{"unknown link key", base(vppCNF, "    - endpoints: [\"c1:m\", \"vpp1:m\"]\n      colour: red\n"), []string{"colour"}},
		{"duplicate key", "name: x\nname: y\ntopology:\n  nodes:\n    a: {kind: linux}\n", []string{"name"}},
		{"bad name", "name: Bad_Name\ntopology:\n  nodes:\n    a: {kind: linux}\n", []string{`name "Bad_Name"`}},
		{"no nodes", "name: x\ntopology: {}\n", []string{"no nodes"}},
		{"unknown kind", "name: x\ntopology:\n  nodes:\n    a: {kind: router}\n", []string{`node a: unknown kind "router"`}},
		{"no kind", "name: x\ntopology:\n  nodes:\n    a: {image: foo}\n", []string{"node a: no kind"}},
		{"dangling endpoint", base(vppCNF, "    - endpoints: [\"c9:memif0\", \"vpp1:m1\"]\n"), []string{`endpoint c9:memif0: no node "c9"`}},
		{"bad endpoint form", base(vppCNF, "    - endpoints: [\"c1\", \"vpp1:m1\"]\n"), []string{"want node:interface"}},
		{"long ifname", base(vppCNF, "    - endpoints: [\"c1:memif0\", \"vpp1:abcdefghijklmnop\"]\n"), []string{"interface name must be 1-15 bytes"}},
		{"endpoint twice", base(vppCNF, "    - endpoints: [\"c1:memif0\", \"vpp1:m1\"]\n    - endpoints: [\"c2:memif0\", \"vpp1:m1\"]\n"), []string{"vpp1:m1 is already used by link 1"}},
		{"two masters", "name: x\ntopology:\n  nodes:\n    v1: {kind: vpp}\n    v2: {kind: vpp}\n  links:\n    - endpoints: [\"v1:a\", \"v2:a\"]\n", []string{"two vpp ends: say which one is the memif master"}},
		{"master not an end", base(vppCNF, "    - endpoints: [\"c1:memif0\", \"vpp1:m1\"]\n      master: c2\n"), []string{`master "c2" is not an end`}},
		{"vhost server not an end", "name: x\ntopology:\n  nodes:\n    v1: {kind: vpp}\n    t: {kind: testpmd}\n    u: {kind: testpmd}\n  links:\n    - type: vhost-user\n      endpoints: [\"t:e\", \"v1:a\"]\n      server: u\n", []string{`server "u" is not an end`}},
		{"vhost two testpmds", "name: x\ntopology:\n  nodes:\n    t: {kind: testpmd}\n    u: {kind: testpmd}\n  links:\n    - type: vhost-user\n      endpoints: [\"t:e\", \"u:e\"]\n", []string{"joins one vpp node and one testpmd node"}},
		{"param of other type", base(vppCNF, "    - type: veth\n      endpoints: [\"c1:e1\", \"c2:e1\"]\n      secret: x\n"), []string{"memif parameters, not veth"}},
		{"memif on linux", "name: x\ntopology:\n  nodes:\n    v1: {kind: vpp}\n    h: {kind: linux}\n  links:\n    - endpoints: [\"h:e\", \"v1:a\"]\n", []string{"endpoint h:e is a linux node; a memif link joins vpp, cnf, testpmd nodes"}},
		{"cnf two memifs", base(vppCNF, "    - endpoints: [\"c1:a\", \"vpp1:m1\"]\n    - endpoints: [\"c1:b\", \"vpp1:m2\"]\n"), []string{"node c1: a cnf has one memif"}},
		{"mtu disagreement", "name: x\ntopology:\n  nodes:\n    vpp1: {kind: vpp, vpp: {xconnect: [[m1, m2]]}}\n    c1: {kind: cnf}\n    c2: {kind: cnf}\n  links:\n    - endpoints: [\"c1:a\", \"vpp1:m1\"]\n      mtu: 9000\n    - endpoints: [\"c2:a\", \"vpp1:m2\"]\n", []string{"joins m1 (mtu 9000) and m2 (mtu 1500): MTUs must agree"}},
		{"xconnect unknown iface", "name: x\ntopology:\n  nodes:\n    vpp1: {kind: vpp, vpp: {xconnect: [[m1, zz]]}}\n    c1: {kind: cnf}\n  links:\n    - endpoints: [\"c1:a\", \"vpp1:m1\"]\n", []string{"no link ends on vpp1:zz"}},
		{"iface in xconnect and bridge", "name: x\ntopology:\n  nodes:\n    vpp1: {kind: vpp, vpp: {xconnect: [[m1, m2]], bridges: {b: [m1, m2]}}}\n    c1: {kind: cnf}\n    c2: {kind: cnf}\n  links:\n    - endpoints: [\"c1:a\", \"vpp1:m1\"]\n    - endpoints: [\"c2:a\", \"vpp1:m2\"]\n", []string{"interface m1 is in both"}},
		{"vpp settings on cnf", "name: x\ntopology:\n  nodes:\n    c1: {kind: cnf, vpp: {engine: vpp}}\n", []string{"vpp settings on a cnf node"}},
		{"bad cnf mode", "name: x\ntopology:\n  nodes:\n    c1: {kind: cnf, cmd: flood}\n", []string{"a cnf runs gen, sink, reflect, endpoint or client"}},
		{"vxlan without vni", "name: x\ntopology:\n  nodes:\n    v1: {kind: vpp}\n  links:\n    - type: vxlan\n      endpoints: [\"v1:vx0\"]\n      remote: 198.51.100.2\n", []string{"vni 0", "must be one end of a vpp.xconnect pair", "node v1 has no uplink"}},
		{"unknown link type", base(vppCNF, "    - type: tap\n      endpoints: [\"c1:a\", \"vpp1:m1\"]\n"), []string{`unknown type "tap"`}},
		{"bad bind", "name: x\ntopology:\n  nodes:\n    c1: {kind: cnf, binds: [relative:/x]}\n", []string{"bind \"relative:/x\""}},
		{"ring size", base(vppCNF, "    - endpoints: [\"c1:a\", \"vpp1:m1\"]\n      ring-size: 1000\n"), []string{"ring-size 1000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.file))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.file)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

// TestValidateListsEveryProblem: one run names all problems, not the first.
func TestValidateListsEveryProblem(t *testing.T) {
	_, err := Parse([]byte("name: x\ntopology:\n  nodes:\n    a: {kind: router}\n    b: {kind: cnf, cmd: flood}\n  links:\n    - endpoints: [\"z:e\", \"b:e\"]\n"))
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("error %T %v: want *ValidationError", err, err)
	}
	if len(ve.Problems) != 3 {
		t.Errorf("%d problems, want 3 (kind, cmd, dangling): %v", len(ve.Problems), err)
	}
}

func TestExamplesValid(t *testing.T) {
	files, _ := filepath.Glob("../../docs/examples/labs/*.yaml")
	if len(files) < 4 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		topo, err := Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, err := NewPlan(topo, "/tmp/vppmesh-lab-"+topo.Name); err != nil {
			t.Errorf("%s: plan: %v", f, err)
		}
	}
}

func TestPlanXConnectConfig(t *testing.T) {
	topo, err := Load("../../docs/examples/labs/xconnect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(topo, "/tmp/lab-x")
	if err != nil {
		t.Fatal(err)
	}
	v := p.Node("vpp1")
	if keys := v.ConfigKeys(); len(keys) != 1 || keys[0] != "config/vppmesh/v1/xconnect/memif1-memif2" {
		t.Fatalf("vpp1 keys %v: want one CrossConnect", keys)
	}
	var xc struct {
		Name string
		A, B struct {
			Memif struct {
				Master         bool
				ID             uint32 `json:"id"`
				SocketFilename string `json:"socket_filename"`
			}
		}
	}
	if err := json.Unmarshal([]byte(v.Config["config/vppmesh/v1/xconnect/memif1-memif2"]), &xc); err != nil {
		t.Fatal(err)
	}
	if !xc.A.Memif.Master || !xc.B.Memif.Master || xc.A.Memif.SocketFilename != "/tmp/lab-x/sock/l1.sock" || xc.B.Memif.SocketFilename != "/tmp/lab-x/sock/l2.sock" || xc.A.Memif.ID != 1 {
		t.Errorf("cross-connect %+v: want VPP the master of both links, one socket each", xc)
	}
	if v.Ifaces["memif1"] != "memif1-memif2-a" || v.Ifaces["memif2"] != "memif1-memif2-b" {
		t.Errorf("VPP interface names %v", v.Ifaces)
	}
	args := strings.Join(p.CNFArgs(p.Node("gen"), "/s.json"), " ")
	for _, w := range []string{"gen --count 2000", "--socket /tmp/lab-x/sock/l1.sock", "--id 1", "--role slave", "--stats-file /s.json"} {
		if !strings.Contains(args, w) {
			t.Errorf("gen args %q lack %q", args, w)
		}
	}
	if strings.Count(args, "--count") != 1 {
		t.Errorf("gen args %q: the file's --count must not get a default one too", args)
	}
}

func TestPlanBridgeAndVhost(t *testing.T) {
	topo, err := Parse([]byte(goodLab))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(topo, "/tmp/lab-g")
	if err != nil {
		t.Fatal(err)
	}
	v := p.Node("vpp1")
	want := []string{"config/vpp/l2/v2/bridge-domain/bd1", "config/vpp/v2/interfaces/m3", "config/vpp/v2/interfaces/v1", "config/vppmesh/v1/xconnect/m1-m2"}
	if got := v.ConfigKeys(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("keys %v, want %v", got, want)
	}
	if s := v.Config["config/vpp/v2/interfaces/v1"]; !strings.Contains(s, `"type":"VHOST_USER"`) || !strings.Contains(s, `"server":true`) || !strings.Contains(s, `"enabled":true`) {
		t.Errorf("vhost-user interface %s: want VPP the server, admin up", s)
	}
	if s := v.Config["config/vpp/v2/interfaces/m3"]; !strings.Contains(s, `"secret":"s3cret"`) || !strings.Contains(s, `"ring_size":512`) {
		t.Errorf("memif %s: want the link's secret and ring size", s)
	}
	if s := v.Config["config/vpp/l2/v2/bridge-domain/bd1"]; !strings.Contains(s, `"name":"m3"`) || !strings.Contains(s, `"name":"v1"`) {
		t.Errorf("bridge %s: want m3 and v1", s)
	}
	vm := strings.Join(p.TestpmdArgs(p.Node("vm")), " ")
	if !strings.Contains(vm, "net_virtio_user0,path=/tmp/lab-g/sock/l4.sock") || strings.Contains(vm, "server=1") {
		t.Errorf("testpmd args %q: want a virtio-user client on link 4's socket", vm)
	}
}

func TestPlanVxlan(t *testing.T) {
	p, err := NewPlan(mustLoad(t, "vxlan"), "/tmp/lab-v")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ node, self, remote string }{{"node-a", "198.51.100.1/24", "198.51.100.2"}, {"node-b", "198.51.100.2/24", "198.51.100.1"}} {
		n := p.Node(c.node)
		up := n.Config["config/vpp/v2/interfaces/eth1"]
		for _, w := range []string{`"type":"AF_PACKET"`, `"host_if_name":"eth1"`, `"ip_addresses":["` + c.self + `"]`} {
			if !strings.Contains(up, w) {
				t.Errorf("%s uplink %s lacks %s", c.node, up, w)
			}
		}
		xc := n.Config["config/vppmesh/v1/xconnect/memif1-vx0"]
		if !strings.Contains(xc, `"vxlan":{"remote":"`+c.remote+`","vni":7001,"uplink":"eth1"}`) {
			t.Errorf("%s cross-connect %s: want a vxlan end to %s over eth1", c.node, xc, c.remote)
		}
	}
}

func TestParseVxlanBad(t *testing.T) {
	head := "name: x\ntopology:\n  nodes:\n    v1: {kind: vpp, vpp: {xconnect: [[m1, vx0]]}}\n    v2: {kind: vpp, vpp: {xconnect: [[m1, vx0]]}}\n    c1: {kind: cnf}\n    c2: {kind: cnf}\n  links:\n    - endpoints: [\"c1:a\", \"v1:m1\"]\n    - endpoints: [\"c2:a\", \"v2:m1\"]\n"
	for _, c := range []struct{ name, links, want string }{
		{"no uplink", "    - {type: vxlan, endpoints: [\"v1:vx0\", \"v2:vx0\"], vni: 5}\n", "node v1 has no uplink"},
		{"remote with two ends", "    - {type: veth, endpoints: [{node: v1, interface: e1, ipv4: 198.51.100.1/24}, {node: v2, interface: e1, ipv4: 198.51.100.2/24}]}\n    - {type: vxlan, endpoints: [\"v1:vx0\", \"v2:vx0\"], vni: 5, remote: 198.51.100.9}\n", "takes each end's remote from the other's uplink"},
		{"one end no remote", "    - {type: veth, endpoints: [{node: v1, interface: e1, ipv4: 198.51.100.1/24}, {node: v2, interface: e1}]}\n    - {type: vxlan, endpoints: [\"v1:vx0\"], vni: 5}\n", "needs the far VTEP's address"},
		{"bad ipv4", "    - {type: veth, endpoints: [{node: v1, interface: e1, ipv4: 198.51.100.300/24}, {node: v2, interface: e1}]}\n", "want an IPv4 address/prefix"},
		{"ipv4 on memif", "    - {endpoints: [{node: c1, interface: b, ipv4: 198.51.100.1/24}, {node: v1, interface: m9}]}\n", "ipv4 is for veth ends"},
		{"not in xconnect", "    - {type: veth, endpoints: [{node: v1, interface: e1, ipv4: 198.51.100.1/24}, {node: v2, interface: e1, ipv4: 198.51.100.2/24}]}\n    - {type: vxlan, endpoints: [\"v1:vx1\", \"v2:vx0\"], vni: 5}\n", "v1:vx1 must be one end of a vpp.xconnect pair"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(head + c.links))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v\nwant %q", err, c.want)
			}
		})
	}
}

func TestPlanLongDir(t *testing.T) {
	topo, _ := Load("../../docs/examples/labs/xconnect.yaml")
	if _, err := NewPlan(topo, "/tmp/"+strings.Repeat("d", 100)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("plan with a long directory: %v", err)
	}
}

func TestPreflightNames(t *testing.T) {
	topo, _ := Parse([]byte(goodLab))
	miss := Preflight(topo, Options{BinDir: t.TempDir(), Runtime: "lxc"})
	if len(miss) == 0 || !strings.Contains(strings.Join(miss, "\n"), `runtime "lxc"`) {
		t.Errorf("preflight %v: want the unknown runtime named", miss)
	}
	t.Setenv("PATH", t.TempDir())
	miss = Preflight(topo, Options{BinDir: t.TempDir()})
	all := strings.Join(miss, "\n")
	for _, w := range []string{"dpdk-testpmd not found", "vppmesh-cnf not found", "ip not found"} {
		if !strings.Contains(all, w) {
			t.Errorf("preflight:\n%s\ndoes not say %q", all, w)
		}
	}
	_ = os.Getpid
}
