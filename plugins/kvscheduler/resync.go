package kvscheduler

import (
	"context"
	"sort"
	"time"
)

// A failing Retrieve is tried again, pausing retrieveBackoff, doubling up
// to retrieveBackoffMax. A descriptor that has been retrieved before gives
// up after retrieveAttempts and keeps its record; one never retrieved is
// tried until it works or the scheduler closes, because it has no record
// to keep: acting on that empty record (an agent that just started, whose
// first dump timed out on a starved machine) would create every value
// again over what the southbound already has, recreating interfaces that
// never changed. Such an agent stays unready meanwhile.
var (
	retrieveAttempts   = 5
	retrieveBackoff    = 200 * time.Millisecond
	retrieveBackoffMax = 5 * time.Second
)

// resync refreshes the applied side of the graph from every descriptor's
// Retrieve and marks all keys dirty, so that reconcile applies exactly the
// difference. A failing Retrieve is tried again (see retrieveAttempts); a
// descriptor whose Retrieve still fails, and every descriptor retrieved
// after it (their Retrieve reads its metadata, e.g. interface indexes),
// keep the scheduler's own record.
func (t *txn) resync() {
	s := t.s
	order, desired := s.retrievePlan()
	got := make(map[*adapter][]RetrievedValue, len(order))
	failed := map[string]bool{}
	s.mu.Unlock()
	for _, d := range order {
		if dep := failedDep(d, failed); dep != "" {
			failed[d.name] = true
			s.log.Error("kvscheduler: retrieve skipped, keeping the recorded state", "descriptor", d.name, "after_failed", dep)
			continue
		}
		vals, err := retrieveWithRetry(t.ctx, s, d, desired[d])
		if err != nil && !d.retrieved {
			// Only a closing scheduler or a caller that gave up ends the
			// retries of a never-read descriptor: change nothing.
			t.abandoned = true
			s.log.Warn("kvscheduler: resync abandoned: a descriptor was never retrieved and the caller gave up", "descriptor", d.name, "error", err)
			break
		}
		if err != nil {
			failed[d.name] = true
			s.log.Error("kvscheduler: retrieve failed, keeping the recorded state", "descriptor", d.name, "attempts", retrieveAttempts, "error", err)
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

func failedDep(d *adapter, failed map[string]bool) string {
	for _, name := range d.retrieveAfter {
		if failed[name] {
			return name
		}
	}
	return ""
}

// callerCtxKey carries the committing caller's context inside a transaction
// whose own context is never cancelled (see commit).
type callerCtxKey struct{}

// callerDone is the committing caller's cancellation, nil when unknown.
func callerDone(ctx context.Context) <-chan struct{} {
	if c, ok := ctx.Value(callerCtxKey{}).(context.Context); ok {
		return c.Done()
	}
	return nil
}

func retrieveWithRetry(ctx context.Context, s *Scheduler, d *adapter, desired []KeyValue) ([]RetrievedValue, error) {
	pause := retrieveBackoff
	// Nothing has changed in the southbound while a retrieve is retried, so
	// a caller that gives up (an agent shutting down) ends the retries.
	gaveUp := callerDone(ctx)
	for attempt := 1; ; attempt++ {
		vals, err := d.retrieve(ctx, desired)
		if err == nil {
			d.retrieved = true
			return vals, nil
		}
		if (d.retrieved && attempt >= retrieveAttempts) || ctx.Err() != nil {
			return nil, err
		}
		s.log.Warn("kvscheduler: retrieve failed, trying again", "descriptor", d.name, "attempt", attempt,
			"never_retrieved", !d.retrieved, "retry_in", pause, "error", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-s.closed:
			return nil, err
		case <-gaveUp:
			return nil, err
		case <-time.After(pause):
		}
		pause = min(2*pause, retrieveBackoffMax)
	}
}
