package kvscheduler

import (
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
)

// node is everything the scheduler knows about one key: what is desired
// (from the northbound or derived from a parent) and what is applied.
type node struct {
	key  string
	desc *adapter

	// Desired side.
	nbValue proto.Message // value put by the northbound, nil if none
	nbErr   string        // why nbValue is not in effect (key owned by a parent)
	parent  string        // parent key when the value in effect is derived
	desired proto.Message // value in effect, nil if not desired
	invalid error         // Validate (or collision) error for desired
	deps    []Dependency
	kids    []string            // keys derived from desired, sorted
	waiters map[string]struct{} // parents whose derived values collide with this key

	// Applied side.
	applied       proto.Message // value in the southbound, nil if none
	meta          any
	obtained      bool // found in the southbound, not managed (FromSB)
	appliedDeps   []string
	appliedParent string
	appliedKids   map[string]struct{}

	// Reported state.
	state      State
	err        string
	missing    []string
	lastChange time.Time
	retries    int
	nextRetry  time.Time
	recreating bool // deleted in this txn to be created again
}

// visible reports whether the node has anything worth reporting.
func (n *node) visible() bool {
	return n.desired != nil || n.applied != nil || n.nbValue != nil || n.state == StateRemoved || n.state == StateFailed
}

// idle reports whether the node can be forgotten.
func (n *node) idle() bool {
	return n.desired == nil && n.nbValue == nil && n.parent == "" && n.applied == nil &&
		len(n.waiters) == 0 && len(n.kids) == 0 && len(n.appliedKids) == 0
}

func (n *node) status() ValueStatus {
	st := ValueStatus{
		Key:        n.key,
		State:      n.state,
		Error:      n.err,
		Derived:    n.parent != "",
		Parent:     n.parent,
		Missing:    append([]string(nil), n.missing...),
		Value:      n.desired,
		LastChange: n.lastChange,
		Retries:    n.retries,
	}
	if n.desc != nil {
		st.Descriptor = n.desc.name
	}
	if n.obtained {
		st.Value = n.applied
	}
	if n.applied != nil {
		st.Metadata = n.meta
	}
	if st.State == "" {
		st.State = StateNonexistent
	}
	return st
}

func addIndex(idx map[string]map[string]struct{}, dep, key string) {
	set := idx[dep]
	if set == nil {
		set = make(map[string]struct{})
		idx[dep] = set
	}
	set[key] = struct{}{}
}

func delIndex(idx map[string]map[string]struct{}, dep, key string) {
	if set := idx[dep]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(idx, dep)
		}
	}
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
