package kvscheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
)

// txn is the state of one running transaction. It lives on the transaction
// goroutine; s.mu is held except while descriptor callbacks run.
type txn struct {
	s         *Scheduler
	ctx       context.Context
	kind      TxnKind
	rec       *TxnRecord
	dirty     map[string]struct{} // keys whose desired or applied side changed
	touched   map[string]struct{} // keys whose status may have changed
	failedNow map[string]struct{} // keys whose operation failed in this txn
	// eq remembers equivalent's answers for this transaction.
	eq map[*node]eqMemo
	// abandoned: a descriptor never read before could not be read, and the
	// scheduler closed or the caller gave up; acting on its empty record
	// would recreate everything, so the txn changes nothing (see resync).
	abandoned bool
}

// eqMemo is one answer of a descriptor's equivalent and the values it was
// given.
type eqMemo struct {
	old, new proto.Message
	eq       bool
}

// equivalent is n.desc.equivalent(applied, desired), asked once per pair of
// values per transaction: planning asks up to three times per value
// (mustRemove twice, then create or update), and an interface's answer
// clones and normalises both values each time (at 10k cross-connects a
// third of an unchanged resync's planning).
func (t *txn) equivalent(n *node) bool {
	if m, ok := t.eq[n]; ok && m.old == n.applied && m.new == n.desired {
		return m.eq
	}
	eq := n.desc.equivalent(n.key, n.applied, n.desired)
	if t.eq == nil {
		t.eq = make(map[*node]eqMemo)
	}
	t.eq[n] = eqMemo{old: n.applied, new: n.desired, eq: eq}
	return eq
}

func (t *txn) markDirty(n *node) {
	t.dirty[n.key] = struct{}{}
	t.touched[n.key] = struct{}{}
}

func (t *txn) touch(n *node) { t.touched[n.key] = struct{}{} }

func (t *txn) setState(n *node, st State, errStr string) {
	if n.state != st || n.errStr() != errStr {
		n.state = st
		n.setErr(errStr)
		n.lastChange = time.Now().UnixNano()
		t.touch(n)
	}
	if st != StatePending && n.tr != nil {
		n.tr.missing = nil
	}
	if st != StateFailed {
		delete(t.s.failed, n.key)
		n.resetRetries()
	}
}

// run executes one transaction; the caller holds the transaction semaphore.
func (s *Scheduler) run(ctx context.Context, in Txn, retryAll bool) (TxnRecord, []ValueStatus, bool) {
	start := time.Now()
	s.mu.Lock()
	s.seq++
	rec := TxnRecord{Seq: s.seq, Kind: in.Kind, Description: in.Description, Start: start,
		Changes: []string{}, Ops: []Op{}, Errors: map[string]string{}}
	t := &txn{s: s, ctx: ctx, kind: in.Kind, rec: &rec, dirty: map[string]struct{}{},
		touched: map[string]struct{}{}, failedNow: map[string]struct{}{}}

	switch in.Kind {
	case TxnChange:
		for _, kv := range in.Values {
			t.claimNB(kv.Key, kv.Value)
			rec.Changes = append(rec.Changes, kv.Key)
		}
	case TxnFullResync:
		want := make(map[string]struct{}, len(in.Values))
		for _, kv := range in.Values {
			if kv.Value != nil {
				want[kv.Key] = struct{}{}
			}
		}
		var gone []string
		for k, n := range s.nodes {
			if _, ok := want[k]; !ok && n.nbValue != nil {
				gone = append(gone, k)
			}
		}
		sort.Strings(gone)
		for _, k := range gone {
			t.claimNB(k, nil)
			rec.Changes = append(rec.Changes, k)
		}
		for _, kv := range in.Values {
			if n := s.nodes[kv.Key]; n == nil || !equalOrNil(n.nbValue, kv.Value) {
				rec.Changes = append(rec.Changes, kv.Key)
			}
			t.claimNB(kv.Key, kv.Value)
		}
		t.resync()
	case TxnDownstreamResync:
		t.resync()
	case TxnRetry:
		now := time.Now()
		for k := range s.failed {
			if n := s.nodes[k]; n != nil && (retryAll || !n.retryAt().After(now)) {
				t.dirty[k] = struct{}{}
			}
		}
	}
	if !t.abandoned {
		t.reconcile()
	}

	// Report, then forget keys nothing refers to any more.
	changed := make([]ValueStatus, 0, len(t.touched))
	failed := 0
	for _, k := range sortedKeys(t.touched) {
		n := s.nodes[k]
		if n == nil {
			continue
		}
		if n.idle() {
			if n.state != StateNonexistent && n.state != "" {
				t.setState(n, StateRemoved, "")
				changed = append(changed, n.status())
			}
			delete(s.nodes, k)
			delete(s.failed, k)
			continue
		}
		if n.state == StateFailed || n.state == StateInvalid {
			rec.Errors[k] = n.errStr()
			failed++
		}
		n.tidy()
		changed = append(changed, n.status())
	}
	if len(rec.Errors) == 0 {
		rec.Errors = nil
	}
	rec.Duration = time.Since(start)
	s.history = append(s.history, packTxn(rec))
	if over := len(s.history) - s.opts.HistorySize; over > 0 {
		s.history = append(s.history[:0:0], s.history[over:]...)
	}
	s.mu.Unlock()
	s.log.Info("kvscheduler: transaction done", "seq", rec.Seq, "kind", rec.Kind, "description", rec.Description,
		"changes", len(rec.Changes), "ops", len(rec.Ops), "errors", failed, "duration", rec.Duration)
	return rec, changed, t.abandoned
}

