package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

func TestMeshLabPlan(t *testing.T) {
	topo := mustLoad(t, "mesh")
	// The service came from mesh-service.json beside the lab file.
	ns, err := topo.Topology.Services["fw"].NetworkService("fw")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.GetMatches()) != 2 || ns.GetMatches()[0].GetSourceSelector()["tier"] != "gold" ||
		ns.GetMatches()[1].GetRoutes()[0].GetDestinationSelector()["tier"] != "std" || ns.GetPayload() != vppmeshv1.NetworkService_ETHERNET {
		t.Errorf("service read from its file as %v", ns)
	}
	p, err := NewPlan(topo, "/tmp/vppmesh-lab-mesh")
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, n := range p.MeshCNFs() {
		roles = append(roles, n.Name+"="+n.MeshRole())
	}
	if got := strings.Join(roles, " "); got != "ep-gold=endpoint ep-std1=endpoint ep-std2=endpoint c-gold=client c-std1=client c-std2=client" {
		t.Errorf("mesh CNFs (endpoints first) %s", got)
	}
	v := p.Node("vpp1")
	if len(v.Services) != 1 || v.Services[0][0] != "/vppmesh/v1/service/fw" || !strings.Contains(v.Services[0][1], `"sourceSelector":{"tier":"gold"}`) && !strings.Contains(v.Services[0][1], `"source_selector":{"tier":"gold"}`) {
		t.Errorf("vpp1 services %v", v.Services)
	}
	if !strings.Contains(v.ConfigLines(), "/vppmesh/v1/service/fw {") || strings.Join(v.ImportArgs("f"), " ") != "import --force f" {
		t.Errorf("vpp1 import: %v of\n%s", v.ImportArgs("f"), v.ConfigLines())
	}
	if got := strings.Join(p.CNFArgs(p.Node("c-gold"), "/s.json"), " "); got != "client --name c-gold --service fw --node vpp1 --socket /tmp/vppmesh-lab-mesh/sock/m-c-gold.sock --etcd 127.0.0.1:2379 --labels tier=gold --rate 200 --stats-file /s.json --stats-interval 200ms" {
		t.Errorf("c-gold args %s", got)
	}
	if got := strings.Join(p.CNFArgs(p.Node("ep-std1"), ""), " "); got != "endpoint --name ep-std1 --service fw --node vpp1 --socket /tmp/vppmesh-lab-mesh/sock/m-ep-std1.sock --etcd 127.0.0.1:2379 --labels tier=std,zone=a" {
		t.Errorf("ep-std1 args %s", got)
	}
	if got := strings.Join(p.CNFArgs(p.Node("c-std1"), ""), " "); strings.Count(got, "--rate") != 1 {
		t.Errorf("c-std1 sets its own rate, the lab adds none: %s", got)
	}
	// A mesh CNF's container shares its vpp node's network.
	for _, c := range p.mustContainers(t) {
		if pn := p.Node(c.Name); pn != nil && pn.MeshRole() != "" && c.NetworkFrom != "vpp1" {
			t.Errorf("container %s network from %q, want vpp1", c.Name, c.NetworkFrom)
		}
		if c.OneShot && !strings.Contains(strings.Join(c.Args, " "), "import --force /etc/vppmesh-lab/config.txt") {
			t.Errorf("config container %v", c.Args)
		}
	}
	// The state keeps the topology without its directory: the service goes inline.
	b, err := topo.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b)
	}
	if ns2, err := again.Topology.Services["fw"].NetworkService("fw"); err != nil || len(ns2.GetMatches()) != 2 {
		t.Errorf("re-parsed service %v %v", ns2, err)
	}
}

const meshInline = `name: m
topology:
  services:
    fw:
      payload: IP
      ip_pool: 198.51.100.0/24
      matches:
        - routes: [{destinationSelector: {tier: std}, weight: 2}]
  nodes:
    vpp1: {kind: vpp}
    ep: {kind: cnf, cmd: endpoint, mesh: {service: fw, labels: {tier: std}}}
    c1: {kind: cnf, cmd: "client --rate 50", mesh: {service: fw, vpp: vpp1}}
`

