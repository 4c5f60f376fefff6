package kvscheduler

import (
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"
)

// This file keeps the desired side of the graph: northbound puts, derived
// values and their owners, and the dependency index. Every change marks the
// keys it affects dirty; the plan (plan.go) only looks at dirty keys and what
// they reach through the indexes, so its cost follows the transaction, not
// the graph.

func (t *txn) newNode(key string) *node {
	n := &node{key: key, desc: t.s.descFor(key)}
	t.s.nodes[key] = n
	return n
}

// claimNB applies one northbound change; v == nil deletes.
func (t *txn) claimNB(key string, v proto.Message) {
	s := t.s
	n := s.nodes[key]
	if n == nil {
		if v == nil {
			return
		}
		n = t.newNode(key)
	}
	if v == nil {
		if n.nbValue == nil {
			return
		}
		n.nbValue = nil
		n.setNBErr("")
		t.touch(n)
		if n.parent == "" {
			t.setDesired(n, nil, true, false)
			t.wake(n)
		}
		return
	}
	if n.parent != "" {
		// The key is already a derived value of another key: that owner came
		// first and stays untouched; this put waits until the owner lets go.
		n.nbValue = v
		msg := fmt.Sprintf("key %s is already derived from %s", key, n.parent)
		n.setNBErr(msg)
		t.rec.Errors[key] = msg
		t.s.log.Warn("kvscheduler: key collision", "key", key, "owner", n.parent)
		return
	}
	n.obtained = false // the northbound takes over a value found in the southbound
	n.nbValue = v
	t.setDesired(n, v, true, false)
}

// setDesired changes the value in effect for n. reset restarts the retry
// backoff (a new northbound change); force re-evaluates an unchanged value
// (a collision may have gone away).
func (t *txn) setDesired(n *node, v proto.Message, reset, force bool) {
	s := t.s
	if equalOrNil(n.desired, v) && !force {
		if reset && n.state == StateFailed {
			n.resetRetries()
			t.markDirty(n)
		}
		return
	}
	if reset {
		n.resetRetries()
	}
	for _, d := range n.deps {
		s.depIndex.del(d.Key, n.key)
	}
	n.desired, n.deps = v, nil
	n.setInvalid(nil)
	var kids []KeyValue
	if v != nil {
		if n.desc == nil {
			n.setInvalid(fmt.Errorf("no descriptor handles key %s", n.key))
		} else if err := n.desc.validate(n.key, v); err != nil {
			n.setInvalid(fmt.Errorf("validate %s (%s): %w", n.key, n.desc.name, err))
		} else {
			var derr, kerr error
			n.deps, derr = n.desc.deps(n.key, v)
			kids, kerr = n.desc.derived(n.key, v)
			if err := errors.Join(derr, kerr); err != nil {
				// A panicking descriptor: the value is FAILED (invalidState)
				// rather than applied without its dependencies or children.
				n.setInvalid(err)
				n.deps, kids = nil, nil
			} else if err := t.collision(n, kids); err != nil {
				n.setInvalid(err)
				kids = nil
			}
		}
	}
	for _, d := range n.deps {
		s.depIndex.add(d.Key, n.key)
	}
	t.setKids(n, kids)
	t.markDirty(n)
}

// collision returns an error naming the owner when one of kids is a key
// that somebody else already owns.
func (t *txn) collision(n *node, kids []KeyValue) error {
	for _, kv := range kids {
		if kv.Key == n.key || kv.Value == nil {
			return fmt.Errorf("derived value %q of %s is itself or empty", kv.Key, n.key)
		}
		c := t.s.nodes[kv.Key]
		if c == nil {
			continue
		}
		owner := ""
		switch {
		case c.parent != "" && c.parent != n.key:
			owner = "derived value of " + c.parent
		case c.parent == "" && c.nbValue != nil:
			owner = "northbound value " + c.key
		}
		if owner != "" {
			c.trouble().waiters.add(n.key)
			return fmt.Errorf("derived key %s of %s is already owned by %s", kv.Key, n.key, owner)
		}
	}
	return nil
}

// setKids makes kids the derived values of n: released ones lose their
// desired value, new or changed ones get it. Unchanged ones are left alone.
func (t *txn) setKids(n *node, kids []KeyValue) {
	want := make(map[string]proto.Message, len(kids))
	for _, kv := range kids {
		want[kv.Key] = kv.Value
	}
	for _, old := range n.kids {
		if _, ok := want[old]; !ok {
			t.releaseDerived(old, n.key)
		}
	}
	n.kids = n.kids[:0]
	for k := range want {
		n.kids = append(n.kids, k)
	}
	sort.Strings(n.kids)
	for _, k := range n.kids {
		c := t.s.nodes[k]
		if c == nil {
			c = t.newNode(k)
		}
		if c.parent != n.key {
			c.parent, c.obtained = n.key, false
			t.touch(c)
		}
		t.setDesired(c, want[k], false, false)
	}
}

func (t *txn) releaseDerived(key, parent string) {
	c := t.s.nodes[key]
	if c == nil || c.parent != parent {
		return
	}
	c.parent = ""
	t.touch(c)
	if c.nbValue != nil {
		c.setNBErr("")
		t.setDesired(c, c.nbValue, true, true)
	} else {
		t.setDesired(c, nil, false, false)
		t.wake(c)
	}
}

// wake re-evaluates the parents whose derived values collided with n.
func (t *txn) wake(n *node) {
	if n.tr == nil {
		return
	}
	for _, w := range n.tr.waiters.sorted() {
		n.tr.waiters.del(w)
		if wn := t.s.nodes[w]; wn != nil && wn.desired != nil && wn.invalidErr() != nil {
			t.setDesired(wn, wn.desired, false, true)
		}
	}
}

// setApplied records what the southbound holds for n and keeps the applied
// indexes (used to delete dependants and derived values first) in step.
func (t *txn) setApplied(n *node, v proto.Message, meta any) {
	s := t.s
	for _, d := range n.appliedDeps {
		s.appliedDepIndex.del(d, n.key)
	}
	// A value still in the southbound keeps the parent it was derived from,
	// even if that parent let it go: it must still be deleted before it.
	parent := n.parent
	if parent == "" && v != nil {
		parent = n.appliedParent
	}
	if n.appliedParent != "" {
		if p := s.nodes[n.appliedParent]; p != nil {
			p.appliedKids = delKey(p.appliedKids, n.key)
		}
	}
	n.applied, n.meta, n.appliedDeps, n.appliedParent = v, meta, nil, ""
	if v == nil || n.desc == nil {
		n.meta = nil
		return
	}
	if !n.obtained {
		deps, _ := n.desc.deps(n.key, v) // a panic was logged when it was desired
		for _, d := range deps {
			n.appliedDeps = append(n.appliedDeps, d.Key)
			s.appliedDepIndex.add(d.Key, n.key)
		}
	}
	if parent != "" {
		if p := s.nodes[parent]; p != nil {
			p.appliedKids = addKey(p.appliedKids, n.key)
			n.appliedParent = parent
		}
	}
}