// depOK reports whether key satisfies a dependency right now.
func (t *txn) depOK(key string) bool {
	n := t.s.nodes[key]
	return n != nil && (n.obtained || (n.applied != nil && n.desired != nil && n.invalidErr() == nil))
}

// parentReady reports whether a derived value can be created or updated:
// its parent is applied with its current desired value.
func (t *txn) parentReady(key string) bool {
	if !t.depOK(key) {
		return false
	}
	p := t.s.nodes[key]
	return p.obtained || t.equivalent(p)
}

// parentKeeps reports whether an applied derived value may stay: its parent
// is applied, or desired, valid and creatable now. The second case matters
// after an agent restart: a parent whose descriptor has no Retrieve (a
// CrossConnect) is not applied yet, but its derived interfaces, found in VPP,
// must not be deleted only to be created again.
func (t *txn) parentKeeps(key string) bool {
	if t.depOK(key) {
		return true
	}
	p := t.s.nodes[key]
	return p != nil && p.desired != nil && p.invalidErr() == nil && p.applied == nil &&
		p.desc != nil && p.desc.retrieve == nil && len(t.missingOf(p, false)) == 0
}

// missingOf lists what n waits for. Before creating or updating, the parent
// must be up to date (strict); an applied value only has to go when its
// parent is gone.
func (t *txn) missingOf(n *node, strict bool) []string {
	var miss []string
	if n.parent != "" && ((strict && !t.parentReady(n.parent)) || (!strict && !t.parentKeeps(n.parent))) {
		miss = append(miss, n.parent)
	}
	for _, d := range n.deps {
		if !t.depOK(d.Key) {
			miss = append(miss, d.Key)
		}
	}
	return miss
}

// mustRemove reports whether n's applied value has to leave the southbound
// before anything is created: no longer desired, invalid, dependencies gone,
// or changed in a way that needs delete + create.
func (t *txn) mustRemove(n *node) bool {
	if n.applied == nil || n.obtained {
		return false
	}
	if n.desired == nil || n.invalidErr() != nil || len(t.missingOf(n, false)) > 0 {
		return true
	}
	if !t.equivalent(n) && n.desc.recreate(n.key, n.applied, n.desired, n.meta) {
		n.recreating = true
		return true
	}
	return false
}

