package mesh

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// scriptedTTL answers LeaseTimeToLive for one lease with the reading the
// test sets (other leases: etcd's answer).
type scriptedTTL struct {
	lease   int64
	reading atomic.Int64
	real    func(context.Context, int64) (int64, error)
}

func (s *scriptedTTL) ttl(ctx context.Context, id int64) (int64, error) {
	if id == s.lease {
		return s.reading.Load(), nil
	}
	return s.real(ctx, id)
}

// startScripted runs a controller whose view of the lease's time to live
// the test scripts, with c1 UP on ep1 (registered under that lease, kept
// alive for real so that etcd never deletes it) and ep2 registered.
func startScripted(t *testing.T) (*clientv3.Client, *Controller, *scriptedTTL) {
	cli := startEtcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	lease, err := cli.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.KeepAlive(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	f := &recSched{reportSched: reportSched{desired: map[string]*vppmeshv1.CrossConnect{}}}
	m, err := New(Options{Client: cli, Label: "n1", Scheduler: f, LeasePoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedTTL{lease: int64(lease.ID), real: m.etcdLeaseTTL}
	s.reading.Store(1)
	m.leaseTTL = s.ttl
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := m.WrapScheduler(f).Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnFullResync}); err != nil && ctx.Err() == nil {
			t.Error(err)
		}
	})
	wg.Go(func() { _ = m.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	put(t, cli, models.MeshServicePrefix+"s", `{"name":"s"}`)
	if _, err := cli.Put(ctx, models.MeshEndpointPrefix+"ep1", `{"name":"ep1","network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/ep1.sock"}}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	put(t, cli, models.MeshConnectionPrefix+"c1", `{"id":"c1","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c1.sock"}}`)
	upOnEp1(t, cli, m)
	put(t, cli, models.MeshEndpointPrefix+"ep2", `{"name":"ep2","network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/ep2.sock"}}`)
	return cli, m, s
}

// An endpoint whose lease reads "less than a second left" and is not
// renewed within that second counts as gone: its connection moves although
// etcd still holds the endpoint's key (etcd deletes it up to 500 ms later).
// A renewal seen afterwards makes the endpoint selectable again.
func TestLeaseRunOutMovesBeforeEtcdDeletes(t *testing.T) {
	cli, _, s := startScripted(t)
	zeroFrom := time.Now()
	s.reading.Store(0)
	waitFor(t, "c1 moved to ep2", func() error {
		if st, _ := getStatus(t, cli, "c1"); st.GetEndpoint() != "ep2" || st.GetHeals() != 1 {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	if d := time.Since(zeroFrom); d < time.Second {
		t.Fatalf("moved %v after the first 0 reading: a lease reading 0 may still have up to 1 s", d)
	}
	if resp, err := cli.Get(context.Background(), models.MeshEndpointPrefix+"ep1"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("ep1's key should still be in etcd (its lease is kept alive): %v %v", resp, err)
	}
	// Renewed after all (as after an etcd leader change): ep1 serves again;
	// a new connection goes to the less loaded ep1, c1 stays on ep2.
	s.reading.Store(3)
	time.Sleep(200 * time.Millisecond)
	put(t, cli, models.MeshConnectionPrefix+"c2", `{"id":"c2","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c2.sock"}}`)
	waitFor(t, "c2 on ep1", func() error {
		if st, _ := getStatus(t, cli, "c2"); st.GetEndpoint() != "ep1" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	if st, _ := getStatus(t, cli, "c1"); st.GetEndpoint() != "ep2" {
		t.Fatalf("c1 moved again: %v", st)
	}
}

// A lease that reads 0 and then, within the second, a renewal (≥ 1) is
// alive: nothing moves. One that etcd no longer knows (-1) is gone at once.
func TestLeaseRenewedInTimeMovesNothing(t *testing.T) {
	cli, _, s := startScripted(t)
	s.reading.Store(0)
	time.Sleep(500 * time.Millisecond)
	s.reading.Store(1)
	time.Sleep(1500 * time.Millisecond)
	if st, _ := getStatus(t, cli, "c1"); st.GetEndpoint() != "ep1" || st.GetHeals() != 0 {
		t.Fatalf("c1 left a renewed endpoint: %v", st)
	}
	s.reading.Store(-1)
	waitFor(t, "c1 moved to ep2 (lease unknown to etcd)", func() error {
		if st, _ := getStatus(t, cli, "c1"); st.GetEndpoint() != "ep2" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
}
