package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v2"
)

// Image names of the project's images (make images builds them locally).
const (
	ImageAgent  = "vppmesh/agent:lab"
	ImageVPPSim = "vppmesh/vppsim:lab"
	ImageCNF    = "vppmesh/cnf:lab"
	ImageVPP    = "vppmesh/vpp:lab"
)

// Container-side paths of a vpp node's containers.
const (
	ctrRunDir   = "/run/vpp"         // VPP's API and stats sockets, shared by VPP and the agent
	ctrDataDir  = "/var/lib/vppmesh" // the agent's embedded etcd
	ctrConfig   = "/etc/vppmesh-lab" // the node's agent configuration (agentctl import file)
	ctrEtcdAddr = "127.0.0.1:2379"   // inside the vpp node's network namespace
	ctrHTTPAddr = "127.0.0.1:9191"   // the agent's REST, inside the namespace
	ctrPeerURL  = "http://127.0.0.1:2380"
)

// container is one container (or process group) a node runs as.
type container struct {
	Name        string // compose service / containerlab node / docker container suffix
	Node        string
	Image       string
	Args        []string
	Env         map[string]string
	Binds       []string // host:container[:ro]
	NetworkFrom string   // share this container's network namespace
	OneShot     bool     // runs to completion (the config import)
}

// RunDir is a vpp node's host directory bind-mounted at /run/vpp.
func (p *Plan) RunDir(node string) string { return filepath.Join(p.Dir, "nodes", node, "run") }

// ConfigFile is a vpp node's agent configuration in agentctl import's line format.
func (p *Plan) ConfigFile(node string) string {
	return filepath.Join(p.Dir, "nodes", node, "config.txt")
}

// ConfigLines renders a vpp node's configuration as "KEY JSON" lines.
func (n *PlanNode) ConfigLines() string {
	var b strings.Builder
	for _, k := range n.ConfigKeys() {
		fmt.Fprintf(&b, "%s %s\n", k, n.Config[k])
	}
	for _, kv := range n.Services {
		fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
	}
	return b.String()
}

// ImportArgs is agentctl's import of a vpp node's configuration file. With
// mesh services (global keys, which import validates only as agent config
// keys) it writes with --force: the plan built and checked every value.
func (n *PlanNode) ImportArgs(file string) []string {
	if len(n.Services) > 0 {
		return []string{"import", "--force", file}
	}
	return []string{"import", file}
}

// AgentArgs is the agent's command line in a vpp node (either runtime: the
// agent has the node's network namespace to itself, so fixed loopback ports).
// etcd is the external etcd's host:port, or "" for the agent's embedded one.
func (p *Plan) AgentArgs(n *PlanNode, runDir, dataDir, etcd string) []string {
	args := []string{"--label", n.Name, "--vpp-socket", filepath.Join(runDir, "api.sock"),
		"--vpp-stats-socket", filepath.Join(runDir, "stats.sock"), "--data-dir", dataDir,
		"--socket-dir", p.SockDir()}
	if etcd != "" {
		args = append(args, "--etcd-endpoints", "http://"+etcd)
	} else {
		args = append(args, "--etcd-endpoints", "", "--etcd-listen", "http://"+ctrEtcdAddr, "--etcd-peer", ctrPeerURL)
	}
	return append(args, "--http", ctrHTTPAddr, "--stats-interval", "200ms", "--counters-publish-interval", "500ms")
}

// VPPSimArgs is vppsim's command line in a vpp node.
func (p *Plan) VPPSimArgs(runDir string) []string {
	return []string{"--socket", filepath.Join(runDir, "api.sock"), "--stats-socket", filepath.Join(runDir, "stats.sock")}
}

