package kvscheduler

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

var (
	randSeed  = flag.Int64("seed", 0, "run the randomized scheduler test with this seed only")
	randSteps = flag.Int("rand-steps", 250, "transactions per seed in the randomized scheduler test")
	randTrace = flag.Bool("rand-trace", false, "log every transaction of the randomized scheduler test")
)

// refModel is the simple truth the scheduler must converge to: northbound
// values, their derived values, and the least fixpoint of "present in the
// southbound": valid, every dependency present (or external), parent present.
type refModel struct {
	nb       map[string]*structpb.Struct
	external map[string]bool
}

// expected returns key -> value that the southbound must hold, and the
// desired graph (key -> everything it needs) used to bound which keys a
// transaction may touch.
func (m *refModel) expected() (map[string]*structpb.Struct, map[string][]string) {
	desired := map[string]*structpb.Struct{}
	for k, v := range m.nb {
		if v.GetFields()["invalid"].GetBoolValue() {
			continue
		}
		desired[k] = v
		for kk, kv := range v.GetFields()["kids"].GetStructValue().GetFields() {
			kid := proto.Clone(kv.GetStructValue()).(*structpb.Struct)
			kid.Fields["_parent"] = structpb.NewStringValue(k)
			desired[kk] = kid
		}
	}
	graph := map[string][]string{}
	for k, v := range desired {
		graph[k] = needs(v)
	}
	present := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for k := range desired {
			if present[k] {
				continue
			}
			ok := true
			for _, n := range graph[k] {
				if !present[n] && !m.external[n] {
					ok = false
					break
				}
			}
			if ok {
				present[k], changed = true, true
			}
		}
	}
	out := map[string]*structpb.Struct{}
	for k := range present {
		out[k] = desired[k]
	}
	return out, graph
}

type randGen struct {
	r    *rand.Rand
	keys []string
}

func (g *randGen) value(key string, xcIndex int) *structpb.Struct {
	r := g.r
	var deps []string
	for i, n := 0, r.Intn(3); i < n; i++ {
		if r.Intn(8) == 0 {
			deps = append(deps, "/if/ext")
		} else if d := g.keys[r.Intn(len(g.keys))]; d != key {
			deps = append(deps, d)
		}
	}
	sort.Strings(deps)
	v := val(fmt.Sprintf("p%d", r.Intn(3)), dedup(deps)...)
	withClass(v, fmt.Sprintf("c%d", r.Intn(2)))
	if xcIndex >= 0 && r.Intn(2) == 0 {
		kids := map[string]*structpb.Struct{}
		for j, n := 0, 1+r.Intn(2); j < n; j++ {
			var kd []string
			if r.Intn(3) == 0 {
				kd = append(kd, g.keys[r.Intn(len(g.keys))])
			}
			kids[fmt.Sprintf("/d/%d-%d", xcIndex, r.Intn(3))] = withClass(val(fmt.Sprintf("k%d", r.Intn(2)), kd...), fmt.Sprintf("c%d", r.Intn(2)))
		}
		withKids(v, kids)
	}
	if r.Intn(25) == 0 {
		invalid(v)
	}
	return v
}

