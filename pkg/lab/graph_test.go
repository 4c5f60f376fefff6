package lab

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v2"
)

func mustLoad(t *testing.T, name string) *Topology {
	t.Helper()
	topo, err := Load("../../docs/examples/labs/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestMermaid(t *testing.T) {
	m := Mermaid(mustLoad(t, "service-chain"))
	if !strings.HasPrefix(strings.SplitN(m, "\n", 2)[1], "flowchart LR") {
		t.Errorf("no flowchart header:\n%s", m)
	}
	nodes := regexp.MustCompile(`(?m)^  (n_\w+)[\[(]`).FindAllStringSubmatch(m, -1)
	if len(nodes) != 4 {
		t.Errorf("%d node lines, want 4:\n%s", len(nodes), m)
	}
	edges := regexp.MustCompile(`(?m)^  (n_\w+) -- "memif: (\S+) ⇄ (\S+)" --- (n_\w+)$`).FindAllStringSubmatch(m, -1)
	if len(edges) != 4 {
		t.Fatalf("%d edges, want 4:\n%s", len(edges), m)
	}
	if e := edges[1]; e[1] != "n_vpp1" || e[2] != "fw-in" || e[3] != "in" || e[4] != "n_fw" {
		t.Errorf("edge 2 %v: want vpp1 fw-in ⇄ in fw", e[1:])
	}
	if !strings.Contains(m, `n_vpp1[["vpp1<br/><small>vpp (vppsim)</small>"]]`) {
		t.Errorf("vpp node not drawn as a vpp:\n%s", m)
	}
}

func TestDOT(t *testing.T) {
	d := DOT(mustLoad(t, "vhost-vm"))
	for _, w := range []string{
		`"vm" [label="vm\ntestpmd", shape=component`,
		`"gen" -- "vpp1" [label="memif", taillabel="memif0", headlabel="memif1", style=solid];`,
		`"vm" -- "vpp1" [label="vhost-user", taillabel="eth0", headlabel="vhost1", style=bold];`,
	} {
		if !strings.Contains(d, w) {
			t.Errorf("dot lacks %s:\n%s", w, d)
		}
	}
	if n := strings.Count(d, " -- "); n != 2 {
		t.Errorf("%d edges, want 2", n)
	}
}

func TestSVG(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("Graphviz dot not installed (Debian package graphviz)")
	}
	svg, err := SVG(context.Background(), mustLoad(t, "bridge"))
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed XML whose text holds every node name.
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	var text strings.Builder
	sawSVG := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case xml.StartElement:
			sawSVG = sawSVG || v.Name.Local == "svg"
		case xml.CharData:
			text.Write(v)
			text.WriteByte('\n')
		}
	}
	if !sawSVG {
		t.Fatalf("no <svg> element")
	}
	for _, n := range []string{"vpp1", "gen", "sink1", "sink2", "memif1", "memif3"} {
		if !regexp.MustCompile(`(?m)^` + n + `$`).MatchString(text.String()) {
			t.Errorf("SVG text lacks %s", n)
		}
	}
}

func TestExportCompose(t *testing.T) {
	p, err := NewPlan(mustLoad(t, "xconnect"), "/tmp/vppmesh-lab-xconnect")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Compose()
	if err != nil {
		t.Fatal(err)
	}
	var f ComposeFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	want := map[string]string{"vpp1": "none", "vpp1-agent": "service:vpp1", "vpp1-config": "service:vpp1", "gen": "none", "sink": "none"}
	if len(f.Services) != len(want) {
		t.Errorf("services %v", f.Services)
	}
	for name, mode := range want {
		s, ok := f.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if s.NetworkMode != mode {
			t.Errorf("%s network_mode %q, want %q (never Docker's bridge)", name, s.NetworkMode, mode)
		}
		if !contains(s.Volumes, "/tmp/vppmesh-lab-xconnect/sock:/tmp/vppmesh-lab-xconnect/sock") && name != "vpp1-config" {
			t.Errorf("%s volumes %v: want the socket directory at the same path", name, s.Volumes)
		}
	}
	if s := f.Services["gen"]; s.Image != ImageCNF || !strings.Contains(strings.Join(s.Command, " "), "--socket /tmp/vppmesh-lab-xconnect/sock/l1.sock") {
		t.Errorf("gen service %+v", s)
	}
	if s := f.Services["vpp1-config"]; len(s.Entrypoint) != 1 || s.Entrypoint[0] != "agentctl" || s.Command[len(s.Command)-1] != "/etc/vppmesh-lab/config.txt" {
		t.Errorf("config service %+v: want agentctl import of the node's config", s)
	}
	if s := f.Services["vpp1-agent"]; !strings.Contains(strings.Join(s.Command, " "), "--label vpp1") {
		t.Errorf("agent service %+v", s)
	}
}

