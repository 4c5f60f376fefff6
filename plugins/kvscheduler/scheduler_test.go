package kvscheduler

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

func TestCreateOrderByDependency(t *testing.T) {
	s, f := newTestScheduler(t, Options{Parallelism: 4})
	rec := commit(t, s,
		put("/xc/ab", val("x", "/if/a", "/if/b")),
		put("/if/b", val("b")),
		put("/if/a", val("a")),
	)
	ops := opKeys(rec)
	if len(ops) != 3 || indexOf(ops, "CREATE /xc/ab") != 2 {
		t.Fatalf("ops %v: want both interfaces created before the xconnect", ops)
	}
	for _, k := range []string{"/if/a", "/if/b", "/xc/ab"} {
		mustState(t, s, k, StateConfigured)
	}
	if st, _ := s.StatusOf("/if/a"); st.Metadata == nil || st.Descriptor != "if" {
		t.Fatalf("status %+v: want metadata and descriptor", st)
	}
	f.checkViolations(t)
	if len(rec.Changes) != 3 || rec.Errors != nil {
		t.Fatalf("record %+v", rec)
	}
}

func TestPendingResolvedSameAndLaterTxn(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	rec := commit(t, s, put("/xc/ab", val("x", "/if/a", "/if/b")))
	if len(rec.Ops) != 0 {
		t.Fatalf("ops %v for a value with missing deps", opKeys(rec))
	}
	st := mustState(t, s, "/xc/ab", StatePending)
	if strings.Join(st.Missing, ",") != "/if/a,/if/b" {
		t.Fatalf("missing %v", st.Missing)
	}
	commit(t, s, put("/if/a", val("a")))
	st = mustState(t, s, "/xc/ab", StatePending)
	if strings.Join(st.Missing, ",") != "/if/b" {
		t.Fatalf("missing %v", st.Missing)
	}
	rec = commit(t, s, put("/if/b", val("b")))
	if got := strings.Join(opKeys(rec), ";"); got != "CREATE /if/b;CREATE /xc/ab" {
		t.Fatalf("ops %s", got)
	}
	mustState(t, s, "/xc/ab", StateConfigured)
	f.checkViolations(t)
}

func TestDependencyRemovalTurnsDependantsPending(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	commit(t, s, put("/if/a", val("a")), put("/if/b", val("b")), put("/xc/ab", val("x", "/if/a", "/if/b")),
		put("/xc/b", val("y", "/if/b")))
	f.resetLog()
	rec := commit(t, s, del("/if/a"))
	if got := strings.Join(opKeys(rec), ";"); got != "DELETE /xc/ab;DELETE /if/a" {
		t.Fatalf("ops %s: want the dependant deleted first", got)
	}
	st := mustState(t, s, "/xc/ab", StatePending)
	if len(st.Missing) != 1 || st.Missing[0] != "/if/a" || st.Value == nil {
		t.Fatalf("status %+v: want pending on /if/a with its desired value kept", st)
	}
	mustState(t, s, "/xc/b", StateConfigured) // unrelated to /if/a
	if _, ok := s.StatusOf("/if/a"); ok {
		t.Fatal("/if/a still reported after its deletion")
	}
	rec = commit(t, s, put("/if/a", val("a")))
	if got := strings.Join(opKeys(rec), ";"); got != "CREATE /if/a;CREATE /xc/ab" {
		t.Fatalf("ops %s", got)
	}
	f.checkViolations(t)
}

