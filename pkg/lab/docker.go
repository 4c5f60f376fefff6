package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// labLabel marks every container of a lab, so down finds them all.
const labLabel = "dev.vppmesh.lab"

func (r *runner) containerName(name string) string { return labPrefix(r.plan.Topo.Name) + name }

// labDockerHost is the daemon EnsureDocker starts; everything of it lives
// under /tmp/lab-docker.
const (
	labDockerBase = "/tmp/lab-docker"
	labDockerHost = "unix://" + labDockerBase + "/docker.sock"
)

func dockerAnswers(ctx context.Context) bool {
	return exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").Run() == nil
}

// reachDocker finds a daemon that answers: DOCKER_HOST or the default, then
// the one a lab started; it sets DOCKER_HOST to the one found.
func reachDocker(ctx context.Context) bool {
	if dockerAnswers(ctx) {
		return true
	}
	if os.Getenv("DOCKER_HOST") != "" {
		return false
	}
	os.Setenv("DOCKER_HOST", labDockerHost)
	if dockerAnswers(ctx) {
		return true
	}
	os.Unsetenv("DOCKER_HOST")
	return false
}

// EnsureDocker checks that the docker CLI reaches a daemon. When none answers
// and we are root, it starts dockerd with everything of its own under
// /tmp/lab-docker (vfs storage, no bridge, no iptables: containers run with
// --network none) and points DOCKER_HOST at it for this process. It says
// plainly why it cannot.
func EnsureDocker(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("docker runtime: the docker CLI is missing (Debian package docker.io)")
	}
	if reachDocker(ctx) {
		return nil
	}
	sock := labDockerHost
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return errors.New("docker runtime: no daemon answers and dockerd is missing (Debian package docker.io)")
	}
	if os.Geteuid() != 0 {
		return errors.New("docker runtime: no daemon answers and starting dockerd needs root")
	}
	base := labDockerBase
	if err := os.MkdirAll(base, 0o700); err != nil {
		return err
	}
	logF, err := os.OpenFile(base+"/dockerd.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logF.Close()
	cmd := exec.Command(dockerd, "--storage-driver=vfs", "--data-root="+base+"/data", "--exec-root="+base+"/exec",
		"--pidfile="+base+"/dockerd.pid", "-H", sock, "--bridge=none", "--iptables=false", "--ip6tables=false")
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("docker runtime: start dockerd: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	os.Setenv("DOCKER_HOST", sock)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if dockerAnswers(ctx) {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("docker runtime: dockerd started (pid %d) but does not answer on %s; see %s/dockerd.log", cmd.Process.Pid, sock, base)
}

func (r *runner) upDocker(ctx context.Context) error {
	if err := EnsureDocker(ctx); err != nil {
		return err
	}
	if err := r.state.update(func(s *State) { s.DockerHost = os.Getenv("DOCKER_HOST") }); err != nil {
		return err
	}
	p := r.plan
	cs, err := p.containers()
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.OneShot {
			continue
		}
		if _, err := run(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", c.Image); err != nil {
			return fmt.Errorf("node %s: image %s is not built (make images; nothing is pulled)", c.Node, c.Image)
		}
	}
	for _, n := range p.Nodes {
		if n.Kind == KindVPP {
			if err := os.MkdirAll(p.RunDir(n.Name), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p.ConfigFile(n.Name), []byte(n.ConfigLines()), 0o600); err != nil {
				return err
			}
		}
	}
	start := func(c container) error {
		name := r.containerName(c.Name)
		if err := r.state.update(func(s *State) {
			s.Containers = append(s.Containers, name)
			if c.Name == c.Node || c.Name == c.Node+"-agent" {
				s.Nodes[c.Node] = name
			}
		}); err != nil {
			return err
		}
		_ = exec.CommandContext(ctx, "docker", "rm", "-f", name).Run()
		args := []string{"run", "-d", "--name", name, "--label", labLabel + "=" + p.Topo.Name, "--label", "dev.vppmesh.node=" + c.Node}
		if c.NetworkFrom != "" {
			args = append(args, "--network", "container:"+r.containerName(c.NetworkFrom))
		} else {
			args = append(args, "--network", "none")
		}
		for _, b := range c.Binds {
			args = append(args, "-v", b)
		}
		for _, k := range sortedKeys(c.Env) {
			args = append(args, "-e", k+"="+c.Env[k])
		}
		args = append(args, c.Image)
		cargs := c.Args
		if pn := p.Node(c.Name); pn != nil && pn.Kind == KindCNF {
			stats := filepath.Join(p.Dir, "stats")
			args = append(args[:len(args)-1], "-v", stats+":"+stats, c.Image)
			cargs = p.CNFArgs(pn, r.statsFile(pn.Name))
		}
		args = append(args, cargs...)
		if _, err := run(ctx, "docker", args...); err != nil {
			return fmt.Errorf("node %s: %w", c.Node, err)
		}
		r.log.Info("container started", "node", c.Node, "container", name)
		return nil
	}
	var gens []container
	mesh := map[string]container{}
	for _, c := range cs {
		if c.OneShot {
			continue
		}
		if pn := p.Node(c.Name); pn != nil && pn.IsGen() {
			gens = append(gens, c)
			continue
		}
		if pn := p.Node(c.Name); pn != nil && pn.MeshRole() != "" {
			mesh[c.Name] = c // after the vpp nodes whose network they share
			continue
		}
		if err := start(c); err != nil {
			return err
		}
		if pn := p.Node(c.Node); pn.Kind == KindVPP && c.Name == c.Node {
			api := filepath.Join(p.RunDir(c.Node), "api.sock")
			if err := r.wait(ctx, c.Node+": VPP API socket", func() error { _, err := os.Stat(api); return err }); err != nil {
				return err
			}
		}
		if c.Name == c.Node+"-agent" {
			node := c.Node
			if err := r.wait(ctx, node+": agent ready", func() error {
				var st struct{ Ready bool }
				if err := r.ctlJSON(ctx, node, &st, "status"); err != nil {
					return err
				}
				if !st.Ready {
					return errors.New("not ready")
				}
				return nil
			}); err != nil {
				return err
			}
			if out, err := r.ctl(ctx, node, p.Node(node).ImportArgs(p.ConfigFile(node))...); err != nil {
				return fmt.Errorf("node %s: agent configuration: %w: %s", node, err, out)
			}
			r.say("node %s: vppsim and agent containers up, %d config key(s)%s put", node, len(p.Node(node).Config), servicesPut(p.Node(node)))
		}
	}
	for _, pl := range p.Links {
		if pl.Type == LinkVeth {
			if err := r.dockerVeth(ctx, pl); err != nil {
				return err
			}
		}
	}
	if err := r.waitLinks(ctx, false); err != nil {
		return err
	}
	if err := r.startMesh(ctx, func(n *PlanNode) error { return start(mesh[n.Name]) }); err != nil {
		return err
	}
	for _, n := range p.Nodes {
		for _, c := range n.Exec {
			if _, err := run(ctx, "docker", append([]string{"exec", r.state.Nodes[n.Name]}, strings.Fields(c)...)...); err != nil {
				return fmt.Errorf("node %s: exec %q: %w", n.Name, c, err)
			}
		}
	}
	if len(gens) == 0 {
		return nil
	}
	for _, g := range gens {
		if err := start(g); err != nil {
			return err
		}
	}
	r.say("burst: %d generator(s) started", len(gens))
	if err := r.waitLinks(ctx, true); err != nil {
		return err
	}
	for _, g := range gens {
		name := r.containerName(g.Name)
		if err := r.wait(ctx, "generator "+g.Name+" to finish", func() error {
			out, err := run(ctx, "docker", "inspect", "--format", "{{.State.Running}}", name)
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) == "true" {
				return errors.New("still sending")
			}
			return nil
		}); err != nil {
			return err
		}
	}
	time.Sleep(1500 * time.Millisecond)
	return nil
}