func TestMeshInlineService(t *testing.T) {
	topo, err := Parse([]byte(meshInline))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := topo.Topology.Services["fw"].NetworkService("fw")
	if err != nil {
		t.Fatal(err)
	}
	if ns.GetPayload() != vppmeshv1.NetworkService_IP || ns.GetIpPool() != "198.51.100.0/24" || ns.GetMatches()[0].GetRoutes()[0].GetWeight() != 2 {
		t.Errorf("inline service %v", ns)
	}
	// A service with every field at its default: ETHERNET, every endpoint.
	bare, err := Parse([]byte(strings.Replace(meshInline, "    fw:\n      payload: IP\n      ip_pool: 198.51.100.0/24\n      matches:\n        - routes: [{destinationSelector: {tier: std}, weight: 2}]\n", "    fw:\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if ns, err := bare.Topology.Services["fw"].NetworkService("fw"); err != nil || ns.GetPayload() != vppmeshv1.NetworkService_ETHERNET || len(ns.GetMatches()) != 0 {
		t.Errorf("bare service %v %v", ns, err)
	}
	d, m := DOT(topo), Mermaid(topo)
	if !strings.Contains(d, `"c1" -- "vpp1" [label="mesh client fw", style=dotted]`) || !strings.Contains(m, `n_ep -. "mesh endpoint fw {tier=std}" .- n_vpp1`) {
		t.Errorf("graphs lack the mesh edges:\n%s\n%s", d, m)
	}
}

func TestMeshParseBad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("extra.json", `{"name":"fw","colour":"red"}`)
	write("other.json", `{"name":"other"}`)
	ep := "    vpp1: {kind: vpp}\n    ep: {kind: cnf, cmd: endpoint, mesh: {service: fw}}\n"
	lab := func(services, nodes string) string {
		return "name: m\ntopology:\n  services:\n" + services + "  nodes:\n" + ep + nodes
	}
	cases := []struct {
		name, file string
		want       []string
	}{
		{"unknown service field", lab("    fw: {payload: ETHERNET, colour: red}\n", ""), []string{"topology.services.fw", `unknown field "colour"`}},
		{"wrong type", lab("    fw: {matches: yes}\n", ""), []string{"topology.services.fw: not a NetworkService"}},
		{"unknown field in file", lab("    fw: {file: extra.json}\n", ""), []string{"topology.services.fw", `unknown field "colour"`}},
		{"name differs", lab("    fw: {file: other.json}\n", ""), []string{`name "other" differs from the key "fw"`}},
		{"file outside", lab("    fw: {file: ../x.json}\n", ""), []string{"inside the lab file's directory"}},
		{"file missing", lab("    fw: {file: none.json}\n", ""), []string{"none.json"}},
		{"file and fields", lab("    fw: {file: extra.json, payload: IP}\n", ""), []string{"only the key file"}},
		{"ip without pool", lab("    fw: {payload: IP}\n", ""), []string{"topology.services.fw"}},
		{"bad service name", lab("    \"f/w\": {}\n", ""), []string{"topology.services.f/w"}},
		{"unserved", lab("    fw: {}\n    lb: {}\n", "    c: {kind: cnf, cmd: client, mesh: {service: lb}}\n"), []string{`node c: no endpoint of the lab serves "lb"`}},
		{"undefined service", lab("    fw: {}\n", "    c: {kind: cnf, cmd: client, mesh: {service: nat}}\n"), []string{`mesh.service "nat" is not in topology.services`}},
		{"mesh on linux", lab("    fw: {}\n", "    h: {kind: linux, mesh: {service: fw}}\n"), []string{"node h: mesh settings on a linux node"}},
		{"mesh on memif cnf", lab("    fw: {}\n", "    s: {kind: cnf, cmd: sink, mesh: {service: fw}}\n"), []string{"node s: mesh settings on a cnf whose cmd is not endpoint or client"}},
		{"client without mesh", lab("    fw: {}\n", "    c: {kind: cnf, cmd: client}\n"), []string{"node c: a mesh client needs mesh"}},
		{"managed flag", lab("    fw: {}\n", "    c: {kind: cnf, cmd: client --socket /x, mesh: {service: fw}}\n"), []string{"cmd sets --socket"}},
		{"bad labels", lab("    fw: {}\n", "    c: {kind: cnf, cmd: client, mesh: {service: fw, labels: {tier: \"a,b\"}}}\n"), []string{`mesh.labels "tier"="a,b"`}},
		{"not a vpp", lab("    fw: {}\n", "    c: {kind: cnf, cmd: client, mesh: {service: fw, vpp: ep}}\n"), []string{`mesh.vpp "ep" is not a vpp node`}},
		{"unknown mesh key", lab("    fw: {}\n", "    c: {kind: cnf, cmd: client, mesh: {service: fw, color: red}}\n"), []string{"color"}},
		{"two vpps", lab("    fw: {}\n", "    vpp2: {kind: vpp}\n"), []string{"node ep: the lab has 2 vpp nodes: say which one serves this CNF (mesh.vpp)"}},
		{"mesh cnf with a link", lab("    fw: {}\n", "  links:\n    - endpoints: [\"ep:memif0\", \"vpp1:memif1\"]\n"), []string{"node ep: a mesh endpoint has no links"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, "lab.yaml")
			write("lab.yaml", c.file)
			_, err := Load(f)
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