// reconcile plans and executes: deletes in reverse dependency order, then
// creates and updates in dependency order, wave by wave.
func (t *txn) reconcile() {
	s := t.s
	del := make(map[string]struct{})
	for _, k := range sortedKeys(t.dirty) {
		if n := s.nodes[k]; n != nil && t.mustRemove(n) {
			t.cascade(k, del)
		}
	}
	t.deleteWaves(del)

	cand := make(map[string]struct{}, len(t.dirty)+len(del))
	for k := range t.dirty {
		cand[k] = struct{}{}
	}
	for k := range del {
		cand[k] = struct{}{}
	}
	waiting := make(map[string][]string)
	var woken []*node
	for len(cand) > 0 {
		// A candidate reached through a dependency may still hold an old
		// value that has to go first (a delete that failed earlier, a
		// change that needs re-creating): delete it and what needs it
		// properly, never in place.
		var more map[string]struct{}
		for k := range cand {
			if n := s.nodes[k]; n != nil && !t.failedHere(k) && t.mustRemove(n) {
				if more == nil {
					more = make(map[string]struct{})
				}
				t.cascade(k, more)
			}
		}
		t.deleteWaves(more)
		for k := range more {
			cand[k] = struct{}{}
		}
		var ops []*op
		for _, k := range sortedKeys(cand) {
			n := s.nodes[k]
			if n == nil || n.desired == nil || n.obtained {
				delete(waiting, k)
				continue
			}
			if t.failedHere(k) {
				delete(waiting, k)
				continue
			}
			if n.invalidErr() != nil {
				delete(waiting, k)
				t.setState(n, invalidState(n.invalidErr()), n.invalidErr().Error())
				continue
			}
			if miss := t.missingOf(n, true); len(miss) > 0 {
				waiting[k] = miss
				continue
			}
			delete(waiting, k)
			switch {
			case n.applied == nil:
				kind := OpCreate
				if n.recreating {
					kind = OpRecreate
				}
				ops = append(ops, &op{n: n, kind: kind, new: n.desired})
			case !t.equivalent(n):
				kind := OpUpdate
				if n.desc.update == nil || n.desc.recreate(k, n.applied, n.desired, n.meta) {
					kind = OpRecreate // not planned as a delete: do both halves here
				}
				ops = append(ops, &op{n: n, kind: kind, old: n.applied, new: n.desired, meta: n.meta})
			default:
				if n.state != StateConfigured {
					// Usable again without an operation (e.g. re-desired
					// while a failed delete left it in place): what waits
					// for it can go now.
					woken = append(woken, n)
				}
				t.shareApplied(n)
				t.setState(n, StateConfigured, "")
			}
		}
		cand = make(map[string]struct{})
		for _, n := range woken {
			for d := range s.depIndex.of(n.key).all() {
				cand[d] = struct{}{}
			}
			for _, c := range n.kids {
				cand[c] = struct{}{}
			}
		}
		woken = woken[:0]
		if len(ops) == 0 && len(cand) == 0 {
			break
		}
		t.execute(ops)
		for _, o := range ops {
			if o.err != nil {
				continue
			}
			for d := range s.depIndex.of(o.n.key).all() {
				cand[d] = struct{}{}
			}
			for _, c := range o.n.kids {
				cand[c] = struct{}{}
			}
		}
	}
	for k, miss := range waiting {
		n := s.nodes[k]
		sort.Strings(miss)
		t.setState(n, StatePending, "")
		if !equalStrings(n.missingKeys(), miss) {
			n.trouble().missing = miss
			t.touch(n)
		}
	}
	for k := range t.dirty {
		if n := s.nodes[k]; n != nil {
			n.recreating = false
		}
	}
}

// shareApplied lets an applied value that equals the desired one (found by
// a resync, typically) point at the desired value instead of keeping its own
// copy: at 10k cross-connects the retrieved copies are a large share of the
// scheduler's memory. Only exact equality qualifies: a merely equivalent
// value still says what the southbound holds.
func (t *txn) shareApplied(n *node) {
	if n.applied == n.desired || n.obtained {
		return
	}
	if n.desc.plainEqual || proto.Equal(n.applied, n.desired) {
		n.applied = n.desired
	}
}