func TestDerivedValues(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	parent := withKids(val("p"), map[string]*structpb.Struct{"/d/1": val("one"), "/d/2": val("two")})
	rec := commit(t, s, put("/xc/p", parent))
	ops := opKeys(rec)
	if len(ops) != 3 || ops[0] != "CREATE /xc/p" {
		t.Fatalf("ops %v: want the parent first", ops)
	}
	st := mustState(t, s, "/d/1", StateConfigured)
	if !st.Derived || st.Parent != "/xc/p" {
		t.Fatalf("status %+v: want derived from /xc/p", st)
	}
	// Change one derived value, keep one, add one, drop none: only the
	// changed and the new one get operations.
	parent = withKids(val("p2"), map[string]*structpb.Struct{"/d/1": val("one"), "/d/2": val("TWO"), "/d/3": val("three")})
	rec = commit(t, s, put("/xc/p", parent))
	if got := strings.Join(opKeys(rec), ";"); got != "UPDATE /xc/p;UPDATE /d/2;CREATE /d/3" {
		t.Fatalf("ops %s", got)
	}
	// Drop a derived value.
	parent = withKids(val("p2"), map[string]*structpb.Struct{"/d/1": val("one"), "/d/2": val("TWO")})
	rec = commit(t, s, put("/xc/p", parent))
	if got := strings.Join(opKeys(rec), ";"); got != "DELETE /d/3;UPDATE /xc/p" {
		t.Fatalf("ops %s", got)
	}
	rec = commit(t, s, del("/xc/p"))
	ops = opKeys(rec)
	if len(ops) != 3 || ops[2] != "DELETE /xc/p" {
		t.Fatalf("ops %v: want derived values deleted before the parent", ops)
	}
	if len(s.Status()) != 0 {
		t.Fatalf("status after deleting everything: %+v", s.Status())
	}
	f.checkViolations(t)
}

func TestUpdateVersusRecreate(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	commit(t, s, put("/if/a", withClass(val("a"), "memif")), put("/xc/a", val("x", "/if/a")))
	rec := commit(t, s, put("/if/a", withClass(val("a2"), "memif")))
	if got := strings.Join(opKeys(rec), ";"); got != "UPDATE /if/a" {
		t.Fatalf("in-place change: ops %s", got)
	}
	rec = commit(t, s, put("/if/a", withClass(val("a2"), "memif")))
	if len(rec.Ops) != 0 {
		t.Fatalf("equal value: ops %v", opKeys(rec))
	}
	rec = commit(t, s, put("/if/a", withClass(val("a2"), "vhost")))
	if got := strings.Join(opKeys(rec), ";"); got != "DELETE /xc/a;DELETE /if/a;RECREATE /if/a;CREATE /xc/a" {
		t.Fatalf("recreate: ops %s", got)
	}
	mustState(t, s, "/xc/a", StateConfigured)
	f.checkViolations(t)
}

func TestInvalidIsolation(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	bad := withKids(invalid(val("bad")), map[string]*structpb.Struct{"/d/bad": val("k")})
	rec := commit(t, s, put("/if/a", val("a")), put("/if/bad", bad), put("/if/c", val("c")), put("/xc/bad", val("x", "/if/bad")))
	mustState(t, s, "/if/a", StateConfigured)
	mustState(t, s, "/if/c", StateConfigured)
	st := mustState(t, s, "/if/bad", StateInvalid)
	if !strings.Contains(st.Error, "marked invalid") || rec.Errors["/if/bad"] == "" {
		t.Fatalf("status %+v, record errors %v", st, rec.Errors)
	}
	mustState(t, s, "/xc/bad", StatePending)
	if _, ok := s.StatusOf("/d/bad"); ok {
		t.Fatal("an invalid value's derived value exists")
	}
	// Never retried.
	rec, err := s.commit(context.Background(), Txn{Kind: TxnRetry}, true)
	if err != nil || len(rec.Ops) != 0 {
		t.Fatalf("retry of an invalid value: %v %v", opKeys(rec), err)
	}
	// Fixing it creates it and its dependant.
	rec = commit(t, s, put("/if/bad", val("fixed")))
	if got := strings.Join(opKeys(rec), ";"); got != "CREATE /if/bad;CREATE /xc/bad" {
		t.Fatalf("ops %s", got)
	}
	f.checkViolations(t)
}