func dedup(in []string) []string {
	var out []string
	for i, s := range in {
		if i == 0 || in[i-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// closure returns set plus every key that (transitively) needs one of them.
func closure(set map[string]bool, graphs ...map[string][]string) map[string]bool {
	rev := map[string][]string{}
	for _, g := range graphs {
		for k, ns := range g {
			for _, n := range ns {
				rev[n] = append(rev[n], k)
			}
		}
	}
	out := map[string]bool{}
	var visit func(k string)
	visit = func(k string) {
		if out[k] {
			return
		}
		out[k] = true
		for _, d := range rev[k] {
			visit(d)
		}
	}
	for k := range set {
		visit(k)
	}
	return out
}

func TestRandomizedConvergence(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5, 6, 7, 8, 42, 1234}
	if *randSeed != 0 {
		seeds = []int64{*randSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runRandomized(t, seed, *randSteps) })
	}
}

func runRandomized(t *testing.T, seed int64, steps int) {
	ctx := context.Background()
	s, f := newTestScheduler(t, Options{Parallelism: 1 + int(seed%4)})
	f.external["/if/ext"] = val("ext")
	m := &refModel{nb: map[string]*structpb.Struct{}, external: map[string]bool{"/if/ext": true}}
	g := &randGen{r: rand.New(rand.NewSource(seed))}
	for i := 0; i < 5; i++ {
		g.keys = append(g.keys, fmt.Sprintf("/if/%d", i), fmt.Sprintf("/xc/%d", i))
	}
	if _, err := s.Commit(ctx, Txn{Kind: TxnDownstreamResync}); err != nil {
		t.Fatal(err)
	}

	check := func(step int, what string) {
		t.Helper()
		want, _ := m.expected()
		got := f.snapshot()
		for k, v := range want {
			if !proto.Equal(got[k], v) {
				t.Fatalf("seed %d step %d (%s): %s in southbound %v, want %v", seed, step, what, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Fatalf("seed %d step %d (%s): %s in southbound, not expected", seed, step, what, k)
			}
		}
		f.checkViolations(t)
		for _, st := range s.Status() {
			if st.State == StateFailed {
				t.Fatalf("seed %d step %d (%s): %s still FAILED: %s", seed, step, what, st.Key, st.Error)
			}
		}
	}

	var failing []string // keys the southbound refuses, kept for a few transactions
	for step := 0; step < steps; step++ {
		before, beforeGraph := m.expected()
		f.resetLog()
		r := g.r.Intn(20)
		switch {
		case len(failing) > 0 && r == 1:
			r = 3 // the no-op resync check needs a converged southbound
		case r == 0: // the southbound loses everything, then a downstream resync
			f.wipe()
			rec, err := s.Commit(ctx, Txn{Kind: TxnDownstreamResync})
			if err != nil {
				t.Fatal(err)
			}
			if *randTrace {
				t.Logf("step %d wipe+resync ops %v", step, opKeys(rec))
			}
			if len(failing) == 0 {
				check(step, "wipe+resync")
			}
			continue
		case r == 1: // a resync of an unchanged southbound does nothing
			rec, _ := s.Commit(ctx, Txn{Kind: TxnDownstreamResync})
			if len(rec.Ops) != 0 {
				t.Fatalf("seed %d step %d: resync of a converged state: ops %v", seed, step, opKeys(rec))
			}
			continue
		}
		if g.r.Intn(5) == 0 {
			for i, n := 0, 1+g.r.Intn(3); i < n; i++ {
				k := g.keys[g.r.Intn(len(g.keys))]
				if g.r.Intn(3) == 0 {
					k = fmt.Sprintf("/d/%d-%d", g.r.Intn(5), g.r.Intn(3))
				}
				failing = append(failing, k)
				f.setFail(k, "injected at step "+fmt.Sprint(step))
			}
		}
		var kvs []KeyValue
		for i, n := 0, 1+g.r.Intn(4); i < n; i++ {
			idx := g.r.Intn(len(g.keys))
			k := g.keys[idx]
			if g.r.Intn(4) == 0 {
				kvs = append(kvs, del(k))
				delete(m.nb, k)
				continue
			}
			xc := -1
			if idx%2 == 1 {
				xc = idx / 2
			}
			v := g.value(k, xc)
			kvs = append(kvs, put(k, v))
			m.nb[k] = v
		}
		txn := Txn{Kind: TxnChange, Values: kvs}
		if r == 2 { // the same change as a full resync of the whole desired state
			txn = Txn{Kind: TxnFullResync}
			for k, v := range m.nb {
				txn.Values = append(txn.Values, put(k, v))
			}
		}
		rec, err := s.Commit(ctx, txn)
		if err != nil {
			t.Fatal(err)
		}
		if *randTrace {
			for _, kv := range kvs {
				t.Logf("step %d put %s %v", step, kv.Key, kv.Value)
			}
			t.Logf("failing %v ops %v", failing, opKeys(rec))
		}
		f.checkViolations(t)
		if len(failing) > 0 {
			if g.r.Intn(3) > 0 {
				continue // the southbound stays broken for another transaction
			}
			for _, k := range failing {
				f.setFail(k, "")
			}
			rec, err := s.commit(ctx, Txn{Kind: TxnRetry}, true)
			if err != nil {
				t.Fatal(err)
			}
			if *randTrace {
				t.Logf("step %d retry ops %v", step, opKeys(rec))
			}
			check(step, fmt.Sprintf("retry after failing %v", failing))
			failing = nil
			continue
		}
		check(step, "change")

		// Only keys whose value changed, or that need something re-created,
		// may have been touched.
		after, afterGraph := m.expected()
		changed := map[string]bool{}
		recreated := map[string]bool{}
		for _, set := range []map[string]*structpb.Struct{before, after} {
			for k := range set {
				b, a := before[k], after[k]
				switch {
				case !equalOrNil(b, a) && (b == nil || a == nil || recreateNeeded(b, a)):
					changed[k], recreated[k] = true, true
				case !equalOrNil(b, a):
					changed[k] = true
				}
			}
		}
		allowed := closure(recreated, beforeGraph, afterGraph)
		for k := range changed {
			allowed[k] = true
		}
		for _, o := range f.opLog() {
			if !allowed[o.key] {
				t.Fatalf("seed %d step %d: %s %s, but neither it nor anything it needs changed (txn %v)", seed, step, o.op, o.key, kvs)
			}
		}
	}
}

func recreateNeeded(old, new *structpb.Struct) bool {
	return old.GetFields()["class"].GetStringValue() != new.GetFields()["class"].GetStringValue() ||
		!equalStrings(needs(old), needs(new))
}
