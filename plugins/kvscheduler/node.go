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
	parent  string        // parent key when the value in effect is derived
	desired proto.Message // value in effect, nil if not desired
	deps    []Dependency
	kids    []string // keys derived from desired, sorted

	// Applied side.
	applied       proto.Message // value in the southbound, nil if none
	meta          any
	obtained      bool // found in the southbound, not managed (FromSB)
	appliedDeps   []string
	appliedParent string
	appliedKids   []string // few: a parent derives a handful of values

	// Reported state.
	state      State
	lastChange int64 // unix nanoseconds; 0 before the first state
	recreating bool  // deleted in this txn to be created again

	// tr holds what only a value in trouble needs; nil for the healthy
	// majority, which keeps the node small at 10k cross-connects.
	tr *trouble
}

// trouble is the part of a node that is empty while all is well.
type trouble struct {
	nbErr     string // why nbValue is not in effect (key owned by a parent)
	invalid   error  // Validate (or collision) error for desired
	err       string
	waiters   keySet // parents whose derived values collide with this key
	missing   []string
	retries   int
	nextRetry time.Time
}

func (n *node) trouble() *trouble {
	if n.tr == nil {
		n.tr = &trouble{}
	}
	return n.tr
}

// tidy drops the trouble record once nothing is left in it.
func (n *node) tidy() {
	if tr := n.tr; tr != nil && tr.nbErr == "" && tr.invalid == nil && tr.err == "" &&
		tr.waiters.len() == 0 && len(tr.missing) == 0 && tr.retries == 0 && tr.nextRetry.IsZero() {
		n.tr = nil
	}
}

func (n *node) invalidErr() error {
	if n.tr == nil {
		return nil
	}
	return n.tr.invalid
}

func (n *node) setInvalid(err error) {
	if err != nil || n.tr != nil {
		n.trouble().invalid = err
	}
}

func (n *node) setNBErr(msg string) {
	if msg != "" || n.tr != nil {
		n.trouble().nbErr = msg
	}
}

func (n *node) errStr() string {
	if n.tr == nil {
		return ""
	}
	return n.tr.err
}

func (n *node) setErr(msg string) {
	if msg != "" || n.tr != nil {
		n.trouble().err = msg
	}
}

func (n *node) missingKeys() []string {
	if n.tr == nil {
		return nil
	}
	return n.tr.missing
}

func (n *node) retryCount() int {
	if n.tr == nil {
		return 0
	}
	return n.tr.retries
}

func (n *node) retryAt() time.Time {
	if n.tr == nil {
		return time.Time{}
	}
	return n.tr.nextRetry
}

func (n *node) resetRetries() {
	if n.tr != nil {
		n.tr.retries, n.tr.nextRetry = 0, time.Time{}
	}
}

// visible reports whether the node has anything worth reporting.
func (n *node) visible() bool {
	return n.desired != nil || n.applied != nil || n.nbValue != nil || n.state == StateRemoved || n.state == StateFailed
}

// idle reports whether the node can be forgotten.
func (n *node) idle() bool {
	return n.desired == nil && n.nbValue == nil && n.parent == "" && n.applied == nil &&
		(n.tr == nil || n.tr.waiters.len() == 0) && len(n.kids) == 0 && len(n.appliedKids) == 0
}

func (n *node) status() ValueStatus {
	st := ValueStatus{
		Key:     n.key,
		State:   n.state,
		Error:   n.errStr(),
		Derived: n.parent != "",
		Parent:  n.parent,
		Missing: append([]string(nil), n.missingKeys()...),
		Value:   n.desired,
		Retries: n.retryCount(),
	}
	if n.lastChange != 0 {
		st.LastChange = time.Unix(0, n.lastChange)
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

func addKey(list []string, k string) []string {
	for _, x := range list {
		if x == k {
			return list
		}
	}
	return append(list, k)
}

func delKey(list []string, k string) []string {
	for i, x := range list {
		if x == k {
			list[i] = list[len(list)-1]
			list[len(list)-1] = ""
			if list = list[:len(list)-1]; len(list) == 0 {
				return nil
			}
			return list
		}
	}
	return list
}

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
