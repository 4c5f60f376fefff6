package restapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// PathGraph serves the dependency graph of the desired values (Ligato's
// path): ?key= (repeatable; a key ending in '/' is a prefix) selects values,
// ?format= is dot, svg or json (default svg when Graphviz is installed, else
// dot).
const PathGraph = "/scheduler/graph"

// Grapher is the part of the scheduler the graph endpoint reads;
// *kvscheduler.Scheduler implements it. A Scheduler without it answers 501.
type Grapher interface {
	Graph(keys []string) (kvscheduler.GraphSnapshot, bool)
}

// GraphJSON is what ?format=json answers.
type GraphJSON struct {
	kvscheduler.GraphSnapshot
	Truncated bool `json:"truncated,omitempty"`
}

// Graph formats.
const (
	GraphDOT        = "dot"
	GraphSVG        = "svg"
	GraphJSONFormat = "json"
)

func (s *Server) graph(w http.ResponseWriter, r *http.Request) {
	// The graph carries keys, states and errors, never values, so it is
	// read from the scheduler under the redacting wrapper.
	sch := s.opts.Scheduler
	if r, isRedacting := sch.(redactingScheduler); isRedacting {
		sch = r.Scheduler
	}
	g, ok := sch.(Grapher)
	if !ok {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("the scheduler offers no graph"))
		return
	}
	q := r.URL.Query()
	keys := q["key"]
	if p := q.Get("prefix"); p != "" {
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		keys = append(keys, p)
	}
	if len(keys) > maxGraphKeys {
		s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("%d keys selected: at most %d (select a prefix instead)", len(keys), maxGraphKeys))
		return
	}
	format := q.Get("format")
	if format == "" {
		format = GraphDOT
		if HaveGraphviz() {
			format = GraphSVG
		}
	}
	if format != GraphDOT && format != GraphSVG && format != GraphJSONFormat {
		s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("format=%q: want dot, svg or json", format))
		return
	}
	snap, truncated := g.Graph(keys)
	if format == GraphJSONFormat {
		s.writeJSON(w, r, http.StatusOK, GraphJSON{GraphSnapshot: snap, Truncated: truncated})
		return
	}
	dot := RenderDOT(snap, GraphTitle(keys, truncated))
	if format == GraphDOT {
		w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
		w.Write(dot)
		return
	}
	// One dot at a time: a picture of thousands of values takes seconds of CPU.
	select {
	case svgSem <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	svg, err := RenderSVG(r.Context(), dot)
	<-svgSem
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, exec.ErrNotFound) {
			code = http.StatusNotImplemented
		}
		s.writeError(w, r, code, err)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write(svg)
}

var svgSem = make(chan struct{}, 1)

// maxGraphKeys bounds a selection: each value is matched against each key.
const maxGraphKeys = 256

// GraphTitle names a picture after its selection.
func GraphTitle(keys []string, truncated bool) string {
	t := "all values"
	if len(keys) > 0 {
		t = strings.Join(keys, ", ")
	}
	if truncated {
		t += fmt.Sprintf(" (first %d values only)", kvscheduler.MaxGraphNodes)
	}
	return t
}

// stateStyle is the fill colour and border of a state in pictures.
var stateStyle = map[kvscheduler.State][2]string{
	kvscheduler.StateConfigured:  {"#b7e4a8", "solid"},
	kvscheduler.StatePending:     {"#ffe08a", "solid"},
	kvscheduler.StateFailed:      {"#f4a09c", "solid"},
	kvscheduler.StateInvalid:     {"#e3a6e8", "solid"},
	kvscheduler.StateObtained:    {"#c6dbef", "solid"},
	kvscheduler.StateRemoved:     {"#e0e0e0", "solid"},
	kvscheduler.StateNonexistent: {"#ffffff", "dashed"},
}

// legendStates is the legend's order.
var legendStates = []kvscheduler.State{
	kvscheduler.StateConfigured, kvscheduler.StatePending, kvscheduler.StateFailed,
	kvscheduler.StateInvalid, kvscheduler.StateObtained, kvscheduler.StateNonexistent,
}