// TestExportMeshCompose: a mesh CNF shares its vpp node's network (the
// agent's etcd on the loopback), and the config service puts the lab's
// services with the node's configuration.
func TestExportMeshCompose(t *testing.T) {
	p, err := NewPlan(mustLoad(t, "mesh"), "/tmp/vppmesh-lab-mesh")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Compose()
	if err != nil {
		t.Fatal(err)
	}
	var f ComposeFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for _, n := range []string{"ep-gold", "ep-std1", "ep-std2", "c-gold", "c-std1", "c-std2"} {
		s := f.Services[n]
		if s.NetworkMode != "service:vpp1" || !contains(s.DependsOn, "vpp1") || !strings.Contains(strings.Join(s.Command, " "), "--etcd 127.0.0.1:2379") {
			t.Errorf("%s: %+v: want vpp1's network and its etcd", n, s)
		}
	}
	if s := f.Services["vpp1-config"]; strings.Join(s.Command[len(s.Command)-3:], " ") != "import --force /etc/vppmesh-lab/config.txt" {
		t.Errorf("config service %v", s.Command)
	}
	if len(f.XLinks) != 0 {
		t.Errorf("x-links %v: the mesh lab has no links", f.XLinks)
	}
}

// TestComposeAcceptedByDockerCompose: docker-compose config reads every
// example's export without complaint.
func TestComposeAcceptedByDockerCompose(t *testing.T) {
	dc, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (Debian package docker-compose)")
	}
	for _, name := range []string{"xconnect", "bridge", "service-chain", "vhost-vm", "mesh"} {
		topo := mustLoad(t, name)
		if name == "vhost-vm" {
			vm := topo.Topology.Nodes["vm"]
			vm.Image = "local/testpmd:1"
			topo.Topology.Nodes["vm"] = vm
		}
		p, err := NewPlan(topo, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Compose()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "compose.yaml")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(dc, "-f", f, "config", "--services")
		cmd.Dir = filepath.Dir(f)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: docker-compose config: %v\n%s", name, err, out)
			continue
		}
		services := strings.Fields(string(out))
		if len(services) != len(p.mustContainers(t)) {
			t.Errorf("%s: docker-compose sees services %v", name, services)
		}
	}
}

