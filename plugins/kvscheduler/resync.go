package kvscheduler

import (
	"sort"
)

// resync refreshes the applied side of the graph from every descriptor's
// Retrieve and marks all keys dirty, so that reconcile applies exactly the
// difference. Descriptors without Retrieve, or whose Retrieve fails, keep
// the scheduler's own record.
func (t *txn) resync() {
	s := t.s
	order, desired := s.retrievePlan()
	got := make(map[*adapter][]RetrievedValue, len(order))
	s.mu.Unlock()
	for _, d := range order {
		vals, err := d.retrieve(t.ctx, desired[d])
		if err != nil {
			s.log.Error("kvscheduler: retrieve failed, keeping the recorded state", "descriptor", d.name, "error", err)
			continue
		}
		got[d] = vals
	}
	s.mu.Lock()

	seen := make(map[string]RetrievedValue)
	for _, vals := range got {
		for _, r := range vals {
			if r.Value != nil {
				seen[r.Key] = r
			}
		}
	}
	// What the southbound no longer has is gone (VPP restarted, or someone
	// removed it behind our back).
	var lost []string
	for k, n := range s.nodes {
		if n.desc == nil {
			continue
		}
		if _, ok := got[n.desc]; !ok {
			continue
		}
		if _, ok := seen[k]; !ok && n.applied != nil {
			lost = append(lost, k)
		}
	}
	sort.Strings(lost)
	for _, k := range lost {
		n := s.nodes[k]
		n.obtained = false
		t.setApplied(n, nil, nil)
		t.touch(n)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := seen[k]
		if d := s.descFor(k); d == nil || d.name != r.Descriptor {
			continue // another descriptor owns this key by prefix; ignore the stray
		}
		n := s.nodes[k]
		if n == nil {
			n = t.newNode(k)
		}
		n.obtained = r.Origin == FromSB && n.desired == nil && n.nbValue == nil
		t.setApplied(n, r.Value, r.Metadata)
		if n.obtained {
			t.setState(n, StateObtained, "")
		}
		t.touch(n)
	}
	for k := range s.nodes {
		t.dirty[k] = struct{}{}
	}
}