// dotQuote makes s a DOT string literal.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// RenderDOT writes a snapshot as a Graphviz digraph: a box per value filled
// by its state (label: key, descriptor, state, error or what it waits on),
// a solid edge per dependency (red and bold while missing), a dashed edge
// from a value to each value derived from it, and a legend of the states.
func RenderDOT(snap kvscheduler.GraphSnapshot, title string) []byte {
	var b bytes.Buffer
	b.WriteString("digraph vppmesh {\n")
	fmt.Fprintf(&b, "  label=%s; labelloc=t; fontname=\"Helvetica\"; rankdir=LR;\n", dotQuote("vppmesh desired state: "+title))
	b.WriteString("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=9];\n")
	for _, n := range snap.Nodes {
		st, ok := stateStyle[n.State]
		if !ok {
			st = [2]string{"#ffffff", "solid"}
		}
		label := n.Key + "\n"
		if n.Descriptor != "" {
			label += n.Descriptor + " · "
		}
		label += string(n.State)
		if n.Derived {
			label += " (derived)"
		}
		if len(n.Missing) > 0 {
			label += "\nwaits on " + clip(strings.Join(n.Missing, ", "), 120)
		}
		if n.Error != "" {
			label += "\n" + clip(n.Error, 80)
		}
		style := "rounded,filled"
		if st[1] == "dashed" {
			style += ",dashed"
		}
		pen := ""
		if n.Context {
			pen = ", color=\"#888888\""
		}
		fmt.Fprintf(&b, "  %s [label=%s, fillcolor=%s, style=%s%s, tooltip=%s];\n",
			dotQuote(n.Key), dotQuote(label), dotQuote(st[0]), dotQuote(style), pen, dotQuote(n.Key+": "+string(n.State)))
	}
	for _, n := range snap.Nodes {
		for _, kid := range n.Derives {
			fmt.Fprintf(&b, "  %s -> %s [style=dashed, color=\"#555555\", label=\"derives\"];\n", dotQuote(n.Key), dotQuote(kid))
		}
		deps := append([]kvscheduler.GraphDep(nil), n.Deps...)
		sort.Slice(deps, func(i, j int) bool { return deps[i].Key < deps[j].Key })
		for _, d := range deps {
			label := d.Label
			attrs := ""
			if !d.Satisfied {
				label = "waits on: " + label
				attrs = ", color=\"#d62728\", fontcolor=\"#d62728\", penwidth=2"
			}
			fmt.Fprintf(&b, "  %s -> %s [label=%s%s];\n", dotQuote(n.Key), dotQuote(d.Key), dotQuote(label), attrs)
		}
	}
	// The legend: one table node, the states in their colours and the
	// three kinds of edges.
	b.WriteString("  legend [shape=plaintext, style=\"\", label=<<table border=\"0\" cellborder=\"1\" cellspacing=\"2\" cellpadding=\"3\"><tr>")
	for _, st := range legendStates {
		s := stateStyle[st]
		fmt.Fprintf(&b, "<td bgcolor=\"%s\">%s</td>", s[0], st)
	}
	fmt.Fprintf(&b, "</tr><tr><td colspan=\"%d\" border=\"0\">A → B: A needs B · <font color=\"#d62728\">red A → B: A waits on B (missing)</font> · A ⇢ B (dashed): A derives B</td></tr></table>>];\n", len(legendStates))
	b.WriteString("}\n")
	return b.Bytes()
}

// HaveGraphviz reports whether Graphviz's dot is on PATH.
func HaveGraphviz() bool {
	_, err := exec.LookPath("dot")
	return err == nil
}

// maxSVG bounds what dot may answer.
const maxSVG = 64 << 20

// RenderSVG runs Graphviz's dot on a DOT document (at most 60 s). The error
// wraps exec.ErrNotFound when dot is not installed.
func RenderSVG(ctx context.Context, dot []byte) ([]byte, error) {
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, fmt.Errorf("render svg: Graphviz's dot is not installed (ask for format=dot): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-Tsvg")
	cmd.Stdin = bytes.NewReader(dot)
	var out limitedBuffer
	out.max = maxSVG
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("render svg: dot: %w: %s", err, clip(strings.TrimSpace(errb.String()), 300))
	}
	if out.over {
		return nil, fmt.Errorf("render svg: dot wrote more than %d bytes", maxSVG)
	}
	return out.Bytes(), nil
}

// limitedBuffer keeps at most max bytes and remembers it dropped some.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.Len(); len(p) > room {
		l.over = true
		if room > 0 {
			l.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return l.Buffer.Write(p)
}