// dockerVeth makes a veth pair on the host and moves each end into its
// container's namespace by PID, renamed to the link's interface name.
func (r *runner) dockerVeth(ctx context.Context, pl *PlanLink) error {
	ends := pl.Link.Endpoints
	tmp := []string{fmt.Sprintf("vml%da%d", os.Getpid()%100000, pl.Index), fmt.Sprintf("vml%db%d", os.Getpid()%100000, pl.Index)}
	if _, err := run(ctx, "ip", "link", "add", tmp[0], "type", "veth", "peer", "name", tmp[1]); err != nil {
		return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
	}
	for i, e := range ends {
		out, err := run(ctx, "docker", "inspect", "--format", "{{.State.Pid}}", r.state.Nodes[e.Node])
		if err != nil {
			_ = exec.Command("ip", "link", "del", tmp[0]).Run()
			return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil || pid <= 0 {
			_ = exec.Command("ip", "link", "del", tmp[0]).Run()
			return fmt.Errorf("link %d (%s): container of %s has no pid (%q)", pl.Index, pl.Name, e.Node, out)
		}
		nsPath := fmt.Sprintf("/proc/%d/ns/net", pid)
		if _, err := run(ctx, "ip", "link", "set", tmp[i], "netns", strconv.Itoa(pid)); err != nil {
			_ = exec.Command("ip", "link", "del", tmp[i]).Run()
			return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
		}
		cmds := [][]string{{"link", "set", tmp[i], "name", e.Interface}}
		if e.MAC != "" {
			cmds = append(cmds, []string{"link", "set", e.Interface, "address", e.MAC})
		}
		if pl.Link.MTU != 0 {
			cmds = append(cmds, []string{"link", "set", e.Interface, "mtu", fmt.Sprint(pl.Link.MTU)})
		}
		for _, c := range cmds {
			if _, err := run(ctx, "nsenter", append([]string{"--net=" + nsPath, "ip"}, c...)...); err != nil {
				return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
			}
		}
		if err := r.vethEndSetup(ctx, pl, e, []string{"nsenter", "--net=" + nsPath, "ip"}, []string{"nsenter", "--net=" + nsPath}); err != nil {
			return err
		}
		if _, err := run(ctx, "nsenter", "--net="+nsPath, "ip", "link", "set", e.Interface, "up"); err != nil {
			return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
		}
	}
	return nil
}

// dockerLabContainers lists the lab's containers: those named in known and
// every container carrying the lab's label.
func dockerLabContainers(ctx context.Context, lab string, known []string) []string {
	seen := map[string]bool{}
	for _, c := range known {
		seen[c] = true
	}
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "--filter", "label="+labLabel+"="+lab, "--format", "{{.Names}}").Output()
	if err == nil {
		for _, n := range strings.Fields(string(out)) {
			seen[n] = true
		}
	}
	// Only containers that exist.
	var res []string
	for _, c := range sortedKeys(seen) {
		if exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.Id}}", c).Run() == nil {
			res = append(res, c)
		}
	}
	return res
}

