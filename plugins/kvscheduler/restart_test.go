package kvscheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// After an agent restart, a parent whose descriptor cannot retrieve (like a
// CrossConnect) is new to the scheduler while its derived values are found
// in the southbound: the parent's no-op create must not drag them out and
// back in.
func TestRestartKeepsDerivedOfUnretrievableParent(t *testing.T) {
	f := newFakeSB()
	start := func() *Scheduler {
		s := New(Options{})
		t.Cleanup(s.Close)
		for _, d := range []*Descriptor[*structpb.Struct, int]{
			fakeDescriptor(f, "xc", "/xc/", false), // no Retrieve
			fakeDescriptor(f, "d", "/d/", true),
		} {
			if err := RegisterDescriptor(s, d); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	parent := withKids(val("p"), map[string]*structpb.Struct{"/d/1": val("one"), "/d/2": val("two", "/d/1")})
	s := start()
	commit(t, s, put("/xc/p", parent))
	s.Close()
	// The parent lives only in the agent (its create is a no-op in reality).
	f.mu.Lock()
	delete(f.items, "/xc/p")
	f.mu.Unlock()

	f.resetLog()
	s = start()
	rec, err := s.Commit(context.Background(), Txn{Kind: TxnFullResync, Values: []KeyValue{put("/xc/p", parent)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(opKeys(rec), ";"); got != "CREATE /xc/p" {
		t.Fatalf("ops after restart: %s (want only the parent's no-op create)", got)
	}
	for _, op := range f.opLog() {
		if strings.HasPrefix(op.key, "/d/") {
			t.Fatalf("southbound touched derived value: %v", op)
		}
	}
	mustState(t, s, "/d/2", StateConfigured)

	// A parent that stays pending still takes its derived values away.
	pending := withKids(val("p", "/d/missing"), map[string]*structpb.Struct{"/d/1": val("one")})
	rec = commit(t, s, put("/xc/p", pending))
	if got := strings.Join(opKeys(rec), ";"); !strings.Contains(got, "DELETE /d/1") {
		t.Fatalf("ops %s: want /d/1 deleted while its parent is pending", got)
	}
	f.checkViolations(t)
}

// A resync that finds a value equal to the desired one keeps one copy, not
// two; one that differs is still corrected.
func TestResyncSharesEqualAppliedValue(t *testing.T) {
	f := newFakeSB()
	s := New(Options{})
	t.Cleanup(s.Close)
	if err := RegisterDescriptor(s, fakeDescriptor(f, "d", "/d/", true)); err != nil {
		t.Fatal(err)
	}
	commit(t, s, put("/d/1", val("one")), put("/d/2", val("two")))
	f.mu.Lock()
	f.items["/d/1"] = proto.Clone(f.items["/d/1"]).(*structpb.Struct) // what a dump decodes
	f.items["/d/2"] = val("changed behind our back")
	f.mu.Unlock()
	rec, err := s.Commit(context.Background(), Txn{Kind: TxnDownstreamResync})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(opKeys(rec), ";"); got != "UPDATE /d/2" {
		t.Fatalf("ops %s, want only /d/2 corrected", got)
	}
	s.mu.RLock()
	n1, n2 := s.nodes["/d/1"], s.nodes["/d/2"]
	shared := n1.applied == n1.desired
	n2ok := proto.Equal(n2.applied, val("two"))
	s.mu.RUnlock()
	if !shared {
		t.Fatal("/d/1: applied keeps its own copy of a value equal to the desired one")
	}
	if !n2ok {
		t.Fatal("/d/2: applied is not the corrected value")
	}
	mustState(t, s, "/d/1", StateConfigured)
	f.checkViolations(t)
}

// A freshly started agent whose first dumps time out (a starved machine)
// must not act on the empty record it has: the resync tries the retrieve
// again, past the attempts a known descriptor gets, and an unchanged
// southbound then gets no operation at all.
func TestRestartRetriesFailedRetrieve(t *testing.T) {
	old, oldMax := retrieveBackoff, retrieveBackoffMax
	retrieveBackoff, retrieveBackoffMax = time.Millisecond, 2*time.Millisecond
	t.Cleanup(func() { retrieveBackoff, retrieveBackoffMax = old, oldMax })
	f := newFakeSB()
	s := New(Options{})
	if err := RegisterDescriptor(s, fakeDescriptor(f, "d", "/d/", true)); err != nil {
		t.Fatal(err)
	}
	vals := []KeyValue{put("/d/1", val("one")), put("/d/2", val("two", "/d/1"))}
	commit(t, s, vals...)
	s.Close()

	f.resetLog()
	s = New(Options{})
	t.Cleanup(s.Close)
	d := fakeDescriptor(f, "d", "/d/", true)
	inner, fails := d.Retrieve, 0
	d.Retrieve = func(ctx context.Context, desired []KV[*structpb.Struct]) ([]Retrieved[*structpb.Struct, int], error) {
		if fails < retrieveAttempts+2 {
			fails++
			return nil, errors.New("reply timeout")
		}
		return inner(ctx, desired)
	}
	if err := RegisterDescriptor(s, d); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Commit(context.Background(), Txn{Kind: TxnFullResync, Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Ops) != 0 || len(f.opLog()) != 0 {
		t.Fatalf("ops %v, southbound %v after retrieve failed %d times then worked; want none", opKeys(rec), f.opLog(), fails)
	}
	mustState(t, s, "/d/2", StateConfigured)
}

// A never-retrieved descriptor is retried until it works, but not past its
// caller: an agent shutting down while the southbound stays unreadable must
// get its resync back (nothing was changed), or its Close would wait forever.
func TestRetrieveRetriesEndWithTheCaller(t *testing.T) {
	old, oldMax := retrieveBackoff, retrieveBackoffMax
	retrieveBackoff, retrieveBackoffMax = time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { retrieveBackoff, retrieveBackoffMax = old, oldMax })
	f := newFakeSB()
	s := New(Options{})
	t.Cleanup(s.Close)
	d := fakeDescriptor(f, "d", "/d/", true)
	d.Retrieve = func(context.Context, []KV[*structpb.Struct]) ([]Retrieved[*structpb.Struct, int], error) {
		return nil, errors.New("unknown message: vxlan_tunnel_v2_dump")
	}
	if err := RegisterDescriptor(s, d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Commit(ctx, Txn{Kind: TxnFullResync, Values: []KeyValue{put("/d/1", val("one"))}})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("resync returned while the caller still waited and retrieve kept failing: %v", err)
	default:
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("resync kept retrying the retrieve after its caller gave up")
	}
	if ops := f.opLog(); len(ops) != 0 {
		t.Fatalf("southbound changed without a successful retrieve: %v", ops)
	}
}
