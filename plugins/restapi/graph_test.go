package restapi

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// graphFake adds a fixed graph to the fake scheduler and records the
// selection it was asked for.
type graphFake struct {
	*fakeScheduler
	snap  kvscheduler.GraphSnapshot
	asked []string
}

func (g *graphFake) Graph(keys []string) (kvscheduler.GraphSnapshot, bool) {
	g.asked = keys
	return g.snap, false
}

const (
	gMemif1 = "config/vpp/v2/interfaces/memif1"
	gMemif2 = "config/vpp/v2/interfaces/memif2"
	gXC     = "config/vppmesh/v1/xconnect/xc1"
	gL2XC   = "vpp/l2/xconnect/memif1"
)

func smallGraph() kvscheduler.GraphSnapshot {
	return kvscheduler.GraphSnapshot{Nodes: []kvscheduler.GraphNode{
		{Key: gMemif1, Descriptor: "vpp-interface", State: kvscheduler.StateConfigured},
		{Key: gMemif2, State: kvscheduler.StateNonexistent, Context: true},
		{Key: gXC, Descriptor: "xconnect", State: kvscheduler.StatePending, Derives: []string{gL2XC},
			Missing: []string{gMemif2},
			Deps:    []kvscheduler.GraphDep{{Label: "rx", Key: gMemif1, Satisfied: true}, {Label: "tx", Key: gMemif2}}},
		{Key: gL2XC, Descriptor: "vpp-l2xc", State: kvscheduler.StatePending, Derived: true, Parent: gXC, Missing: []string{gXC}},
	}}
}