func (p *Plan) mustContainers(t *testing.T) []container {
	cs, err := p.containers()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestExportContainerlab(t *testing.T) {
	topo, err := Parse([]byte(goodLab))
	if err != nil {
		t.Fatal(err)
	}
	// linux and testpmd nodes need an image in containers.
	if p, _ := NewPlan(topo, "/tmp/lab-c"); p != nil {
		if _, err := p.Containerlab(); err == nil || !strings.Contains(err.Error(), "needs an image") {
			t.Errorf("export without images: %v", err)
		}
	}
	for _, n := range []string{"h1", "h2", "vm"} {
		s := topo.Topology.Nodes[n]
		s.Image = "local/" + n + ":1"
		topo.Topology.Nodes[n] = s
	}
	p, err := NewPlan(topo, "/tmp/lab-c")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Containerlab()
	if err != nil {
		t.Fatal(err)
	}
	// Checked against containerlab's published schema (schemas/clab.schema.json):
	// node keys it defines, kind linux, network-mode "container:NAME", cmd a
	// string, links' endpoints "node:interface" naming existing nodes.
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for k := range raw {
		if k != "name" && k != "topology" {
			t.Errorf("top-level key %q", k)
		}
	}
	var f ClabFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	allowed := map[string]bool{"kind": true, "image": true, "cmd": true, "entrypoint": true, "env": true, "binds": true, "exec": true, "labels": true, "network-mode": true}
	nodes := raw["topology"].(map[any]any)["nodes"].(map[any]any)
	for name, n := range nodes {
		for k := range n.(map[any]any) {
			if !allowed[k.(string)] {
				t.Errorf("node %v: key %v is not in containerlab's node schema", name, k)
			}
		}
	}
	netMode := regexp.MustCompile(`^(host)|(container:\S+)|(none)$`)
	for name, n := range f.Topology.Nodes {
		if n.Kind != "linux" || n.Image == "" {
			t.Errorf("node %s: kind %q image %q", name, n.Kind, n.Image)
		}
		if n.NetworkMode != "" && !netMode.MatchString(n.NetworkMode) {
			t.Errorf("node %s network-mode %q", name, n.NetworkMode)
		}
	}
	if n := f.Topology.Nodes["vpp1-agent"]; n.NetworkMode != "container:vpp1" {
		t.Errorf("agent network-mode %q", n.NetworkMode)
	}
	if len(f.Topology.Links) != 1 || strings.Join(f.Topology.Links[0].Endpoints, " ") != "h1:eth1 h2:eth1" {
		t.Errorf("links %v: want only the veth link", f.Topology.Links)
	}
	for _, l := range f.Topology.Links {
		for _, e := range l.Endpoints {
			node, _, _ := strings.Cut(e, ":")
			if _, ok := f.Topology.Nodes[node]; !ok {
				t.Errorf("link endpoint %s: no such node", e)
			}
		}
	}
	if !strings.Contains(f.Topology.Nodes["c1"].Cmd, "gen --count 10 --socket /tmp/lab-c/sock/l1.sock") {
		t.Errorf("c1 cmd %q", f.Topology.Nodes["c1"].Cmd)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestExportContainerlabSchema validates every example's export against
// containerlab's schema (testdata/clab.schema.excerpt.json, see its README)
// with Python's jsonschema (Debian package python3-jsonschema).
func TestExportContainerlabSchema(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import jsonschema").Run() != nil {
		t.Skip("python3 with jsonschema not installed (Debian package python3-jsonschema)")
	}
	schema, err := filepath.Abs("testdata/clab.schema.excerpt.json")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, doc []byte) error {
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return err
		}
		j, err := json.Marshal(jsonable(v))
		if err != nil {
			return err
		}
		f := filepath.Join(t.TempDir(), name+".json")
		if err := os.WriteFile(f, j, 0o644); err != nil {
			return err
		}
		out, err := exec.Command(py, "-c", `import json, sys, jsonschema
s = json.load(open(sys.argv[1])); d = json.load(open(sys.argv[2]))
errs = sorted(jsonschema.Draft7Validator(s).iter_errors(d), key=str)
for e in errs: print(list(e.absolute_path), e.message)
sys.exit(1 if errs else 0)`, schema, f).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	// The check itself must be able to fail: a node key containerlab lacks.
	if err := check("bad", []byte("name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: i, memif: yes}\n")); err == nil {
		t.Fatal("schema accepted an unknown node key: the check checks nothing")
	}
	for _, name := range []string{"xconnect", "bridge", "service-chain", "vxlan", "mesh"} {
		topo := mustLoad(t, name)
		if e, ok := topo.Topology.Nodes["etcd"]; ok {
			e.Image = "local/etcd:3.4" // the export needs an image for it
			topo.Topology.Nodes["etcd"] = e
		}
		p, err := NewPlan(topo, "/tmp/vppmesh-lab-"+name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Containerlab()
		if err != nil {
			t.Fatal(err)
		}
		if err := check(name, b); err != nil {
			t.Errorf("%s: export does not validate: %v\n%s", name, err, b)
		}
	}
}
