package kvscheduler

import (
	"sort"
	"strings"
)

// This file offers a read-only snapshot of the graph for pictures (REST
// /scheduler/graph, agentctl graph): which values exist, in which state,
// what each derives and what each depends on.

// GraphNode is one value of a graph snapshot.
type GraphNode struct {
	Key        string `json:"key"`
	Descriptor string `json:"descriptor,omitempty"`
	State      State  `json:"state"`
	Error      string `json:"error,omitempty"`
	// Derived values name their parent.
	Derived bool   `json:"derived,omitempty"`
	Parent  string `json:"parent,omitempty"`
	// Derives lists the keys derived from this value, sorted.
	Derives []string `json:"derives,omitempty"`
	// Deps are the dependencies of the desired value.
	Deps []GraphDep `json:"deps,omitempty"`
	// Missing lists the dependencies a PENDING value waits on.
	Missing []string `json:"missing,omitempty"`
	// Context is true for a node that is not selected but shown because a
	// selected node derives from it, derives it or depends on it.
	Context bool `json:"context,omitempty"`
}

// GraphDep is one dependency edge.
type GraphDep struct {
	Label string `json:"label,omitempty"`
	Key   string `json:"key"`
	// Satisfied is false while the dependency is missing.
	Satisfied bool `json:"satisfied"`
}

// GraphSnapshot is a consistent copy of part of the graph.
type GraphSnapshot struct {
	Nodes []GraphNode `json:"nodes"` // sorted by key
}

// MaxGraphNodes bounds a snapshot: a picture of more values is unreadable,
// and the copy is made under the scheduler's read lock.
const MaxGraphNodes = 5000

// Graph returns the values whose key is selected (equal to one of keys, or
// starting with it when it ends in '/'; every value when keys is empty),
// their derived values (transitively), their parents and the values they
// depend on, the latter marked Context. A dependency on a key the
// scheduler does not know is a node in state NONEXISTENT. At most
// MaxGraphNodes nodes are returned; truncated tells whether more matched.
func (s *Scheduler) Graph(keys []string) (snap GraphSnapshot, truncated bool) {
	match := func(k string) bool {
		if len(keys) == 0 {
			return true
		}
		for _, sel := range keys {
			if k == sel || (strings.HasSuffix(sel, "/") && strings.HasPrefix(k, sel)) {
				return true
			}
		}
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	picked := map[string]bool{} // key -> selected (false: context)
	var queue []string
	for k, n := range s.nodes {
		if n.visible() && match(k) {
			picked[k] = true
			queue = append(queue, k)
		}
	}
	sort.Strings(queue)
	add := func(k string) {
		if _, ok := picked[k]; !ok {
			picked[k] = false
		}
	}
	// Derived values of selected ones belong to the selection.
	for i := 0; i < len(queue) && len(picked) <= MaxGraphNodes; i++ {
		n := s.nodes[queue[i]]
		for _, kid := range n.kids {
			if !picked[kid] {
				picked[kid] = true
				queue = append(queue, kid)
			}
		}
	}
	for _, k := range queue {
		n := s.nodes[k]
		if n.parent != "" {
			add(n.parent)
		}
		for _, d := range n.deps {
			add(d.Key)
		}
	}
	out := make([]string, 0, len(picked))
	for k := range picked {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) > MaxGraphNodes {
		out, truncated = out[:MaxGraphNodes], true
	}
	snap.Nodes = make([]GraphNode, 0, len(out))
	for _, k := range out {
		n := s.nodes[k]
		if n == nil {
			snap.Nodes = append(snap.Nodes, GraphNode{Key: k, State: StateNonexistent, Context: true})
			continue
		}
		st := n.status()
		gn := GraphNode{
			Key: k, Descriptor: st.Descriptor, State: st.State, Error: st.Error,
			Derived: st.Derived, Parent: st.Parent, Missing: st.Missing, Context: !picked[k],
		}
		if len(n.kids) > 0 {
			gn.Derives = append([]string(nil), n.kids...)
		}
		miss := map[string]bool{}
		for _, m := range st.Missing {
			miss[m] = true
		}
		for _, d := range n.deps {
			gn.Deps = append(gn.Deps, GraphDep{Label: d.Label, Key: d.Key, Satisfied: !miss[d.Key]})
		}
		snap.Nodes = append(snap.Nodes, gn)
	}
	return snap, truncated
}
