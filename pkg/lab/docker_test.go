package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLabDocker runs the cross-connect lab in Docker, plus a veth link moved
// into two containers by PID, then takes it down. It needs the images (make
// images) and runs under make lab-docker (LAB_DOCKER=1), which builds them.
func TestLabDocker(t *testing.T) {
	if os.Getenv("LAB_DOCKER") == "" {
		t.Skip("docker lab: run make lab-docker (LAB_DOCKER=1; builds the images)")
	}
	if raceEnabled {
		t.Skip("runs in the plain test run")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (dockerd, veth pairs)")
	}
	ctx := context.Background()
	if err := EnsureDocker(ctx); err != nil {
		t.Fatal(err)
	}
	for _, im := range Images {
		if exec.Command("docker", "image", "inspect", im.Tag).Run() != nil {
			t.Fatalf("image %s missing: make images", im.Tag)
		}
	}
	topo, err := Load("../../docs/examples/labs/xconnect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo.Name = "dxc"
	// Two more containers joined by a veth pair.
	topo.Topology.Nodes["pa"] = NodeSpec{Kind: KindCNF, Cmd: "sink"}
	topo.Topology.Nodes["pb"] = NodeSpec{Kind: KindCNF, Cmd: "sink"}
	topo.Topology.Links = append(topo.Topology.Links, Link{Type: LinkVeth, MTU: 1400,
		Endpoints: []Endpoint{{Node: "pa", Interface: "eth1", MAC: "02:00:00:00:0a:01"}, {Node: "pb", Interface: "eth1"}}})
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "vml-t-dxc")
	var out bytes.Buffer
	opts := Options{Dir: dir, Runtime: RuntimeDocker, Timeout: 60 * time.Second, Out: &out}
	_, _ = Down(ctx, topo.Name, opts)
	rep, upErr := Up(ctx, topo, "", opts)
	if upErr == nil {
		var b bytes.Buffer
		rep.Print(&b)
		t.Logf("%s", b.String())
		sent := end(t, rep, 1, "gen:memif0").Sent
		if sent != 2000 || end(t, rep, 2, "sink:memif0").Received != sent || end(t, rep, 1, "vpp1:memif1").Received != sent {
			t.Errorf("traffic: want 2000 frames from gen through vpp1 to sink")
		}
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st.Containers {
			mode, _ := exec.Command("docker", "inspect", "--format", "{{.HostConfig.NetworkMode}}", c).Output()
			if m := strings.TrimSpace(string(mode)); m != "none" && !strings.HasPrefix(m, "container:") {
				t.Errorf("container %s network mode %q: want none or another container's", c, m)
			}
		}
		pid, err := exec.Command("docker", "inspect", "--format", "{{.State.Pid}}", st.Nodes["pa"]).Output()
		if err != nil {
			t.Fatal(err)
		}
		link, err := exec.Command("nsenter", "--net=/proc/"+strings.TrimSpace(string(pid))+"/ns/net", "ip", "-o", "link", "show", "eth1").CombinedOutput()
		if err != nil || !strings.Contains(string(link), "mtu 1400") || !strings.Contains(string(link), "02:00:00:00:0a:01") || !strings.Contains(string(link), "UP") {
			t.Errorf("veth end in pa: %v: %s", err, link)
		}
	}
	down, err := Down(ctx, topo.Name, opts)
	if err != nil {
		t.Errorf("down: %v", err)
	}
	if upErr != nil {
		t.Fatalf("up: %v\n%s", upErr, out.String())
	}
	if left := dockerLabContainers(ctx, topo.Name, nil); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
	assertGone(t, topo.Name, dir, down)
}