func (t *txn) failedHere(k string) bool {
	_, bad := t.failedNow[k]
	return bad
}

// cascade adds key to del with everything applied that needs it or derives
// from it: those must leave the southbound first.
func (t *txn) cascade(k string, del map[string]struct{}) {
	if _, ok := del[k]; ok {
		return
	}
	s := t.s
	n := s.nodes[k]
	if n == nil || n.applied == nil || n.obtained {
		return
	}
	del[k] = struct{}{}
	for d := range s.depIndex.of(k).all() {
		t.cascade(d, del)
	}
	for d := range s.appliedDepIndex.of(k).all() {
		t.cascade(d, del)
	}
	for _, c := range n.appliedKids {
		t.cascade(c, del)
	}
}

// deleteWaves deletes del so that every value goes after the values that
// depend on it or derive from it; each wave runs in parallel.
func (t *txn) deleteWaves(del map[string]struct{}) {
	if len(del) == 0 {
		return
	}
	s := t.s
	blockers := make(map[string]int, len(del))
	after := make(map[string][]string)
	for k := range del {
		n := s.nodes[k]
		note := func(x string) {
			if _, ok := del[x]; ok && x != k {
				blockers[k]++
				after[x] = append(after[x], k)
			}
		}
		// Only what is applied constrains the order: the southbound cares
		// about the values it holds, not about the ones wanted next.
		for x := range s.appliedDepIndex.of(k).all() {
			note(x)
		}
		for _, x := range n.appliedKids {
			note(x)
		}
	}
	left := make(map[string]struct{}, len(del))
	var ready []string
	for k := range del {
		left[k] = struct{}{}
		if blockers[k] == 0 {
			ready = append(ready, k)
		}
	}
	// stuck holds keys that must not be deleted yet because something that
	// needs them failed to go: removing them would break it in the
	// southbound. They are FAILED and retried with it.
	stuck := make(map[string]string)
	for len(left) > 0 {
		if len(ready) == 0 {
			// A dependency cycle among applied values: break it at the
			// smallest key so the result stays deterministic.
			ready = sortedKeys(left)[:1]
		}
		sort.Strings(ready)
		ops := make([]*op, 0, len(ready))
		for _, k := range ready {
			n := s.nodes[k]
			delete(left, k)
			if by, ok := stuck[k]; ok {
				t.fail(n, OpDelete, fmt.Errorf("delete %s: waits for %s, which could not be deleted", k, by))
				continue
			}
			ops = append(ops, &op{n: n, kind: OpDelete, old: n.applied, meta: n.meta})
		}
		t.execute(ops)
		var next []string
		for _, k := range ready {
			_, failed := t.failedNow[k]
			for _, a := range after[k] {
				if _, ok := stuck[a]; failed && !ok {
					stuck[a] = k
				}
				blockers[a]--
				if _, ok := left[a]; ok && blockers[a] == 0 {
					next = append(next, a)
				}
			}
		}
		ready = next
	}
}

// op is one planned descriptor call and its outcome.
type op struct {
	n        *node
	kind     OpKind
	old, new proto.Message
	meta     any

	newMeta any
	deleted bool // the delete half of an in-place recreate succeeded
	err     error
	dur     time.Duration
}

