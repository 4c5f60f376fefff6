package orchestrator

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

// BenchmarkEtcdBurstToScheduler measures how long 1,000 config changes (in
// etcd txns of 125 puts) take to reach the scheduler and have their 1,000
// status keys written back, and how many scheduler and etcd status txns
// that took.
func BenchmarkEtcdBurstToScheduler(b *testing.B) {
	e := newEtcdSite(b).start(b)
	cli := newTestClient(b, e.Endpoints())
	s := newMemSched()
	o, err := New(Options{Client: cli, Label: "bench", Scheduler: s})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !o.Ready() {
		time.Sleep(time.Millisecond)
	}
	const n = 1000
	start := o.Stats()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		before := o.Stats()
		var ops []clientv3.Op
		for i := range n {
			name := "b" + itoa(i)
			ops = append(ops, clientv3.OpPut(ifKey("bench", name), memifJSON(name, it*n+i+1)))
			if len(ops) == 125 {
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					b.Fatal(err)
				}
				ops = nil
			}
		}
		want := uint32(it*n + n)
		for {
			v, ok := s.snapshot()[ifRel("b"+itoa(n-1))].(*interfaces.Interface)
			st := o.Stats()
			if ok && v.GetMemif().GetId() == want && st.StatusWrites-before.StatusWrites >= n && st.StatusQueued == 0 {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	b.StopTimer()
	st := o.Stats()
	b.ReportMetric(float64(st.TxnsCommitted-start.TxnsCommitted)/float64(b.N), "sched-txns/op")
	b.ReportMetric(float64(st.StatusTxns-start.StatusTxns)/float64(b.N), "status-txns/op")
}
