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
	waiters keySet   // parents whose derived values collide with this key

	// Applied side.
	applied       proto.Message // value in the southbound, nil if none
	meta          any
	obtained      bool // found in the southbound, not managed (FromSB)
	appliedDeps   []string
	appliedParent string
	appliedKids   keySet

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
		n.waiters.len() == 0 && len(n.kids) == 0 && n.appliedKids.len() == 0
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

// keySet is a set of keys. Almost every set in the graph holds one to four
// keys (the xconnects that need an interface, a cross-connect's derived
// values), so it starts as a small slice, far cheaper than a map per set;
// only a hub with many members switches to a map.
type keySet struct {
	small []string
	big   map[string]struct{}
}

const keySetSmall = 8

func (ks *keySet) add(k string) {
	if ks.big != nil {
		ks.big[k] = struct{}{}
		return
	}
	for _, x := range ks.small {
		if x == k {
			return
		}
	}
	if len(ks.small) < keySetSmall {
		ks.small = append(ks.small, k)
		return
	}
	ks.big = make(map[string]struct{}, 2*keySetSmall)
	for _, x := range ks.small {
		ks.big[x] = struct{}{}
	}
	ks.big[k] = struct{}{}
	ks.small = nil
}

func (ks *keySet) del(k string) {
	if ks.big != nil {
		delete(ks.big, k)
		return
	}
	for i, x := range ks.small {
		if x == k {
			last := len(ks.small) - 1
			ks.small[i] = ks.small[last]
			ks.small[last] = ""
			ks.small = ks.small[:last]
			if last == 0 {
				ks.small = nil
			}
			return
		}
	}
}

func (ks keySet) len() int { return len(ks.small) + len(ks.big) }

// all yields the members in no particular order.
func (ks keySet) all() func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for _, k := range ks.small {
			if !yield(k) {
				return
			}
		}
		for k := range ks.big {
			if !yield(k) {
				return
			}
		}
	}
}

// sorted returns the members in key order.
func (ks keySet) sorted() []string {
	out := make([]string, 0, ks.len())
	for k := range ks.all() {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// keyIndex maps a key to the set of keys that refer to it.
type keyIndex map[string]*keySet

func (idx keyIndex) add(dep, key string) {
	set := idx[dep]
	if set == nil {
		set = &keySet{}
		idx[dep] = set
	}
	set.add(key)
}

func (idx keyIndex) del(dep, key string) {
	if set := idx[dep]; set != nil {
		set.del(key)
		if set.len() == 0 {
			delete(idx, dep)
		}
	}
}

// of returns the keys referring to dep (an empty set when none).
func (idx keyIndex) of(dep string) keySet {
	if set := idx[dep]; set != nil {
		return *set
	}
	return keySet{}
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