// execute runs ops (independent of each other) with bounded parallelism,
// without holding s.mu, then applies their outcomes in key order.
func (t *txn) execute(ops []*op) {
	s := t.s
	if len(ops) == 0 {
		return
	}
	s.mu.Unlock()
	if len(ops) == 1 || s.opts.Parallelism == 1 {
		for _, o := range ops {
			t.call(o)
		}
	} else {
		// A fixed pool pulling the next op: no goroutine and semaphore
		// hand-off per op, and a worker that finishes starts the next call
		// at once, so the VPP connection always has Parallelism requests
		// in flight.
		var wg sync.WaitGroup
		var next atomic.Int64
		for range min(s.opts.Parallelism, len(ops)) {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(len(ops)); i = next.Add(1) - 1 {
					t.call(ops[i])
				}
			})
		}
		wg.Wait()
	}
	s.mu.Lock()
	// One growth per wave, not a doubling every few thousand ops.
	t.rec.Ops = slices.Grow(t.rec.Ops, len(ops))
	for _, o := range ops {
		t.apply(o)
	}
}

// call runs the descriptor callbacks of o; it touches nothing shared.
func (t *txn) call(o *op) {
	d, key := o.n.desc, o.n.key
	start := time.Now()
	switch o.kind {
	case OpCreate:
		o.newMeta, o.err = d.create(t.ctx, key, o.new)
	case OpUpdate:
		o.newMeta, o.err = d.update(t.ctx, key, o.old, o.new, o.meta)
	case OpDelete:
		o.err = d.delete(t.ctx, key, o.old, o.meta)
	case OpRecreate:
		if o.old != nil {
			if o.err = d.delete(t.ctx, key, o.old, o.meta); o.err != nil {
				break
			}
			o.deleted = true
		}
		o.newMeta, o.err = d.create(t.ctx, key, o.new)
	}
	o.dur = time.Since(start)
}

func (t *txn) apply(o *op) {
	n := o.n
	prev := n.state
	if prev == "" {
		prev = StateNonexistent
	}
	if o.deleted {
		t.setApplied(n, nil, nil)
	}
	switch {
	case o.err != nil:
		t.fail(n, o.kind, o.err)
	case o.kind == OpDelete:
		t.setApplied(n, nil, nil)
		switch {
		case n.desired == nil:
			t.setState(n, StateRemoved, "")
		case n.invalidErr() != nil:
			t.setState(n, invalidState(n.invalidErr()), n.invalidErr().Error())
		default:
			t.setState(n, StatePending, "") // until the create phase decides
		}
	default:
		t.setApplied(n, o.new, o.newMeta)
		n.recreating = false
		t.setState(n, StateConfigured, "")
	}
	t.touch(n)
	rop := Op{Key: n.key, Op: o.kind, Derived: n.parent != "", PrevState: prev, NewState: n.state,
		Retry: t.kind == TxnRetry, Duration: o.dur}
	if o.err != nil {
		rop.Error = o.err.Error()
	}
	t.rec.Ops = append(t.rec.Ops, rop)
	if o.err == nil && t.s.debugEnabled() {
		t.s.log.Debug("kvscheduler: operation done", "seq", t.rec.Seq, "op", o.kind, "key", n.key, "state", n.state, "duration", o.dur)
	}
}

// fail marks n FAILED and schedules its retry with exponential backoff.
func (t *txn) fail(n *node, kind OpKind, err error) {
	s := t.s
	tr := n.trouble()
	tr.retries++
	delay := s.opts.RetryInitial
	for i := 1; i < tr.retries && delay < s.opts.RetryMax; i++ {
		delay *= 2
	}
	if delay > s.opts.RetryMax {
		delay = s.opts.RetryMax
	}
	tr.nextRetry = time.Now().Add(delay)
	s.failed[n.key] = struct{}{}
	t.failedNow[n.key] = struct{}{}
	t.setState(n, StateFailed, err.Error())
	s.log.Warn("kvscheduler: operation failed", "seq", t.rec.Seq, "op", kind, "key", n.key,
		"descriptor", n.desc.name, "error", err, "retries", tr.retries, "next_retry_in", delay)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// invalidState is INVALID for a value Validate rejected, FAILED for one
// whose descriptor panicked on it: that is a bug in the agent, not in the
// value, and must not read as the operator's mistake.
func invalidState(err error) State {
	var pe *PanicError
	if errors.As(err, &pe) {
		return StateFailed
	}
	return StateInvalid
}