// dockerStates lists the state of each container of node.
func dockerStates(ctx context.Context, st *State, node string) []string {
	var res []string
	prefix := labPrefix(st.Lab) + node
	for _, c := range st.Containers {
		if c != prefix && !strings.HasPrefix(c, prefix+"-") {
			continue
		}
		out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.State.Status}}", c).Output()
		s := strings.TrimSpace(string(out))
		if err != nil {
			s = "gone"
		}
		res = append(res, c+": "+s)
	}
	return res
}

// Images are the images BuildImages makes: Dockerfile (in docker/) → tag.
var Images = []struct{ Dockerfile, Tag string }{
	{"agent.Dockerfile", ImageAgent},
	{"vppsim.Dockerfile", ImageVPPSim},
	{"cnf.Dockerfile", ImageCNF},
}

// BuildImages builds the lab's images from dockerDir's Dockerfiles with the
// static binaries in binDir as the build context. Nothing is pulled: the
// Dockerfiles start FROM scratch.
func BuildImages(ctx context.Context, dockerDir, binDir string, out io.Writer) error {
	if err := EnsureDocker(ctx); err != nil {
		return err
	}
	for _, im := range Images {
		df := filepath.Join(dockerDir, im.Dockerfile)
		cmd := exec.CommandContext(ctx, "docker", "build", "--pull=false", "-q", "-f", df, "-t", im.Tag, binDir)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		b, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("docker build %s: %w: %s", im.Tag, err, strings.TrimSpace(string(b)))
		}
		lines := strings.Fields(string(b))
		id := ""
		if len(lines) > 0 {
			id = lines[len(lines)-1] // -q: the image id is the last word
		}
		fmt.Fprintf(out, "image %s built (%s)\n", im.Tag, id)
	}
	return nil
}
