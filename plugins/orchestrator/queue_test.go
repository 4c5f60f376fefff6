package orchestrator

import (
	"context"
	"errors"
	"testing"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

func TestWriteQueueLatestWins(t *testing.T) {
	q := newWriteQueue()
	q.put("k", []byte("v1"))
	q.put("k", []byte("v2"))
	q.del("d")
	batch := q.take()
	if len(batch) != 2 || string(batch["k"].val) != "v2" || batch["d"].val != nil {
		t.Fatalf("batch %+v", batch)
	}
	if q.take() != nil {
		t.Fatal("take left writes behind")
	}
	// The flush failed; meanwhile k got a newer value: the newer one stays.
	q.put("k", []byte("v3"))
	q.restore(batch)
	again := q.take()
	if string(again["k"].val) != "v3" {
		t.Fatalf("restore overwrote a newer value: %q", again["k"].val)
	}
	if _, ok := again["d"]; !ok {
		t.Fatal("restore lost a failed delete")
	}
}

func TestFailedCommitTriggersRelist(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	s := newMemSched()
	r := runOrch(t, cli, "a", s, nil)
	waitFor(t, "ready", r.o.Ready)
	s.mu.Lock()
	s.failNext = errors.New("scheduler closed")
	s.mu.Unlock()
	mustPut(t, cli, ifKey("a", "m1"), memifJSON("m1", 1)) // its commit fails
	waitFor(t, "m1 applied through a full resync", func() bool { _, ok := s.snapshot()[ifRel("m1")]; return ok })
	if n := s.count(kvscheduler.TxnFullResync); n != 2 {
		t.Fatalf("%d full resyncs, want 2", n)
	}
	if err := r.o.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.count(kvscheduler.TxnFullResync); n != 3 {
		t.Fatalf("Resync did not commit a full resync (%d)", n)
	}
}
