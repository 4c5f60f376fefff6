package kvscheduler

import (
	"google.golang.org/protobuf/types/known/structpb"
	"strings"
	"testing"
)

func TestGraphSnapshot(t *testing.T) {
	s, _ := newTestScheduler(t, Options{})
	commit(t, s,
		put("/if/a", withKids(val("a"), map[string]*structpb.Struct{"/d/a1": val("a1")})),
		put("/xc/ab", val("x", "/if/a", "/if/b")),
		put("/xc/zz", val("z")),
	)
	snap, trunc := s.Graph([]string{"/xc/ab"})
	if trunc {
		t.Fatal("truncated")
	}
	got := map[string]GraphNode{}
	var keys []string
	for _, n := range snap.Nodes {
		got[n.Key] = n
		keys = append(keys, n.Key)
	}
	if strings.Join(keys, ",") != "/if/a,/if/b,/xc/ab" {
		t.Fatalf("nodes %v: want the selected value and its two dependencies", keys)
	}
	xc := got["/xc/ab"]
	if xc.State != StatePending || xc.Context || len(xc.Deps) != 2 || !xc.Deps[0].Satisfied || xc.Deps[1].Satisfied ||
		strings.Join(xc.Missing, ",") != "/if/b" {
		t.Fatalf("xc %+v", xc)
	}
	if b := got["/if/b"]; b.State != StateNonexistent || !b.Context {
		t.Fatalf("missing dependency %+v", b)
	}
	if a := got["/if/a"]; !a.Context || a.State != StateConfigured {
		t.Fatalf("dependency %+v", a)
	}

	// A prefix selects its values and, transitively, their derived values.
	snap, _ = s.Graph([]string{"/if/"})
	keys = keys[:0]
	for _, n := range snap.Nodes {
		keys = append(keys, n.Key)
		if n.Key == "/if/a" && strings.Join(n.Derives, ",") != "/d/a1" {
			t.Fatalf("/if/a derives %v", n.Derives)
		}
		if n.Key == "/d/a1" && (n.Parent != "/if/a" || n.Context || n.State != StateConfigured) {
			t.Fatalf("derived %+v", n)
		}
	}
	if strings.Join(keys, ",") != "/d/a1,/if/a" {
		t.Fatalf("prefix nodes %v", keys)
	}
	if snap, _ := s.Graph(nil); len(snap.Nodes) != 5 {
		t.Fatalf("whole graph: %d nodes, want 5 (4 values and a missing dependency)", len(snap.Nodes))
	}
}