// containers lists what each node runs in the docker runtime and the exports.
func (p *Plan) containers() ([]container, error) {
	sock := p.SockDir() + ":" + p.SockDir()
	var out []container
	for _, n := range p.Nodes {
		binds := append([]string{sock}, n.Binds...)
		switch n.Kind {
		case KindVPP:
			if n.VPP.Engine == EngineVPP {
				return nil, fmt.Errorf("node %s: vpp.engine vpp in containers is %w (the vppmesh/vpp image is for users; the lab runs vppsim)", n.Name, errNotYet)
			}
			img := n.Image
			if img == "" {
				img = ImageVPPSim
			}
			run := p.RunDir(n.Name) + ":" + ctrRunDir
			out = append(out, container{Name: n.Name, Node: n.Name, Image: img, Args: p.VPPSimArgs(ctrRunDir), Env: n.Env, Binds: append([]string{run}, binds...)})
			out = append(out, container{Name: n.Name + "-agent", Node: n.Name, Image: ImageAgent, Args: p.AgentArgs(n, ctrRunDir, ctrDataDir, ""),
				Binds: []string{run, sock}, NetworkFrom: n.Name})
			out = append(out, container{Name: n.Name + "-config", Node: n.Name, Image: ImageAgent, OneShot: true, NetworkFrom: n.Name,
				Args:  append([]string{"agentctl", "-e", ctrEtcdAddr, "--service-label", n.Name, "--timeout", "30s"}, n.ImportArgs(ctrConfig+"/config.txt")...),
				Binds: []string{filepath.Dir(p.ConfigFile(n.Name)) + ":" + ctrConfig + ":ro"}})
		case KindCNF:
			img := n.Image
			if img == "" {
				img = ImageCNF
			}
			c := container{Name: n.Name, Node: n.Name, Image: img, Args: p.CNFArgs(n, ""), Env: n.Env, Binds: binds}
			if n.MeshRole() != "" {
				// Its vpp node's network: the agent's etcd on the loopback.
				c.NetworkFrom = p.MeshVPP(n)
			}
			out = append(out, c)
		default:
			if n.Image == "" {
				return nil, fmt.Errorf("node %s: a %s node in containers needs an image (built locally; nothing is pulled)", n.Name, n.Kind)
			}
			var args []string
			if n.Kind == KindTestpmd {
				args = p.TestpmdArgs(n)
			} else if n.Cmd != "" {
				args = strings.Fields(n.Cmd)
			}
			out = append(out, container{Name: n.Name, Node: n.Name, Image: n.Image, Args: args, Env: n.Env, Binds: binds})
		}
	}
	return out, nil
}

// ComposeFile is the subset of the compose specification the export writes.
// Version 2.4 is read by docker-compose 1.x and by compose v2 (which ignores
// it); the project name goes in an extension field, 1.x has no `name`.
type ComposeFile struct {
	Version  string                    `yaml:"version"`
	Services map[string]ComposeService `yaml:"services"`
	XLab     string                    `yaml:"x-vppmesh-lab"`
	XLinks   []string                  `yaml:"x-vppmesh-links,omitempty"`
}