func TestRetryWithBackoffUntilSuccess(t *testing.T) {
	s, f := newTestScheduler(t, Options{RetryInitial: time.Millisecond, RetryMax: 4 * time.Millisecond})
	events := make(chan ValueStatus, 1000)
	cancel := s.Watch(func(ch []ValueStatus) {
		for _, st := range ch {
			events <- st
		}
	})
	defer cancel()
	f.setFail("/if/a", "vpp said -1")
	rec := commit(t, s, put("/if/a", val("a")), put("/xc/a", val("x", "/if/a")), put("/if/b", val("b")))
	st := mustState(t, s, "/if/a", StateFailed)
	if !strings.Contains(st.Error, "vpp said -1") || st.Retries != 1 {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(rec.Errors["/if/a"], "vpp said -1") {
		t.Fatalf("record errors %v", rec.Errors)
	}
	mustState(t, s, "/xc/a", StatePending)
	mustState(t, s, "/if/b", StateConfigured)

	// Let it fail a few more times, then heal the southbound.
	deadline := time.After(20 * time.Second)
	for retries := 0; retries < 3; {
		select {
		case ev := <-events:
			if ev.Key == "/if/a" && ev.State == StateFailed && ev.Retries > 1 {
				retries++
			}
		case <-deadline:
			t.Fatal("no retries seen")
		}
	}
	f.setFail("/if/a", "")
	for done := false; !done; {
		select {
		case ev := <-events:
			done = ev.Key == "/xc/a" && ev.State == StateConfigured
		case <-deadline:
			t.Fatal("retry never succeeded")
		}
	}
	mustState(t, s, "/if/a", StateConfigured)
	var retryOps int
	for _, r := range s.History(0) {
		for _, o := range r.Ops {
			if o.Retry && r.Kind == TxnRetry {
				retryOps++
			}
		}
	}
	if retryOps < 3 {
		t.Fatalf("%d retry ops in history", retryOps)
	}
	f.checkViolations(t)
}

func TestFailedValueNoLongerDesiredStopsRetrying(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	f.setFail("/if/a", "boom")
	commit(t, s, put("/if/a", val("a")))
	mustState(t, s, "/if/a", StateFailed)
	commit(t, s, del("/if/a"))
	if _, ok := s.StatusOf("/if/a"); ok {
		t.Fatal("a failed create that is no longer desired is still reported")
	}
	rec, _ := s.commit(context.Background(), Txn{Kind: TxnRetry}, true)
	if len(rec.Ops) != 0 {
		t.Fatalf("retry ops %v", opKeys(rec))
	}
}

func configureLab(t *testing.T, s *Scheduler) []KeyValue {
	kvs := []KeyValue{
		put("/if/a", val("a")), put("/if/b", val("b")),
		put("/xc/ab", withKids(val("x", "/if/a", "/if/b"), map[string]*structpb.Struct{"/d/ab": val("k", "/if/b")})),
	}
	commit(t, s, kvs...)
	return kvs
}

func TestResyncUnchangedIsNoOp(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	kvs := configureLab(t, s)
	before, _ := s.StatusOf("/if/a")
	for _, kind := range []TxnKind{TxnDownstreamResync, TxnFullResync} {
		rec, err := s.Commit(context.Background(), Txn{Kind: kind, Values: kvs})
		if err != nil || len(rec.Ops) != 0 {
			t.Fatalf("%s: ops %v, err %v", kind, opKeys(rec), err)
		}
	}
	after := mustState(t, s, "/if/a", StateConfigured)
	if after.Metadata != before.Metadata {
		t.Fatalf("metadata %v -> %v", before.Metadata, after.Metadata)
	}
	f.checkViolations(t)
}

func TestResyncAfterSouthboundLostEverything(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	configureLab(t, s)
	f.wipe()
	rec, err := s.Commit(context.Background(), Txn{Kind: TxnDownstreamResync})
	if err != nil {
		t.Fatal(err)
	}
	ops := opKeys(rec)
	if len(ops) != 4 || indexOf(ops, "CREATE /xc/ab") > indexOf(ops, "CREATE /d/ab") || indexOf(ops, "CREATE /if/b") > indexOf(ops, "CREATE /xc/ab") {
		t.Fatalf("ops %v: want all four re-created in dependency order", ops)
	}
	if len(f.snapshot()) != 4 {
		t.Fatalf("southbound %v", f.snapshot())
	}
	f.checkViolations(t)
}

func TestResyncExtraAndObtained(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	f.items["/if/stale"] = val("left over")
	f.meta["/if/stale"] = 77
	f.external["/if/local0"] = val("local0")
	rec, err := s.Commit(context.Background(), Txn{Kind: TxnFullResync, Values: []KeyValue{
		put("/xc/l", val("x", "/if/local0")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(opKeys(rec), ";"); got != "DELETE /if/stale;CREATE /xc/l" {
		t.Fatalf("ops %s", got)
	}
	mustState(t, s, "/if/local0", StateObtained)
	mustState(t, s, "/xc/l", StateConfigured)
	// An obtained value is never touched, even by a full resync without it.
	rec, _ = s.Commit(context.Background(), Txn{Kind: TxnFullResync})
	if got := strings.Join(opKeys(rec), ";"); got != "DELETE /xc/l" {
		t.Fatalf("ops %s", got)
	}
	if _, ok := f.external["/if/local0"]; !ok {
		t.Fatal("obtained value removed")
	}
	f.checkViolations(t)
}

func TestDescriptorWithoutRetrieveTrustsRecord(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	f := newFakeSB()
	if err := RegisterDescriptor(s, fakeDescriptor(f, "if", "/if/", false)); err != nil {
		t.Fatal(err)
	}
	commit(t, s, put("/if/a", val("a")))
	f.wipe()
	rec, _ := s.Commit(context.Background(), Txn{Kind: TxnDownstreamResync})
	if len(rec.Ops) != 0 {
		t.Fatalf("ops %v", opKeys(rec))
	}
}

func TestDerivedKeyCollision(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	commit(t, s, put("/xc/p1", withKids(val("p1"), map[string]*structpb.Struct{"/d/x": val("one")})))
	rec := commit(t, s, put("/xc/p2", withKids(val("p2"), map[string]*structpb.Struct{"/d/x": val("two")})))
	st := mustState(t, s, "/xc/p2", StateInvalid)
	if !strings.Contains(st.Error, "/xc/p1") || len(rec.Ops) != 0 {
		t.Fatalf("status %+v ops %v: want INVALID naming /xc/p1 and no ops", st, opKeys(rec))
	}
	if d := mustState(t, s, "/d/x", StateConfigured); d.Parent != "/xc/p1" {
		t.Fatalf("first owner lost /d/x: %+v", d)
	}
	// A northbound put of a derived key is refused too.
	rec = commit(t, s, put("/d/x", val("nb")))
	if !strings.Contains(rec.Errors["/d/x"], "/xc/p1") || len(rec.Ops) != 0 {
		t.Fatalf("errors %v ops %v", rec.Errors, opKeys(rec))
	}
	commit(t, s, del("/d/x"))
	// When the first owner goes, the second takes over.
	rec = commit(t, s, del("/xc/p1"))
	if got := strings.Join(opKeys(rec), ";"); got != "DELETE /d/x;DELETE /xc/p1;CREATE /xc/p2;CREATE /d/x" {
		t.Fatalf("ops %s", got)
	}
	if d := mustState(t, s, "/d/x", StateConfigured); d.Parent != "/xc/p2" {
		t.Fatalf("/d/x %+v", d)
	}
	f.checkViolations(t)
}

func TestRetrieveDump(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	configureLab(t, s)
	f.external["/if/local0"] = val("local0")
	got, err := s.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range got {
		keys = append(keys, r.Key+"@"+r.Descriptor)
	}
	if strings.Join(keys, " ") != "/d/ab@d /if/a@if /if/b@if /if/local0@if /xc/ab@xc" {
		t.Fatalf("retrieved %v", keys)
	}
	if _, ok := s.StatusOf("/if/local0"); ok {
		t.Fatal("Retrieve changed the scheduler's state")
	}
}

func TestRegisterDescriptorErrors(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	f := newFakeSB()
	if err := RegisterDescriptor(s, fakeDescriptor(f, "if", "/if/", true)); err != nil {
		t.Fatal(err)
	}
	if err := RegisterDescriptor(s, fakeDescriptor(f, "if", "/other/", true)); err == nil {
		t.Fatal("duplicate name accepted")
	}
	if err := RegisterDescriptor(s, fakeDescriptor(f, "if2", "/if/", true)); err == nil {
		t.Fatal("duplicate prefix accepted")
	}
	if err := RegisterDescriptor(s, &Descriptor[*structpb.Struct, int]{Name: "x", KeyPrefix: "/x/"}); err == nil {
		t.Fatal("descriptor without Create/Delete accepted")
	}
	// A value of the wrong type or with no descriptor is INVALID, not a panic.
	commit(t, s, put("/if/wrong", &structpb.Value{}), put("/nobody/x", val("x")))
	mustState(t, s, "/if/wrong", StateInvalid)
	mustState(t, s, "/nobody/x", StateInvalid)
}

func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		s, f := newTestScheduler(t, Options{RetryInitial: time.Millisecond})
		f.setFail("/if/a", "down")
		commit(t, s, put("/if/a", val("a")))
		s.Close()
		if _, err := s.Commit(context.Background(), Txn{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("commit after close: %v", err)
		}
	}
	var after int
	for i := 0; i < 100; i++ {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("goroutines %d before, %d after Close", before, after)
}

func TestCommitHonoursContextWhileQueued(t *testing.T) {
	s, _ := newTestScheduler(t, Options{})
	s.sem <- struct{}{} // a transaction is running
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Commit(ctx, Txn{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	<-s.sem
}

func TestHistoryAndWatch(t *testing.T) {
	s, _ := newTestScheduler(t, Options{HistorySize: 2})
	var seen [][]ValueStatus
	cancel := s.Watch(func(ch []ValueStatus) { seen = append(seen, ch) })
	commit(t, s, put("/if/a", val("a")))
	commit(t, s, put("/if/b", val("b")))
	cancel()
	commit(t, s, del("/if/a"))
	h := s.History(10)
	if len(h) != 2 || h[0].Seq != 2 || h[1].Seq != 3 || h[1].Ops[0].Op != OpDelete {
		t.Fatalf("history %+v", h)
	}
	if len(seen) != 2 || seen[0][0].Key != "/if/a" || seen[0][0].State != StateConfigured {
		t.Fatalf("watched %+v", seen)
	}
}

func TestStatusPrefixMatchesStatus(t *testing.T) {
	s, _ := newTestScheduler(t, Options{})
	commit(t, s,
		put("/xc/ab", val("x", "/if/a", "/if/b")),
		put("/if/b", val("b")),
		put("/if/a", val("a")),
		put("/xc/zz", val("x", "/if/missing")),
	)
	var want []string
	for _, st := range s.Status() {
		if strings.HasPrefix(st.Key, "/xc/") {
			want = append(want, st.Key+"="+string(st.State))
		}
	}
	var got []string
	for _, st := range s.StatusPrefix("/xc/") {
		got = append(got, st.Key+"="+string(st.State))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != 2 {
		t.Fatalf("StatusPrefix %v, Status filtered %v", got, want)
	}
	if st := s.StatusPrefix("/xc/zz"); len(st) != 1 || strings.Join(st[0].Missing, ",") != "/if/missing" {
		t.Fatalf("StatusPrefix(/xc/zz) %+v", st)
	}
	if st := s.StatusPrefix("/nothing/"); len(st) != 0 {
		t.Fatalf("StatusPrefix(/nothing/) %+v", st)
	}
}

// History packs its records; what comes back must be what Commit returned.
func TestHistoryRoundTripsRecords(t *testing.T) {
	s, f := newTestScheduler(t, Options{})
	f.fail["/if/bad"] = "boom"
	var want []TxnRecord
	want = append(want, commit(t, s, put("/if/a", val("a")), put("/xc/ab", val("x", "/if/a")), put("/if/bad", val("z"))))
	want = append(want, commit(t, s, put("/if/a", val("a2"))))
	want = append(want, commit(t, s, del("/xc/ab"), del("/if/a")))
	got := s.History(3)
	if len(got) != 3 {
		t.Fatalf("history has %d records, want 3", len(got))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Seq != w.Seq || g.Kind != w.Kind || len(g.Ops) != len(w.Ops) || len(g.Errors) != len(w.Errors) ||
			strings.Join(g.Changes, ",") != strings.Join(w.Changes, ",") {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
		for j := range w.Ops {
			if g.Ops[j] != w.Ops[j] {
				t.Fatalf("record %d op %d: got %+v, want %+v", i, j, g.Ops[j], w.Ops[j])
			}
		}
	}
	found := false
	for _, o := range got[0].Ops {
		found = found || (o.Key == "/if/bad" && o.PrevState == StateNonexistent && o.NewState == StateFailed && o.Error != "")
	}
	if !found {
		t.Fatalf("ops %+v: the failed create of /if/bad is not in history", got[0].Ops)
	}
}
