package lab

import (
	"context"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Topology is a reusable description of a lab: processes, which of them get a
// namespace of their own, and their arguments. The e2e tests build them in Go;
// a demo or a user can keep one in a YAML file (LoadTopology).
type Topology struct {
	Name  string `json:"name"`
	Nodes []Node `json:"nodes"`
}

// Node is one process of a Topology.
type Node struct {
	Name string `json:"name"`
	// Netns gives the node a namespace of its own (a container); false runs it
	// in the host namespace, as the agent and VPP run on a node.
	Netns bool `json:"netns,omitempty"`
	// Command is a program name resolved by StartTopology's resolver (or PATH).
	Command string `json:"command"`
	// Args may contain {dir}, replaced with the Lab's directory.
	Args  []string `json:"args,omitempty"`
	Env   []string `json:"env,omitempty"`
	Stdin bool     `json:"stdin,omitempty"`
}

// LoadTopology reads a YAML or JSON topology file.
func LoadTopology(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	return ParseTopology(b)
}

// ParseTopology decodes YAML or JSON and checks names and commands.
func ParseTopology(b []byte) (*Topology, error) {
	var t Topology
	if err := yaml.UnmarshalStrict(b, &t); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Validate reports the first node without a name or command, or a duplicate name.
func (t *Topology) Validate() error {
	seen := map[string]bool{}
	for i, n := range t.Nodes {
		if n.Name == "" {
			return fmt.Errorf("topology %q: node %d has no name", t.Name, i)
		}
		if n.Command == "" {
			return fmt.Errorf("topology %q: node %q has no command", t.Name, n.Name)
		}
		if seen[n.Name] {
			return fmt.Errorf("topology %q: node %q twice", t.Name, n.Name)
		}
		seen[n.Name] = true
	}
	return nil
}

// StartTopology starts t's nodes in order, each Netns node in a new namespace.
// resolve maps a Command to a program path (nil: the command as given). On
// error the nodes started so far keep running; Close stops them.
func (l *Lab) StartTopology(ctx context.Context, t *Topology, resolve func(command string) string) (map[string]*Proc, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := make(map[string]*Proc, len(t.Nodes))
	for _, n := range t.Nodes {
		var ns *Namespace
		if n.Netns {
			var err error
			if ns, err = l.AddNamespace(ctx, n.Name); err != nil {
				return out, fmt.Errorf("topology %q node %q: %w", t.Name, n.Name, err)
			}
		}
		path := n.Command
		if resolve != nil {
			path = resolve(n.Command)
		}
		args := make([]string, len(n.Args))
		for i, a := range n.Args {
			args[i] = strings.ReplaceAll(a, "{dir}", l.dir)
		}
		p, err := l.Start(ctx, ProcSpec{Name: n.Name, Namespace: ns, Path: path, Args: args, Env: n.Env, Stdin: n.Stdin})
		if err != nil {
			return out, fmt.Errorf("topology %q node %q: %w", t.Name, n.Name, err)
		}
		out[n.Name] = p
	}
	return out, nil
}