// ComposeService is one service of ComposeFile.
type ComposeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command,omitempty"`
	Entrypoint  []string          `yaml:"entrypoint,omitempty"`
	Environment map[string]string `yaml:"environment,omitempty"`
	Volumes     []string          `yaml:"volumes,omitempty"`
	NetworkMode string            `yaml:"network_mode"`
	DependsOn   []string          `yaml:"depends_on,omitempty"`
	Restart     string            `yaml:"restart,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
}

// Compose exports the plan as a docker compose file: every container with
// network_mode none (or sharing its vpp node's namespace), the socket
// directory bind-mounted at the same path, and a one-shot service per vpp
// node that imports the node's agent configuration. veth links have no
// compose form: they are listed under x-vppmesh-links for the reader.
func (p *Plan) Compose() ([]byte, error) {
	cs, err := p.containers()
	if err != nil {
		return nil, err
	}
	f := ComposeFile{Version: "2.4", XLab: p.Topo.Name, Services: map[string]ComposeService{}}
	for _, c := range cs {
		s := ComposeService{Image: c.Image, Environment: c.Env, Volumes: c.Binds, NetworkMode: "none",
			Labels: map[string]string{"dev.vppmesh.lab": p.Topo.Name, "dev.vppmesh.node": c.Node}}
		if len(c.Args) > 0 {
			s.Command = c.Args
		}
		if c.NetworkFrom != "" {
			s.NetworkMode = "service:" + c.NetworkFrom
			s.DependsOn = []string{c.NetworkFrom}
		}
		if c.OneShot {
			s.Entrypoint, s.Command = c.Args[:1], c.Args[1:]
			s.DependsOn = []string{c.Node + "-agent"}
			s.Restart = "on-failure"
		}
		f.Services[c.Name] = s
	}
	for _, pl := range p.Links {
		if pl.Type == LinkVeth {
			f.XLinks = append(f.XLinks, "veth "+pl.Name)
		}
	}
	return yaml.Marshal(f)
}

// ClabFile is the subset of containerlab's topology format the export writes.
type ClabFile struct {
	Name     string       `yaml:"name"`
	Topology ClabTopology `yaml:"topology"`
}

// ClabTopology is ClabFile's topology section.
type ClabTopology struct {
	Nodes map[string]ClabNode `yaml:"nodes"`
	Links []ClabLink          `yaml:"links,omitempty"`
}

// ClabNode is one containerlab node (kind linux: containerlab has no VPP kind).
type ClabNode struct {
	Kind       string            `yaml:"kind"`
	Image      string            `yaml:"image"`
	Cmd        string            `yaml:"cmd,omitempty"`
	Entrypoint string            `yaml:"entrypoint,omitempty"`
	Env        map[string]string `yaml:"env,omitempty"`
	Binds      []string          `yaml:"binds,omitempty"`
	Exec       []string          `yaml:"exec,omitempty"`
	Labels     map[string]string `yaml:"labels,omitempty"`
	// NetworkMode container:<name> also makes containerlab start <name> first.
	NetworkMode string `yaml:"network-mode,omitempty"`
}

// ClabLink is a containerlab veth link.
type ClabLink struct {
	Endpoints []string `yaml:"endpoints"`
}

// Containerlab exports the plan as a containerlab topology. containerlab has
// neither memif nor vhost-user links: those travel through the socket
// directory every node binds, and only veth links appear as links.
func (p *Plan) Containerlab() ([]byte, error) {
	cs, err := p.containers()
	if err != nil {
		return nil, err
	}
	f := ClabFile{Name: p.Topo.Name, Topology: ClabTopology{Nodes: map[string]ClabNode{}}}
	for _, c := range cs {
		n := ClabNode{Kind: "linux", Image: c.Image, Env: c.Env, Binds: c.Binds,
			Labels: map[string]string{"dev.vppmesh.node": c.Node}}
		args := c.Args
		if c.OneShot {
			n.Entrypoint, args = c.Args[0], c.Args[1:]
		}
		n.Cmd = shellJoin(args)
		if c.NetworkFrom != "" {
			n.NetworkMode = "container:" + c.NetworkFrom
		}
		if c.NetworkFrom == "" {
			n.NetworkMode = "none" // memif and vhost-user need no network; veth links are moved in
		}
		if pn := p.Node(c.Name); pn != nil && len(pn.Exec) > 0 {
			n.Exec = pn.Exec
		}
		f.Topology.Nodes[c.Name] = n
	}
	for _, pl := range p.Links {
		if pl.Type == LinkVeth {
			f.Topology.Links = append(f.Topology.Links, ClabLink{Endpoints: []string{pl.Link.Endpoints[0].String(), pl.Link.Endpoints[1].String()}})
		}
	}
	sort.Slice(f.Topology.Links, func(i, j int) bool { return f.Topology.Links[i].Endpoints[0] < f.Topology.Links[j].Endpoints[0] })
	return yaml.Marshal(f)
}

// shellJoin quotes args for a one-string command line (containerlab's cmd).
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'\\$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// WriteConfigs writes each vpp node's configuration file (agentctl import's
// line format), which up and the compose export's config services read.
func (p *Plan) WriteConfigs() error {
	for _, n := range p.Nodes {
		if n.Kind != KindVPP {
			continue
		}
		f := p.ConfigFile(n.Name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(n.ConfigLines()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