// TestLabDockerExamples runs the other memif examples in Docker (make
// lab-docker-all, LAB_DOCKER=all): frames counted at every end as in netns.
func TestLabDockerExamples(t *testing.T) {
	if os.Getenv("LAB_DOCKER") != "all" || raceEnabled || os.Geteuid() != 0 {
		t.Skip("docker labs: run make lab-docker-all (root, LAB_DOCKER=all)")
	}
	ctx := context.Background()
	if err := EnsureDocker(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bridge", "service-chain", "vxlan"} {
		t.Run(name, func(t *testing.T) {
			topo := mustLoad(t, name)
			delete(topo.Topology.Nodes, "etcd") // no etcd nodes in Docker yet: each agent embeds its own
			dir := filepath.Join(os.TempDir(), "vml-t-d"+name)
			opts := Options{Dir: dir, Runtime: RuntimeDocker, Timeout: 60 * time.Second}
			_, _ = Down(ctx, topo.Name, opts)
			rep, upErr := Up(ctx, topo, "", opts)
			if upErr == nil {
				linkUp(t, rep)
				for _, l := range rep.Links {
					for _, e := range l.Ends {
						if e.Source != "none" && e.Sent+e.Received == 0 {
							t.Errorf("link %d end %s counted nothing", l.Link, e.Endpoint)
						}
					}
				}
			}
			down, err := Down(ctx, topo.Name, opts)
			if err != nil {
				t.Errorf("down: %v", err)
			}
			if upErr != nil {
				t.Fatalf("up: %v", upErr)
			}
			if left := dockerLabContainers(ctx, topo.Name, nil); len(left) > 0 {
				t.Errorf("containers left: %v", left)
			}
			assertGone(t, topo.Name, dir, down)
		})
	}
}

// composeReady skips unless the compose labs are asked for and can run, and
// starts Docker; it returns the docker-compose binary.
func composeReady(t *testing.T) string {
	t.Helper()
	if os.Getenv("LAB_DOCKER") != "all" || raceEnabled || os.Geteuid() != 0 {
		t.Skip("compose lab: run make lab-docker-all (root, LAB_DOCKER=all)")
	}
	dc, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (Debian package docker-compose)")
	}
	if err := EnsureDocker(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dc
}