func graphServer(t *testing.T, sched Scheduler) *httptest.Server {
	t.Helper()
	s, err := New(Options{Scheduler: sched})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func getBody(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestGraphDOTAndJSON(t *testing.T) {
	g := &graphFake{fakeScheduler: newFake(), snap: smallGraph()}
	srv := graphServer(t, g)
	code, ctype, body := getBody(t, srv.URL+PathGraph+"?format=dot&key="+gXC+"&prefix=config/vpp/v2/interfaces")
	if code != 200 || !strings.HasPrefix(ctype, "text/vnd.graphviz") {
		t.Fatalf("dot: %d %s %s", code, ctype, body)
	}
	if strings.Join(g.asked, ",") != gXC+",config/vpp/v2/interfaces/" {
		t.Fatalf("selection asked %v", g.asked)
	}
	for _, want := range []string{
		`"` + gXC + `" -> "` + gMemif2 + `" [label="waits on: tx", color="#d62728"`,
		`"` + gXC + `" -> "` + gMemif1 + `" [label="rx"];`,
		`"` + gXC + `" -> "` + gL2XC + `" [style=dashed`,
		`fillcolor="#ffe08a"`, // PENDING
		`waits on ` + gMemif2,
		"legend [shape=plaintext", `>FAILED</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dot lacks %q:\n%s", want, body)
		}
	}
	code, _, body = getBody(t, srv.URL+PathGraph+"?format=json")
	var gj GraphJSON
	if code != 200 || json.Unmarshal([]byte(body), &gj) != nil || len(gj.Nodes) != 4 || gj.Nodes[2].Deps[1].Key != gMemif2 {
		t.Fatalf("json: %d %s", code, body)
	}
	if code, _, body = getBody(t, srv.URL+PathGraph+"?format=png"); code != 400 || !strings.Contains(body, "want dot, svg or json") {
		t.Fatalf("bad format: %d %s", code, body)
	}
	if code, _, body = getBody(t, srv.URL+PathGraph+"?format=dot"+strings.Repeat("&key=k", 300)); code != 400 || !strings.Contains(body, "at most 256") {
		t.Fatalf("too many keys: %d %s", code, body)
	}
	// A scheduler without a graph answers 501.
	if code, _, _ = getBody(t, graphServer(t, newFake()).URL+PathGraph); code != 501 {
		t.Fatalf("no grapher: %d", code)
	}
}

// svgGraph is the part of Graphviz's SVG the test reads: the title of each
// node and edge group.
type svgGraph struct {
	Groups []svgGroup `xml:"g>g"`
}

type svgGroup struct {
	Class string   `xml:"class,attr"`
	Title string   `xml:"title"`
	Texts []string `xml:"text"`
}

// SVGNodesEdges parses Graphviz SVG into node names and "a->b" edges.
func svgNodesEdges(t *testing.T, svg string) (nodes, edges []string) {
	t.Helper()
	var doc svgGraph
	dec := xml.NewDecoder(strings.NewReader(svg))
	dec.Strict = false
	dec.Entity = xml.HTMLEntity
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("svg: %v\n%.500s", err, svg)
	}
	var walk func(gs []svgGroup)
	walk = func(gs []svgGroup) {
		for _, g := range gs {
			switch g.Class {
			case "node":
				nodes = append(nodes, g.Title)
			case "edge":
				edges = append(edges, g.Title)
			}
		}
	}
	walk(doc.Groups)
	sort.Strings(nodes)
	sort.Strings(edges)
	return nodes, edges
}

func TestGraphSVG(t *testing.T) {
	if !HaveGraphviz() {
		t.Skip("Graphviz dot not installed")
	}
	srv := graphServer(t, &graphFake{fakeScheduler: newFake(), snap: smallGraph()})
	code, ctype, body := getBody(t, srv.URL+PathGraph) // svg is the default with dot
	if code != 200 || ctype != "image/svg+xml" {
		t.Fatalf("svg: %d %s %.300s", code, ctype, body)
	}
	nodes, edges := svgNodesEdges(t, body)
	var values []string
	for _, n := range nodes {
		if !strings.HasPrefix(n, "legend") {
			values = append(values, n)
		}
	}
	if strings.Join(values, " ") != strings.Join([]string{gMemif1, gMemif2, gXC, gL2XC}, " ") {
		t.Fatalf("svg nodes %v", nodes)
	}
	want := []string{gXC + "->" + gMemif1, gXC + "->" + gMemif2, gXC + "->" + gL2XC}
	for _, w := range want {
		found := false
		for _, e := range edges {
			found = found || e == w
		}
		if !found {
			t.Errorf("svg lacks edge %s; has %v", w, edges)
		}
	}
	if !strings.Contains(body, "waits on: tx") || !strings.Contains(body, "#ffe08a") {
		t.Errorf("svg lacks the waiting edge's label or the PENDING colour")
	}
}

// The README's picture is Graphviz's rendering of the demo's cross-connect.
func TestReadmeGraphPicture(t *testing.T) {
	b, err := os.ReadFile("../../docs/graph-demo.svg")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Generated by graphviz") {
		t.Fatal("docs/graph-demo.svg was not made by Graphviz")
	}
	nodes, edges := svgNodesEdges(t, string(b))
	const xc, ifA, ifB = "config/vppmesh/v1/xconnect/demo-xc", "config/vpp/v2/interfaces/demo-xc-a", "config/vpp/v2/interfaces/demo-xc-b"
	const l2A, l2B = "config/vpp/l2/v2/xconnect/demo-xc-a", "config/vpp/l2/v2/xconnect/demo-xc-b"
	if strings.Join(nodes, " ") != strings.Join([]string{l2A, l2B, ifA, ifB, xc, "legend"}, " ") {
		t.Fatalf("nodes %v", nodes)
	}
	for _, e := range []string{xc + "->" + ifA, xc + "->" + ifB, xc + "->" + l2A, xc + "->" + l2B, l2A + "->" + ifA, l2A + "->" + ifB, l2B + "->" + ifA, l2B + "->" + ifB} {
		found := false
		for _, x := range edges {
			found = found || x == e
		}
		if !found {
			t.Errorf("edge %s missing; has %v", e, edges)
		}
	}
}
