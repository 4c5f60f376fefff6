package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

// Runtimes.
const (
	RuntimeNetns  = "netns"
	RuntimeDocker = "docker"
)

// Options configure up, down, status and exec.
type Options struct {
	// Dir is the lab directory (sockets, logs, state); default
	// /tmp/vppmesh-lab-<name>.
	Dir string
	// Runtime is netns (default) or docker.
	Runtime string
	// BinDir holds vppsim, vppmesh-agent, agentctl and vppmesh-cnf; default:
	// the running program's directory, then PATH.
	BinDir string
	// Timeout bounds each wait of up (default 60s).
	Timeout time.Duration
	// Logger gets one line per lifecycle event (default: discard).
	Logger *slog.Logger
	// Out gets the human progress lines and the report (default: discard).
	Out io.Writer
}

func (o *Options) defaults(name string) {
	if o.Dir == "" {
		o.Dir = DefaultDir(name)
	}
	if o.Runtime == "" {
		o.Runtime = RuntimeNetns
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// DefaultDir is a lab's directory when none is given: short, because unix
// socket paths hold 107 bytes.
func DefaultDir(name string) string { return filepath.Join(os.TempDir(), "vppmesh-lab-"+name) }

// nsName is the network namespace of a node.
func nsName(lab, node string) string { return labPrefix(lab) + node }

// labPrefix starts the name of everything a lab makes (namespaces,
// containers, DPDK and VPP run files): the '.' cannot occur in lab or node
// names, so lab "a" never takes lab "a-b"'s things for its own.
func labPrefix(lab string) string { return "vml-" + lab + "." }

// binary finds a program: BinDir, the running program's directory, PATH.
func (o *Options) binary(name string) (string, error) {
	var dirs []string
	if o.BinDir != "" {
		dirs = append(dirs, o.BinDir)
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in %s or PATH", name, strings.Join(dirs, ", "))
	}
	return p, nil
}

// Preflight lists, one line each, what the runtime needs and this machine
// lacks for topology t. An empty list means up can start.
func Preflight(t *Topology, opts Options) []string {
	opts.defaults(t.Name)
	var miss []string
	if os.Geteuid() != 0 {
		miss = append(miss, fmt.Sprintf("root: the %s runtime creates namespaces and veth pairs (running as uid %d)", opts.Runtime, os.Geteuid()))
	}
	need := map[string]string{}
	kinds := map[string]bool{}
	for _, n := range t.Nodes() {
		kinds[n.Kind] = true
		if n.Kind == KindVPP && n.VPP.Engine == EngineVPP {
			need["vpp"] = "real VPP (FD.io 25.10: vpp on PATH)"
		}
	}
	switch opts.Runtime {
	case RuntimeNetns:
		need["ip"] = "netns: ip from iproute2 (Debian package iproute2)"
		if kinds[KindVPP] {
			need["vppmesh-agent"] = "the agent (make build)"
			need["agentctl"] = "agentctl (make build)"
			need["vppsim"] = "vppsim (make build)"
		}
		if kinds[KindCNF] {
			need["vppmesh-cnf"] = "the CNF (make build)"
		}
		if kinds[KindEtcd] {
			need["etcd"] = "etcd (Debian package etcd-server)"
			need["agentctl"] = "agentctl (make build)"
		}
		if kinds[KindTestpmd] {
			need["dpdk-testpmd"] = "testpmd (Debian packages dpdk, librte-net-memif23, librte-net-virtio23)"
		}
	case RuntimeDocker:
		need["docker"] = "Docker (Debian package docker.io)"
	default:
		miss = append(miss, fmt.Sprintf("runtime %q: want netns or docker", opts.Runtime))
	}
	for _, b := range sortedKeys(need) {
		if _, err := opts.binary(b); err != nil {
			miss = append(miss, fmt.Sprintf("%s: %s not found", need[b], b))
		}
	}
	if opts.Runtime == RuntimeDocker {
		if p, err := NewPlan(t, opts.Dir); err == nil {
			if _, err := p.containers(); err != nil {
				miss = append(miss, err.Error())
			}
		}
	}
	if opts.Runtime == RuntimeDocker && len(miss) == 0 {
		if !reachDocker(context.Background()) {
			if _, err := exec.LookPath("dockerd"); err != nil {
				miss = append(miss, "Docker daemon: none answers and dockerd is missing (Debian package docker.io)")
			}
		} else {
			for _, im := range Images {
				if exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", im.Tag).Run() != nil {
					miss = append(miss, fmt.Sprintf("image %s: not built (make images)", im.Tag))
				}
			}
		}
	}
	if opts.Runtime == RuntimeNetns && os.Geteuid() == 0 {
		probe := fmt.Sprintf("vml-probe-%d", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
			miss = append(miss, fmt.Sprintf("netns: cannot create network namespaces: %s", strings.TrimSpace(string(out))))
		} else {
			_ = exec.Command("ip", "netns", "del", probe).Run()
		}
	}
	return miss
}

// LinkReport is one link's state and traffic after up.
type LinkReport struct {
	Link  int    `json:"link"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	State string `json:"state"` // UP, or what is not
	Ends  []EndReport
}

// EndReport is the traffic one end of a link counted.
type EndReport struct {
	Endpoint string `json:"endpoint"`
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Source   string `json:"source"` // which counters: cnf stats, vpp interface, none
}

// Report is what up returns and prints.
type Report struct {
	Lab     string       `json:"lab"`
	Runtime string       `json:"runtime"`
	Dir     string       `json:"dir"`
	Links   []LinkReport `json:"links"`
	// Connections are the mesh connections, one per client CNF.
	Connections []ConnReport `json:"connections,omitempty"`
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "lab %s up (%s runtime, %s)\n", r.Lab, r.Runtime, r.Dir)
	if len(r.Links) > 0 {
		fmt.Fprintf(w, "%-4s %-36s %-10s %-6s %s\n", "LINK", "ENDPOINTS", "TYPE", "STATE", "TRAFFIC (sent/received per end)")
	}
	for _, l := range r.Links {
		var ends []string
		for _, e := range l.Ends {
			ends = append(ends, fmt.Sprintf("%s %d/%d (%s)", e.Endpoint, e.Sent, e.Received, e.Source))
		}
		fmt.Fprintf(w, "%-4d %-36s %-10s %-6s %s\n", l.Link, l.Name, l.Type, l.State, strings.Join(ends, ", "))
	}
	r.printConnections(w)
}

// printConnections writes the mesh connections as a table.
func (r *Report) printConnections(w io.Writer) {
	if len(r.Connections) == 0 {
		return
	}
	fmt.Fprintf(w, "%-16s %-12s %-8s %-16s %-5s %s\n", "CONNECTION", "SERVICE", "STATE", "ENDPOINT", "HEALS", "TRAFFIC (client sent/received, endpoint reflected)")
	for _, c := range r.Connections {
		fmt.Fprintf(w, "%-16s %-12s %-8s %-16s %-5d %d/%d, %d", c.Connection, c.Service, c.State, dashIfEmpty(c.Endpoint), c.Heals, c.Sent, c.Received, c.Reflected)
		if c.State != "UP" && c.Error != "" {
			fmt.Fprintf(w, " (%s)", c.Error)
		}
		fmt.Fprintln(w)
	}
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runner is one up or down in progress.
type runner struct {
	opts  Options
	plan  *Plan
	state *State
	log   *slog.Logger
	out   io.Writer
}

func (r *runner) say(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

// Up starts topology t and returns, once every link is up and the
// generators' bursts are done, the traffic per link. On failure the lab is
// left for Down (which the caller should run).
func Up(ctx context.Context, t *Topology, file string, opts Options) (*Report, error) {
	opts.defaults(t.Name)
	if miss := Preflight(t, opts); len(miss) > 0 {
		return nil, fmt.Errorf("preflight: %d missing:\n  %s", len(miss), strings.Join(miss, "\n  "))
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	plan, err := NewPlan(t, dir)
	if err != nil {
		return nil, err
	}
	if e := plan.EtcdNode(); e != nil && opts.Runtime == RuntimeDocker {
		return nil, fmt.Errorf("node %s: etcd nodes are %w by the docker runtime (each agent runs its embedded etcd there); the netns runtime runs them", e.Name, errNotYet)
	}
	if old, err := LoadState(dir); err == nil {
		return nil, fmt.Errorf("lab %s already has state in %s (runtime %s): run down first", old.Lab, dir, old.Runtime)
	}
	for _, d := range []string{dir, plan.SockDir(), filepath.Join(dir, "logs"), filepath.Join(dir, "stats")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab directory: %w", err)
		}
	}
	ty, err := t.Marshal()
	if err != nil {
		return nil, err
	}
	st := &State{Lab: t.Name, Runtime: opts.Runtime, Dir: dir, File: file, Topology: string(ty), Nodes: map[string]string{}, path: StateFile(dir)}
	if err := st.update(func(*State) {}); err != nil {
		return nil, err
	}
	r := &runner{opts: opts, plan: plan, state: st, log: opts.Logger.With("lab", t.Name), out: opts.Out}
	r.log.Info("lab up", "runtime", opts.Runtime, "dir", dir, "nodes", len(plan.Nodes), "links", len(plan.Links))
	switch opts.Runtime {
	case RuntimeDocker:
		err = r.upDocker(ctx)
	default:
		err = r.upNetns(ctx)
	}
	if err != nil {
		return nil, err
	}
	rep, err := r.report(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.update(func(s *State) { s.Up = true }); err != nil {
		return nil, err
	}
	return rep, nil
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(redact(args), " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// redact hides memif secrets from a command line that goes into an error.
func redact(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == "--secret" && i+1 < len(out) {
			out[i+1] = "(secret)"
		}
		if strings.HasPrefix(out[i], "--secret=") {
			out[i] = "--secret=(secret)"
		}
	}
	return out
}

func (r *runner) upNetns(ctx context.Context) error {
	p := r.plan
	for _, n := range p.Nodes {
		if n.MeshRole() != "" {
			// A mesh CNF lives in its vpp node's namespace (mesh.go).
			ns := nsName(p.Topo.Name, p.MeshVPP(n))
			if err := r.state.update(func(s *State) { s.Nodes[n.Name] = ns }); err != nil {
				return err
			}
			continue
		}
		ns := nsName(p.Topo.Name, n.Name)
		if err := r.state.update(func(s *State) { s.Namespaces = append(s.Namespaces, ns); s.Nodes[n.Name] = ns }); err != nil {
			return err
		}
		_ = exec.CommandContext(ctx, "ip", "netns", "del", ns).Run() // a stale one of a killed run
		if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if _, err := run(ctx, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		r.log.Info("namespace added", "node", n.Name, "netns", ns)
	}
	for _, pl := range p.Links {
		if pl.Type != LinkVeth {
			continue
		}
		a, z := pl.Link.Endpoints[0], pl.Link.Endpoints[1]
		nsA, nsZ := nsName(p.Topo.Name, a.Node), nsName(p.Topo.Name, z.Node)
		// Made in namespace A and its peer sent to Z: deleting a namespace deletes the pair.
		if _, err := run(ctx, "ip", "-n", nsA, "link", "add", a.Interface, "type", "veth", "peer", "name", z.Interface, "netns", nsZ); err != nil {
			return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
		}
		for _, e := range []Endpoint{a, z} {
			ns := nsName(p.Topo.Name, e.Node)
			if e.MAC != "" {
				if _, err := run(ctx, "ip", "-n", ns, "link", "set", e.Interface, "address", e.MAC); err != nil {
					return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
				}
			}
			if pl.Link.MTU != 0 {
				if _, err := run(ctx, "ip", "-n", ns, "link", "set", e.Interface, "mtu", fmt.Sprint(pl.Link.MTU)); err != nil {
					return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
				}
			}
			if err := r.vethEndSetup(ctx, pl, e, []string{"ip", "-n", ns}, []string{"ip", "netns", "exec", ns}); err != nil {
				return err
			}
			if _, err := run(ctx, "ip", "-n", ns, "link", "set", e.Interface, "up"); err != nil {
				return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
			}
		}
		r.log.Info("veth added", "link", pl.Name)
	}
	if err := r.upMgmt(ctx); err != nil {
		return err
	}
	if e := p.EtcdNode(); e != nil {
		if err := r.startNode(ctx, e); err != nil {
			return err
		}
	}
	for _, n := range p.Nodes {
		if n.Kind == KindVPP {
			if err := r.startVPPNode(ctx, n); err != nil {
				return err
			}
		}
	}
	for _, n := range p.Nodes {
		if n.Kind == KindVPP || n.Kind == KindEtcd || n.IsGen() || n.MeshRole() != "" {
			continue
		}
		if err := r.startNode(ctx, n); err != nil {
			return err
		}
	}
	if err := r.waitLinks(ctx, false); err != nil {
		return err
	}
	if err := r.startMesh(ctx, func(n *PlanNode) error { return r.startNode(ctx, n) }); err != nil {
		return err
	}
	for _, n := range p.Nodes {
		for _, c := range n.Exec {
			args := append([]string{"netns", "exec", r.state.Nodes[n.Name]}, strings.Fields(c)...)
			if _, err := run(ctx, "ip", args...); err != nil {
				return fmt.Errorf("node %s: exec %q: %w", n.Name, c, err)
			}
			r.log.Info("exec done", "node", n.Name, "cmd", c)
		}
	}
	// The burst: generators start once every link is up, so no frame is
	// dropped for a peer that is not there yet.
	var gens []*PlanNode
	for _, n := range p.Nodes {
		if n.IsGen() {
			if err := r.startNode(ctx, n); err != nil {
				return err
			}
			gens = append(gens, n)
		}
	}
	if len(gens) > 0 {
		r.say("burst: %d generator(s) started", len(gens))
		if err := r.waitLinks(ctx, true); err != nil {
			return err
		}
		return r.waitGens(ctx, gens)
	}
	return nil
}

// vethEndSetup gives a veth end its address (a linux or cnf node's kernel
// interface) or quiets it (a vpp node's, which VPP takes as AF_PACKET: the
// kernel must not send IPv6 router solicitations into the underlay). ipCmd
// runs ip in the end's namespace, inNS any command there.
func (r *runner) vethEndSetup(ctx context.Context, pl *PlanLink, e Endpoint, ipCmd, inNS []string) error {
	do := func(argv ...string) error {
		if _, err := run(ctx, argv[0], argv[1:]...); err != nil {
			return fmt.Errorf("link %d (%s): %w", pl.Index, pl.Name, err)
		}
		return nil
	}
	if r.plan.Node(e.Node).Kind == KindVPP {
		return do(append(inNS, "sysctl", "-qw", "net.ipv6.conf."+e.Interface+".disable_ipv6=1")...)
	}
	if e.IPv4 != "" {
		return do(append(ipCmd, "addr", "add", e.IPv4, "dev", e.Interface)...)
	}
	return nil
}

// spawn starts a detached process in node's namespace: it outlives up, its
// output goes to <dir>/logs/<name>.log, and its pid is in the state.
func (r *runner) spawn(ctx context.Context, node, name, path string, args []string, env map[string]string) error {
	ns := nsName(r.plan.Topo.Name, node)
	if n := r.plan.Node(node); n != nil && n.MeshRole() != "" {
		ns = nsName(r.plan.Topo.Name, r.plan.MeshVPP(n))
	}
	argv := append([]string{"netns", "exec", ns, path}, args...)
	logF, err := os.OpenFile(filepath.Join(r.plan.Dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logF.Close()
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return err
	}
	cmd := exec.Command(ipPath, argv...)
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = detached()
	cmd.Env = os.Environ()
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node %s: start %s: %w", node, name, err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it when up runs inside a longer-lived program
	start, _ := procStart(pid)
	ps := ProcState{Node: node, Name: name, Pid: pid, Start: start, Netns: ns}
	if err := r.state.update(func(s *State) { s.Procs = append(s.Procs, ps) }); err != nil {
		return err
	}
	r.log.Info("process started", "node", node, "proc", name, "pid", pid, "netns", ns)
	return nil
}

func (r *runner) startVPPNode(ctx context.Context, n *PlanNode) error {
	runDir := r.plan.RunDir(n.Name)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	api := filepath.Join(runDir, "api.sock")
	if n.VPP.Engine == EngineVPP {
		vpp, err := r.opts.binary("vpp")
		if err != nil {
			return err
		}
		conf := filepath.Join(runDir, "startup.conf")
		if err := os.WriteFile(conf, []byte(VPPStartupConf(vpp, runDir, labPrefix(r.plan.Topo.Name)+n.Name)), 0o644); err != nil {
			return err
		}
		if err := r.spawn(ctx, n.Name, n.Name+"-vpp", vpp, []string{"-c", conf}, n.Env); err != nil {
			return err
		}
	} else {
		sim, err := r.opts.binary("vppsim")
		if err != nil {
			return err
		}
		if err := r.spawn(ctx, n.Name, n.Name+"-vppsim", sim, r.plan.VPPSimArgs(runDir), n.Env); err != nil {
			return err
		}
	}
	if err := r.wait(ctx, n.Name+": VPP API socket", func() error { _, err := os.Stat(api); return err }); err != nil {
		return err
	}
	agent, err := r.opts.binary("vppmesh-agent")
	if err != nil {
		return err
	}
	if err := r.spawn(ctx, n.Name, n.Name+"-agent", agent, r.plan.AgentArgs(n, runDir, filepath.Join(r.plan.Dir, "nodes", n.Name, "etcd"), r.externalEtcd()), n.Env); err != nil {
		return err
	}
	if err := r.wait(ctx, n.Name+": agent ready", func() error {
		var st struct{ Ready bool }
		if err := r.ctlJSON(ctx, n.Name, &st, "status"); err != nil {
			return err
		}
		if !st.Ready {
			return errors.New("not ready")
		}
		return nil
	}); err != nil {
		return err
	}
	cfg := r.plan.ConfigFile(n.Name)
	if err := os.WriteFile(cfg, []byte(n.ConfigLines()), 0o600); err != nil {
		return err
	}
	if out, err := r.ctl(ctx, n.Name, n.ImportArgs(cfg)...); err != nil {
		return fmt.Errorf("node %s: agent configuration: %w: %s", n.Name, err, out)
	}
	r.say("node %s: %s and agent up, %d config key(s)%s put", n.Name, n.VPP.Engine, len(n.Config), servicesPut(n))
	return nil
}

func (r *runner) startNode(ctx context.Context, n *PlanNode) error {
	switch n.Kind {
	case KindCNF:
		bin, err := r.opts.binary("vppmesh-cnf")
		if err != nil {
			return err
		}
		return r.spawn(ctx, n.Name, n.Name, bin, r.plan.CNFArgs(n, r.statsFile(n.Name)), n.Env)
	case KindTestpmd:
		bin, err := r.opts.binary("dpdk-testpmd")
		if err != nil {
			return err
		}
		return r.spawn(ctx, n.Name, n.Name, bin, r.plan.TestpmdArgs(n), n.Env)
	case KindEtcd:
		bin, err := r.opts.binary("etcd")
		if err != nil {
			return err
		}
		if err := r.spawn(ctx, n.Name, n.Name, bin, r.plan.EtcdArgs(n), n.Env); err != nil {
			return err
		}
		agentctl, err := r.opts.binary("agentctl")
		if err != nil {
			return err
		}
		ns := nsName(r.plan.Topo.Name, n.Name)
		if err := r.wait(ctx, n.Name+": etcd answers", func() error {
			_, err := run(ctx, "ip", "netns", "exec", ns, agentctl, "-e", r.plan.EtcdAddr(), "--timeout", "2s", "kvdb", "list", "/vppmesh-lab-probe/")
			return err
		}); err != nil {
			return err
		}
		r.say("node %s: etcd up on %s", n.Name, r.plan.EtcdAddr())
		return nil
	case KindLinux:
		if f := strings.Fields(n.Cmd); len(f) > 0 {
			bin, err := exec.LookPath(f[0])
			if err != nil {
				return fmt.Errorf("node %s: cmd: %w", n.Name, err)
			}
			return r.spawn(ctx, n.Name, n.Name, bin, f[1:], n.Env)
		}
	}
	return nil
}

func (r *runner) statsFile(node string) string {
	return filepath.Join(r.plan.Dir, "stats", node+".json")
}

// wait polls f until it succeeds or the timeout passes.
func (r *runner) wait(ctx context.Context, what string, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	for i := 0; ; i++ {
		err := f()
		if err == nil {
			return nil
		}
		// A node that died will not come up: say so now, with its last words.
		if r.state.Runtime != RuntimeDocker || i%10 == 9 {
			if derr := r.deadNode(ctx); derr != nil {
				return fmt.Errorf("%s: %w", what, derr)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %v: %w", what, r.opts.Timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// externalEtcd is the etcd node's address, "" when agents embed their own.
func (r *runner) externalEtcd() string {
	if r.plan.EtcdNode() == nil {
		return ""
	}
	return r.plan.EtcdAddr()
}

// deadNode reports the first long-running process or container of the lab
// that has exited (generators and linux nodes may finish; the others serve).
func (r *runner) deadNode(ctx context.Context) error {
	serves := func(node string) bool {
		n := r.plan.Node(node)
		return n != nil && n.Kind != KindLinux && !n.IsGen()
	}
	for _, p := range r.state.Procs {
		if serves(p.Node) && !p.alive() {
			b, _ := os.ReadFile(filepath.Join(r.plan.Dir, "logs", p.Name+".log"))
			return fmt.Errorf("node %s: %s exited; its log ends:\n%s", p.Node, p.Name, lastLines(string(b), 8))
		}
	}
	if r.state.Runtime == RuntimeDocker {
		for _, c := range r.state.Containers {
			node := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(c, labPrefix(r.plan.Topo.Name)), "-agent"), "-config")
			if !serves(node) {
				continue
			}
			out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.State.Running}}", c).Output()
			if err == nil && strings.TrimSpace(string(out)) == "false" {
				logs, _ := exec.CommandContext(ctx, "docker", "logs", "--tail", "8", c).CombinedOutput()
				return fmt.Errorf("node %s: container %s exited; its log ends:\n%s", node, c, strings.TrimSpace(string(logs)))
			}
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ctl runs agentctl against a vpp node's agent, inside the node.
func (r *runner) ctl(ctx context.Context, node string, args ...string) (string, error) {
	base := []string{"-e", r.plan.EtcdAddr(), "--service-label", node, "-H", "127.0.0.1", "--http-port", "9191", "--timeout", "10s"}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if r.state.Runtime == RuntimeDocker {
		cmd = exec.CommandContext(ctx, "docker", append([]string{"exec", r.containerName(node + "-agent"), "agentctl"}, append(base, args...)...)...)
		if len(args) >= 2 && args[0] == "import" {
			// The file is on the host: feed it on stdin.
			f, err := os.Open(args[len(args)-1])
			if err != nil {
				return "", err
			}
			defer f.Close()
			imp := append(append(append([]string{}, base...), args[:len(args)-1]...), "-")
			cmd = exec.CommandContext(ctx, "docker", append([]string{"exec", "-i", r.containerName(node + "-agent"), "agentctl"}, imp...)...)
			cmd.Stdin = f
		}
	} else {
		bin, err := r.opts.binary("agentctl")
		if err != nil {
			return "", err
		}
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nsName(r.plan.Topo.Name, node), bin}, append(base, args...)...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("agentctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (r *runner) ctlJSON(ctx context.Context, node string, v any, args ...string) error {
	out, err := r.ctl(ctx, node, append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// endState is a vpp node's end of a link as an interface state. A vxlan
// end's tunnel has no oper-state key: it is UP once its cross-connect is
// CONFIGURED, and its counters come from the agent's REST statistics.
func (r *runner) endState(ctx context.Context, n *PlanNode, pl *PlanLink, e Endpoint) (*interfaces.InterfaceState, error) {
	iface := n.Ifaces[e.Interface]
	if pl.Type != LinkVxlan {
		return r.ifState(ctx, n.Name, iface)
	}
	xc := strings.TrimSuffix(strings.TrimSuffix(iface, "-a"), "-b")
	var st struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	out, err := r.ctl(ctx, n.Name, "kvdb", "get", "status/vppmesh/v1/xconnect/"+xc)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("status of cross-connect %s: %w", xc, err)
	}
	s := &interfaces.InterfaceState{Name: iface, OperStatus: interfaces.InterfaceState_DOWN}
	if st.State != "CONFIGURED" {
		return s, fmt.Errorf("cross-connect %s is %s %s", xc, st.State, st.Error)
	}
	s.OperStatus = interfaces.InterfaceState_UP
	var stats struct {
		Interfaces map[string]struct {
			Rx uint64 `json:"rx_packets"`
			Tx uint64 `json:"tx_packets"`
		} `json:"interfaces"`
	}
	if err := r.ctlJSON(ctx, n.Name, &stats, "stats"); err == nil {
		c := stats.Interfaces[iface]
		s.Statistics = &interfaces.InterfaceState_Statistics{InPackets: c.Rx, OutPackets: c.Tx}
	}
	return s, nil
}

// ifState reads a VPP interface's state from the node's etcd.
func (r *runner) ifState(ctx context.Context, node, iface string) (*interfaces.InterfaceState, error) {
	out, err := r.ctl(ctx, node, "kvdb", "get", "vpp/status/v2/interface/"+iface)
	if err != nil {
		return nil, err
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return nil, fmt.Errorf("no state for %s", iface)
	}
	var s interfaces.InterfaceState
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), &s); err != nil {
		return nil, fmt.Errorf("state of %s: %w", iface, err)
	}
	return &s, nil
}

// cnfStats reads a CNF's stats file.
func (r *runner) cnfStats(node string) (*cnfSummary, error) {
	b, err := os.ReadFile(r.statsFile(node))
	if err != nil {
		return nil, err
	}
	var s cnfSummary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("stats of %s: %w", node, err)
	}
	return &s, nil
}

// cnfSummary is the part of vppmesh-cnf's stats file the lab reads.
type cnfSummary struct {
	Mode     string `json:"mode"`
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	LinkUps  uint64 `json:"link_ups"`
}

// linkUp checks one end of a link: a vpp end's interface is UP in etcd, a
// cnf end has seen its link come up. Other ends (testpmd, veth) are taken as
// up once their process runs.
func (r *runner) endUp(ctx context.Context, pl *PlanLink, e Endpoint, gensToo bool) error {
	n := r.plan.Node(e.Node)
	for _, o := range pl.Link.Endpoints {
		if r.plan.Node(o.Node).IsGen() && (!gensToo || r.genDone(pl)) {
			return nil // comes up with the burst, or came up and the burst is over
		}
	}
	switch n.Kind {
	case KindVPP:
		iface := n.Ifaces[e.Interface]
		s, err := r.endState(ctx, n, pl, e)
		if err != nil {
			return err
		}
		if s.GetOperStatus() != interfaces.InterfaceState_UP {
			return fmt.Errorf("%s (VPP %s) is %s", e, iface, s.GetOperStatus())
		}
	case KindTestpmd:
		log, err := r.nodeLog(ctx, n.Name)
		if err != nil {
			return err
		}
		if !strings.Contains(log, "packet forwarding - ports=") {
			return fmt.Errorf("%s: testpmd not forwarding yet", e)
		}
	case KindCNF:
		if pl.Type != LinkMemif || (n.IsGen() && !gensToo) {
			return nil
		}
		s, err := r.cnfStats(n.Name)
		if err != nil {
			return fmt.Errorf("%s: no stats yet: %w", e, err)
		}
		if s.LinkUps == 0 {
			return fmt.Errorf("%s: memif not connected yet", e)
		}
	}
	return nil
}

// waitLinks waits until every link is up at both ends (gensToo: including the
// generators' links, which come up only once they start).
func (r *runner) waitLinks(ctx context.Context, gensToo bool) error {
	for _, pl := range r.plan.Links {
		for _, e := range pl.Link.Endpoints {
			if err := r.wait(ctx, fmt.Sprintf("link %d (%s)", pl.Index, pl.Name), func() error { return r.endUp(ctx, pl, e, gensToo) }); err != nil {
				return err
			}
		}
		if !gensToo {
			r.log.Info("link up", "link", pl.Name)
		}
	}
	if !gensToo && len(r.plan.Links) > 0 {
		r.say("links: all %d up", len(r.plan.Links))
	}
	return nil
}

// waitGens waits for the generators to finish their burst (their process
// exits), then for the agents' counters to catch up.
func (r *runner) waitGens(ctx context.Context, gens []*PlanNode) error {
	for _, g := range gens {
		var ps ProcState
		for _, p := range r.state.Procs {
			if p.Node == g.Name {
				ps = p
			}
		}
		if err := r.wait(ctx, "generator "+g.Name+" to finish", func() error {
			if ps.alive() {
				return errors.New("still sending")
			}
			return nil
		}); err != nil {
			return err
		}
	}
	// Counters reach etcd every 500ms (AgentArgs): wait for them to settle.
	time.Sleep(1500 * time.Millisecond)
	return nil
}

// report collects each link's traffic: CNF ends from their stats files, VPP
// ends from the interface counters in etcd.
func (r *runner) report(ctx context.Context) (*Report, error) {
	rep := &Report{Lab: r.plan.Topo.Name, Runtime: r.state.Runtime, Dir: r.plan.Dir}
	for _, pl := range r.plan.Links {
		lr := LinkReport{Link: pl.Index, Name: pl.Name, Type: pl.Type, State: "UP"}
		for _, e := range pl.Link.Endpoints {
			er := EndReport{Endpoint: e.String(), Source: "none"}
			n := r.plan.Node(e.Node)
			switch n.Kind {
			case KindVPP:
				s, err := r.endState(ctx, n, pl, e)
				if err != nil {
					lr.State = "UNKNOWN"
					break
				}
				if s.GetOperStatus() != interfaces.InterfaceState_UP && lr.State == "UP" {
					lr.State = s.GetOperStatus().String()
					if r.genDone(pl) {
						lr.State = "DONE" // the generator sent its burst and left
					}
				}
				er.Sent, er.Received, er.Source = s.GetStatistics().GetOutPackets(), s.GetStatistics().GetInPackets(), "vpp "+n.Ifaces[e.Interface]
			case KindTestpmd:
				if pl.Type == LinkVeth {
					break
				}
				if log, err := r.nodeLog(ctx, n.Name); err == nil {
					if rx, tx, ok := testpmdCounters(log); ok {
						er.Sent, er.Received, er.Source = tx, rx, "testpmd port"
					}
				}
			case KindCNF:
				if pl.Type != LinkMemif {
					break
				}
				if s, err := r.cnfStats(n.Name); err == nil {
					er.Sent, er.Received, er.Source = s.Sent, s.Received, "cnf "+s.Mode
				}
			}
			lr.Ends = append(lr.Ends, er)
		}
		rep.Links = append(rep.Links, lr)
	}
	rep.Connections = r.meshReport(ctx)
	return rep, nil
}

// nodeLog is the output of a node's (single) process or container.
func (r *runner) nodeLog(ctx context.Context, node string) (string, error) {
	if r.state.Runtime == RuntimeDocker {
		out, err := exec.CommandContext(ctx, "docker", "logs", r.containerName(node)).CombinedOutput()
		return string(out), err
	}
	b, err := os.ReadFile(filepath.Join(r.plan.Dir, "logs", node+".log"))
	return string(b), err
}

// testpmdCounters reads the last port statistics testpmd printed
// (--stats-period): received and sent packets of its port (summed if more).
func testpmdCounters(log string) (rx, tx uint64, ok bool) {
	i := strings.LastIndex(log, "Port statistics ===")
	if i < 0 {
		return 0, 0, false
	}
	for _, line := range strings.Split(log[i:], "\n") {
		f := strings.Fields(line)
		for j := 0; j+1 < len(f); j++ {
			var v uint64
			if _, err := fmt.Sscan(f[j+1], &v); err != nil {
				continue
			}
			switch f[j] {
			case "RX-packets:":
				rx += v
				ok = true
			case "TX-packets:":
				tx += v
			}
		}
	}
	return rx, tx, ok
}

// genDone reports whether a generator on pl came up, then finished.
func (r *runner) genDone(pl *PlanLink) bool {
	for _, e := range pl.Link.Endpoints {
		n := r.plan.Node(e.Node)
		if !n.IsGen() {
			continue
		}
		s, err := r.cnfStats(n.Name)
		if err != nil || s.LinkUps == 0 {
			return false
		}
		for _, p := range r.state.Procs {
			if p.Node == n.Name && !p.alive() {
				return true
			}
		}
		for _, c := range r.state.Containers {
			if c == r.containerName(n.Name) {
				out, err := exec.Command("docker", "inspect", "--format", "{{.State.Running}}", c).Output()
				return err == nil && strings.TrimSpace(string(out)) == "false"
			}
		}
	}
	return false
}

// DownReport says what down removed and what it could not.
type DownReport struct {
	Removed   []string `json:"removed"`
	Leftovers []string `json:"leftovers,omitempty"`
}

// Down stops every process and container of the lab in dir, deletes its
// namespaces (and with them its veth pairs) and the directory, then looks
// for anything left. It runs every step even when one fails.
func Down(ctx context.Context, name string, opts Options) (*DownReport, error) {
	opts.defaults(name)
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	rep := &DownReport{}
	st, err := LoadState(dir)
	if err != nil {
		st = &State{Lab: name, Dir: dir}
	}
	if st.Lab == "" {
		st.Lab = name
	}
	log := opts.Logger.With("lab", st.Lab)
	// Processes: TERM, a grace period, then KILL.
	var live []ProcState
	for _, p := range st.Procs {
		if p.alive() {
			_ = syscall.Kill(p.Pid, syscall.SIGTERM)
			live = append(live, p)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range live {
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if p.alive() {
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
			log.Warn("process killed after grace period", "proc", p.Name, "pid", p.Pid)
		}
		rep.Removed = append(rep.Removed, fmt.Sprintf("process %s (pid %d)", p.Name, p.Pid))
	}
	// Containers: by state, and by label for those a killed up did not record.
	useDocker := (st.Runtime == RuntimeDocker || len(st.Containers) > 0 || opts.Runtime == RuntimeDocker) && reachDocker(ctx)
	if useDocker {
		for _, c := range dockerLabContainers(ctx, st.Lab, st.Containers) {
			if _, err := run(ctx, "docker", "rm", "-f", c); err == nil {
				rep.Removed = append(rep.Removed, "container "+c)
				log.Info("container removed", "container", c)
			}
		}
	}
	// Namespaces: recorded ones and any of this lab's name pattern.
	spaces := map[string]bool{}
	for _, ns := range st.Namespaces {
		spaces[ns] = true
	}
	for _, ns := range labNamespaces(ctx, st.Lab) {
		spaces[ns] = true
	}
	for _, ns := range sortedKeys(spaces) {
		// Anything still running inside (an exec'd command, a lost pid) goes too.
		if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if _, err := run(ctx, "ip", "netns", "del", ns); err == nil {
			rep.Removed = append(rep.Removed, "namespace "+ns)
			log.Info("namespace deleted", "netns", ns)
		}
	}
	// testpmd's EAL runtime directories and a killed VPP's API segments
	// (/dev/shm/<prefix>-vpe-api, -global_vm) outlive their process.
	dpdk, _ := filepath.Glob(filepath.Join("/var/run/dpdk", DPDKPrefix(st.Lab, "*")))
	shm, _ := filepath.Glob(filepath.Join("/dev/shm", labPrefix(st.Lab)+"*"))
	if m := append(dpdk, shm...); len(m) > 0 {
		for _, d := range m {
			if os.RemoveAll(d) == nil {
				rep.Removed = append(rep.Removed, "directory "+d)
			}
		}
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.RemoveAll(dir); err == nil {
			rep.Removed = append(rep.Removed, "directory "+dir)
		}
	}
	// Leftovers: look again.
	for _, p := range st.Procs {
		if p.alive() {
			rep.Leftovers = append(rep.Leftovers, fmt.Sprintf("process %s (pid %d)", p.Name, p.Pid))
		}
	}
	for _, ns := range labNamespaces(ctx, st.Lab) {
		rep.Leftovers = append(rep.Leftovers, "namespace "+ns)
	}
	if useDocker {
		for _, c := range dockerLabContainers(ctx, st.Lab, nil) {
			rep.Leftovers = append(rep.Leftovers, "container "+c)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		rep.Leftovers = append(rep.Leftovers, "directory "+dir)
	}
	log.Info("lab down", "removed", len(rep.Removed), "leftovers", len(rep.Leftovers))
	if len(rep.Leftovers) > 0 {
		return rep, fmt.Errorf("lab %s: %d leftover(s): %s", st.Lab, len(rep.Leftovers), strings.Join(rep.Leftovers, "; "))
	}
	return rep, nil
}

// labNamespaces lists the namespaces named after lab's nodes.
func labNamespaces(ctx context.Context, lab string) []string {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var res []string
	prefix := labPrefix(lab)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		if rest := strings.TrimPrefix(f[0], prefix); nodeName.MatchString(rest) || rest == "_mgmt" {
			res = append(res, f[0])
		}
	}
	sort.Strings(res)
	return res
}

// NodeStatus is one node in status.
type NodeStatus struct {
	Node  string   `json:"node"`
	Kind  string   `json:"kind"`
	Where string   `json:"where"` // namespace or container
	Procs []string `json:"procs"` // name: running | exited
}

// StatusReport is what status returns.
type StatusReport struct {
	Lab     string       `json:"lab"`
	Runtime string       `json:"runtime"`
	Up      bool         `json:"up"`
	Nodes   []NodeStatus `json:"nodes"`
	Links   []LinkReport `json:"links,omitempty"`
	// Connections are the mesh connections' states and traffic.
	Connections []ConnReport `json:"connections,omitempty"`
}

// Status reads the lab's state, checks its processes or containers and, when
// the topology file is still there, each link's state and counters.
func Status(ctx context.Context, name string, opts Options) (*StatusReport, error) {
	opts.defaults(name)
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	st, err := LoadState(dir)
	if err != nil {
		return nil, err
	}
	rep := &StatusReport{Lab: st.Lab, Runtime: st.Runtime, Up: st.Up}
	var t *Topology
	if st.Topology != "" {
		t, _ = Parse([]byte(st.Topology))
	}
	for _, node := range sortedKeys(st.Nodes) {
		ns := NodeStatus{Node: node, Where: st.Nodes[node]}
		if t != nil {
			if n, ok := t.Node(node); ok {
				ns.Kind = n.Kind
			}
		}
		for _, p := range st.Procs {
			if p.Node == node {
				s := "exited"
				if p.alive() {
					s = "running"
				}
				ns.Procs = append(ns.Procs, p.Name+": "+s)
			}
		}
		if st.Runtime == RuntimeDocker {
			ns.Procs = append(ns.Procs, dockerStates(ctx, st, node)...)
		}
		rep.Nodes = append(rep.Nodes, ns)
	}
	if t != nil {
		if plan, err := NewPlan(t, dir); err == nil {
			r := &runner{opts: opts, plan: plan, state: st, log: opts.Logger, out: io.Discard}
			if lr, err := r.report(ctx); err == nil {
				rep.Links, rep.Connections = lr.Links, lr.Connections
			}
		}
	}
	return rep, nil
}

// Print writes the status as text.
func (s *StatusReport) Print(w io.Writer) {
	fmt.Fprintf(w, "lab %s (%s runtime), up finished: %v\n", s.Lab, s.Runtime, s.Up)
	for _, n := range s.Nodes {
		fmt.Fprintf(w, "  node %-12s %-8s %-28s %s\n", n.Node, n.Kind, n.Where, strings.Join(n.Procs, ", "))
	}
	if len(s.Links) > 0 || len(s.Connections) > 0 {
		rep := Report{Lab: s.Lab, Runtime: s.Runtime, Links: s.Links, Connections: s.Connections}
		var b bytes.Buffer
		rep.Print(&b)
		lines := strings.SplitN(b.String(), "\n", 2)
		if len(lines) == 2 {
			fmt.Fprint(w, lines[1])
		}
	}
}

// Exec runs argv in a node of a running lab (its namespace or container),
// with the given stdio, and returns its exit error.
func Exec(ctx context.Context, name, node string, argv []string, opts Options, stdin io.Reader, stdout, stderr io.Writer) error {
	opts.defaults(name)
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return err
	}
	st, err := LoadState(dir)
	if err != nil {
		return err
	}
	where, ok := st.Nodes[node]
	if !ok {
		return fmt.Errorf("lab %s has no node %q (nodes: %s)", st.Lab, node, strings.Join(sortedKeys(st.Nodes), ", "))
	}
	if len(argv) == 0 {
		return errors.New("exec: no command")
	}
	var cmd *exec.Cmd
	if st.Runtime == RuntimeDocker {
		cmd = exec.CommandContext(ctx, "docker", append([]string{"exec", "-i", where}, argv...)...)
	} else {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", where}, argv...)...)
		etcdAddr := ctrEtcdAddr
		if st.Topology != "" {
			if t, err := Parse([]byte(st.Topology)); err == nil {
				if p, err := NewPlan(t, dir); err == nil {
					etcdAddr = p.EtcdAddr()
				}
			}
		}
		// A vpp node's tools find their VPP and agent.
		run := filepath.Join(dir, "nodes", node, "run")
		// and the lab's programs (agentctl, vppctl's socket) are at hand.
		path := os.Getenv("PATH")
		if exe, err := os.Executable(); err == nil {
			path = filepath.Dir(exe) + ":" + path
		}
		if opts.BinDir != "" {
			path = opts.BinDir + ":" + path
		}
		cmd.Env = append(os.Environ(), "PATH="+path, "VPP_API_SOCKET="+filepath.Join(run, "api.sock"), "ETCD_ENDPOINTS="+etcdAddr)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	return cmd.Run()
}