// writeCompose plans topo into a fresh dir, writes its configuration files
// and its compose export; it returns the compose file's path.
func writeCompose(t *testing.T, topo *Topology, dir string) string {
	t.Helper()
	os.RemoveAll(dir)
	p, err := NewPlan(topo, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Compose()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteConfigs(); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestLabDockerCompose brings the cross-connect lab's compose export up with
// docker-compose (make lab-docker-all): the config service imports the
// agent's configuration, the memifs come up and VPP forwards the
// generator's frames. Then compose takes it down.
func TestLabDockerCompose(t *testing.T) {
	dc := composeReady(t)
	ctx := context.Background()
	topo := mustLoad(t, "xconnect")
	gen := topo.Topology.Nodes["gen"]
	gen.Cmd = "gen --rate 1000 --duration 60s" // no ordering in compose: keep sending until the sink is there
	topo.Topology.Nodes["gen"] = gen
	dir := filepath.Join(os.TempDir(), "vml-t-compose")
	defer os.RemoveAll(dir)
	f := writeCompose(t, topo, dir)
	compose := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, dc, append([]string{"-p", "vmlcompose", "-f", f}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	defer func() {
		if out, err := compose("down", "-v", "--timeout", "5"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	}()
	if out, err := compose("up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	agent := "vmlcompose_vpp1-agent_1"
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		out, err := exec.Command("docker", "exec", agent, "agentctl", "-e", "127.0.0.1:2379", "--service-label", "vpp1",
			"kvdb", "get", "vpp/status/v2/interface/memif1-memif2-b").CombinedOutput()
		last = string(out)
		if err == nil && strings.Contains(last, `"oper_status":"UP"`) && strings.Contains(last, `"out_packets"`) {
			return // VPP sends the generator's frames to the sink
		}
		time.Sleep(500 * time.Millisecond)
	}
	logs, _ := compose("logs", "--tail", "20")
	t.Fatalf("no frames through the compose lab; last state %s\n%s", last, logs)
}

// TestLabDockerMesh runs the mesh lab in Docker (make lab-docker): vppsim
// and agent containers, six CNF containers sharing vpp1's network (its
// agent's etcd), the service put with the configuration; every connection
// UP on an endpoint its labels select, with traffic.
func TestLabDockerMesh(t *testing.T) {
	if os.Getenv("LAB_DOCKER") == "" || raceEnabled || os.Geteuid() != 0 {
		t.Skip("docker mesh lab: run make lab-docker (root, LAB_DOCKER=1; builds the images)")
	}
	ctx := context.Background()
	if err := EnsureDocker(ctx); err != nil {
		t.Fatal(err)
	}
	topo := mustLoad(t, "mesh")
	topo.Name = "dmesh"
	dir := filepath.Join(os.TempDir(), "vml-t-dmesh")
	var out bytes.Buffer
	opts := Options{Dir: dir, Runtime: RuntimeDocker, Timeout: 60 * time.Second, Out: &out}
	_, _ = Down(ctx, topo.Name, opts)
	rep, upErr := Up(ctx, topo, "", opts)
	if upErr == nil {
		var b bytes.Buffer
		rep.Print(&b)
		t.Logf("%s", b.String())
		want := map[string]string{"c-gold": "ep-gold", "c-std1": "ep-std", "c-std2": "ep-std"}
		seen := map[string]bool{}
		for _, c := range rep.Connections {
			if c.State != "UP" || !strings.HasPrefix(c.Endpoint, want[c.Connection]) || c.Received < meshBurst || c.Reflected == 0 {
				t.Errorf("connection %+v: want UP on %s*, traffic both ways", c, want[c.Connection])
			}
			seen[c.Endpoint] = true
		}
		if len(rep.Connections) != 3 || len(seen) != 3 {
			t.Errorf("connections %+v: want three, one per endpoint", rep.Connections)
		}
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := exec.Command("docker", "inspect", "--format", "{{.Id}}", labPrefix("dmesh")+"vpp1").Output()
		for _, n := range []string{"ep-gold", "c-std2"} {
			mode, _ := exec.Command("docker", "inspect", "--format", "{{.HostConfig.NetworkMode}}", st.Nodes[n]).Output()
			if m := strings.TrimSpace(string(mode)); m != "container:"+strings.TrimSpace(string(id)) {
				t.Errorf("%s network mode %q: want vpp1's", n, m)
			}
		}
	}
	down, err := Down(ctx, topo.Name, opts)
	if err != nil {
		t.Errorf("down: %v", err)
	}
	if upErr != nil {
		for _, c := range []string{"vpp1", "vpp1-agent", "c-gold", "ep-gold"} {
			logs, _ := exec.Command("docker", "logs", "--tail", "10", labPrefix("dmesh")+c).CombinedOutput()
			t.Logf("--- %s\n%s", c, logs)
		}
		t.Fatalf("up: %v\n%s", upErr, out.String())
	}
	if left := dockerLabContainers(ctx, topo.Name, nil); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
	assertGone(t, topo.Name, dir, down)
}

// TestLabDockerComposeMesh brings the mesh lab's compose export up (make
// lab-docker-all): the config service puts the service with vpp1's
// configuration, the CNFs in vpp1's network register and request, and every
// connection comes UP on an endpoint its labels select.
func TestLabDockerComposeMesh(t *testing.T) {
	dc := composeReady(t)
	ctx := context.Background()
	dir := filepath.Join(os.TempDir(), "vml-t-cmesh")
	defer os.RemoveAll(dir)
	f := writeCompose(t, mustLoad(t, "mesh"), dir)
	compose := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, dc, append([]string{"-p", "vmlcmesh", "-f", f}, args...)...).CombinedOutput()
		return string(out), err
	}
	defer func() {
		if out, err := compose("down", "-v", "--timeout", "5"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	}()
	if out, err := compose("up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	want := map[string]string{"c-gold": "ep-gold", "c-std1": "ep-std", "c-std2": "ep-std"}
	var last string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command("docker", "exec", "vmlcmesh_vpp1-agent_1", "agentctl", "-e", "127.0.0.1:2379", "mesh", "connections", "-o", "json").CombinedOutput()
		last = string(out)
		var conns []struct {
			ID     string `json:"id"`
			Status struct {
				State    string `json:"state"`
				Endpoint string `json:"endpoint"`
			} `json:"status"`
		}
		if err == nil && json.Unmarshal(out, &conns) == nil && len(conns) == 3 {
			ok := true
			for _, c := range conns {
				ok = ok && c.Status.State == "UP" && strings.HasPrefix(c.Status.Endpoint, want[c.ID])
			}
			if ok {
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	logs, _ := compose("logs", "--tail", "10")
	t.Fatalf("mesh connections not all UP on their endpoints; last %s\n%s", last, logs)
}
