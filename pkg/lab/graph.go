package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Mermaid draws the topology as a Mermaid flowchart: one box per node (its
// kind under its name), one edge per link labelled with the type and both
// interface names.
func Mermaid(t *Topology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%%%% lab %s\nflowchart LR\n", t.Name)
	for _, n := range t.Nodes() {
		open, close := "[", "]"
		switch n.Kind {
		case KindVPP:
			open, close = "[[", "]]"
		case KindEtcd:
			open, close = "[(", ")]"
		case KindTestpmd:
			open, close = "([", "])"
		}
		fmt.Fprintf(&b, "  %s%s\"%s<br/><small>%s</small>\"%s\n", mermaidID(n.Name), open, n.Name, kindLabel(n), close)
	}
	for i := range t.Topology.Links {
		l := &t.Topology.Links[i]
		a := l.Endpoints[0]
		if len(l.Endpoints) == 1 {
			fmt.Fprintf(&b, "  %s -- \"%s %s → %s\" --- remote%d((%s))\n", mermaidID(a.Node), l.LinkType(), a.Interface, l.Remote, i+1, l.Remote)
			continue
		}
		z := l.Endpoints[1]
		fmt.Fprintf(&b, "  %s -- \"%s: %s ⇄ %s\" --- %s\n", mermaidID(a.Node), l.LinkType(), a.Interface, z.Interface, mermaidID(z.Node))
	}
	for _, n := range t.Nodes() {
		if vpp, label, ok := meshEdge(t, n); ok {
			fmt.Fprintf(&b, "  %s -. \"%s\" .- %s\n", mermaidID(n.Name), label, mermaidID(vpp))
		}
	}
	return b.String()
}

// meshEdge is a mesh CNF's edge to its vpp node: the agent wires its memifs
// per connection, so the edge names the role, service and labels.
func meshEdge(t *Topology, n Node) (vpp, label string, ok bool) {
	role := n.MeshRole()
	if role == "" || n.Mesh == nil {
		return "", "", false
	}
	vpp, err := t.meshVPP(n)
	if err != nil {
		return "", "", false
	}
	label = "mesh " + role + " " + n.Mesh.Service
	var kv []string
	for _, k := range sortedKeys(n.Mesh.Labels) {
		kv = append(kv, k+"="+n.Mesh.Labels[k])
	}
	if len(kv) > 0 {
		label += " {" + strings.Join(kv, ",") + "}"
	}
	return vpp, label, true
}

func mermaidID(n string) string { return "n_" + strings.ReplaceAll(n, "-", "_") }

func kindLabel(n Node) string {
	if n.Kind == KindVPP {
		return "vpp (" + n.VPP.Engine + ")"
	}
	if n.Kind == KindCNF {
		if f := strings.Fields(n.Cmd); len(f) > 0 {
			return "cnf " + f[0]
		}
		return "cnf reflect"
	}
	return n.Kind
}

// DOT draws the topology for Graphviz.
func DOT(t *Topology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %q {\n  graph [rankdir=LR, label=%q, fontname=\"Helvetica\"];\n  node [fontname=\"Helvetica\", style=filled];\n  edge [fontname=\"Helvetica\", fontsize=10, labelfontsize=9, labeldistance=2];\n", t.Name, "lab "+t.Name)
	for _, n := range t.Nodes() {
		shape, color := "box", "#e8f0fe"
		switch n.Kind {
		case KindVPP:
			shape, color = "box3d", "#fde7c8"
		case KindEtcd:
			shape, color = "cylinder", "#e6f4ea"
		case KindTestpmd:
			shape, color = "component", "#f3e8fd"
		case KindLinux:
			color = "#eeeeee"
		}
		fmt.Fprintf(&b, "  %q [label=%q, shape=%s, fillcolor=%q];\n", n.Name, n.Name+"\n"+kindLabel(n), shape, color)
	}
	for i := range t.Topology.Links {
		l := &t.Topology.Links[i]
		a := l.Endpoints[0]
		if len(l.Endpoints) == 1 {
			r := fmt.Sprintf("remote %s", l.Remote)
			fmt.Fprintf(&b, "  %q [shape=ellipse, style=dashed];\n  %q -- %q [label=%q, taillabel=%q, style=dashed];\n", r, a.Node, r, l.LinkType(), a.Interface)
			continue
		}
		z := l.Endpoints[1]
		style := "solid"
		switch l.LinkType() {
		case LinkVhostUser:
			style = "bold"
		case LinkVxlan:
			style = "dashed"
		}
		label := l.LinkType()
		if l.LinkType() == LinkVxlan {
			label = fmt.Sprintf("vxlan vni %d", l.VNI)
		}
		fmt.Fprintf(&b, "  %q -- %q [label=%q, taillabel=%q, headlabel=%q, style=%s];\n", a.Node, z.Node, label, a.Interface, z.Interface, style)
	}
	for _, n := range t.Nodes() {
		if vpp, label, ok := meshEdge(t, n); ok {
			fmt.Fprintf(&b, "  %q -- %q [label=%q, style=dotted];\n", n.Name, vpp, label)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// SVG renders DOT(t) with Graphviz's dot. It fails, saying so, when dot is
// not installed (Debian package graphviz).
func SVG(ctx context.Context, t *Topology) ([]byte, error) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		return nil, fmt.Errorf("SVG needs Graphviz's dot (Debian package graphviz): %w", err)
	}
	cmd := exec.CommandContext(ctx, dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(DOT(t))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dot -Tsvg: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
