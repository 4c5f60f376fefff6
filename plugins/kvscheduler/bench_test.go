package kvscheduler

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// benchScheduler has descriptors whose callbacks do nothing, so that the
// benchmarks measure the scheduler's planning and bookkeeping only.
func benchScheduler(b *testing.B) *Scheduler {
	s := New(Options{})
	b.Cleanup(s.Close)
	for _, p := range []string{"/if/", "/xc/"} {
		d := &Descriptor[*structpb.Struct, int]{
			Name: p, KeyPrefix: p,
			Dependencies: func(_ string, v *structpb.Struct) []Dependency {
				var out []Dependency
				for _, d := range v.GetFields()["deps"].GetListValue().GetValues() {
					out = append(out, Dependency{Key: d.GetStringValue()})
				}
				return out
			},
			Create: func(context.Context, string, *structpb.Struct) (int, error) { return 1, nil },
			Update: func(_ context.Context, _ string, _, _ *structpb.Struct, m int) (int, error) { return m, nil },
			Delete: func(context.Context, string, *structpb.Struct, int) error { return nil },
		}
		if err := RegisterDescriptor(s, d); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func independent(n int) []KeyValue {
	kvs := make([]KeyValue, n)
	for i := range kvs {
		kvs[i] = put(fmt.Sprintf("/if/%d", i), val("v"))
	}
	return kvs
}

// pairs returns n interfaces and n xconnects, each xconnect needing its
// interface; dependants come first so that every one starts PENDING.
func pairs(n int) []KeyValue {
	kvs := make([]KeyValue, 0, 2*n)
	for i := 0; i < n; i++ {
		kvs = append(kvs, put(fmt.Sprintf("/xc/%d", i), val("x", fmt.Sprintf("/if/%d", i))))
	}
	for i := 0; i < n; i++ {
		kvs = append(kvs, put(fmt.Sprintf("/if/%d", i), val("v")))
	}
	return kvs
}

func benchCommit(b *testing.B, kvs []KeyValue) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s := benchScheduler(b)
		b.StartTimer()
		rec, err := s.Commit(ctx, Txn{Values: kvs})
		if err != nil || len(rec.Ops) != len(kvs) {
			b.Fatalf("ops %d, err %v", len(rec.Ops), err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(kvs)), "values/txn")
}

// BenchmarkCommit10k measures one transaction creating 10,000 independent
// values, and one creating 10,000 interface+xconnect pairs.
func BenchmarkCommit10k(b *testing.B) {
	b.Run("independent", func(b *testing.B) { benchCommit(b, independent(10000)) })
	b.Run("pairs", func(b *testing.B) { benchCommit(b, pairs(10000)) })
}

// BenchmarkSmallTxnIn10kGraph measures a one-key change against a graph of
// 10,000 pairs: its cost should follow the transaction, not the graph.
func BenchmarkSmallTxnIn10kGraph(b *testing.B) {
	ctx := context.Background()
	s := benchScheduler(b)
	if _, err := s.Commit(ctx, Txn{Values: pairs(10000)}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		rec, err := s.Commit(ctx, Txn{Values: []KeyValue{put("/if/5", val(fmt.Sprint(i)))}})
		if err != nil || len(rec.Ops) != 1 {
			b.Fatalf("ops %v, err %v", opKeys(rec), err)
		}
	}
}

// crossConnects returns n parents under /cc/ that each derive two
// interfaces and two xconnects needing them, like a CrossConnect.
func crossConnects(b *testing.B, s *Scheduler, n int) []KeyValue {
	d := &Descriptor[*structpb.Struct, int]{
		Name: "/cc/", KeyPrefix: "/cc/",
		DerivedValues: func(key string, _ *structpb.Struct) []KeyValue {
			a, z := "/if/"+key[4:]+"-a", "/if/"+key[4:]+"-b"
			return []KeyValue{
				{Key: a, Value: val("memif")}, {Key: z, Value: val("memif")},
				{Key: "/xc/" + key[4:] + "-a", Value: val("x", a, z)},
				{Key: "/xc/" + key[4:] + "-b", Value: val("x", z, a)},
			}
		},
		Create: func(context.Context, string, *structpb.Struct) (int, error) { return 0, nil },
		Delete: func(context.Context, string, *structpb.Struct, int) error { return nil },
	}
	if err := RegisterDescriptor(s, d); err != nil {
		b.Fatal(err)
	}
	kvs := make([]KeyValue, n)
	for i := range kvs {
		kvs[i] = put(fmt.Sprintf("/cc/x%d", i), val("cc"))
	}
	return kvs
}

// BenchmarkMemoryPerCrossConnect reports the heap the scheduler keeps per
// configured cross-connect (five values), values included.
func BenchmarkMemoryPerCrossConnect(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	var perXC float64
	for b.Loop() {
		b.StopTimer()
		s := benchScheduler(b)
		kvs := crossConnects(b, s, n)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		rec, err := s.Commit(ctx, Txn{Values: kvs})
		b.StopTimer()
		if err != nil || len(rec.Ops) != 5*n {
			b.Fatalf("ops %d, err %v", len(rec.Ops), err)
		}
		// The history keeps the last txn's ops; that is not per-value state.
		s.mu.Lock()
		s.history = nil
		s.mu.Unlock()
		kvs = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		perXC = float64(after.HeapAlloc-before.HeapAlloc) / n / 1024
		runtime.KeepAlive(s)
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(perXC, "KiB/xc")
}

// BenchmarkSinglePutAt10k measures putting and deleting one cross-connect
// (five values) with 10,000 configured: what a put costs the scheduler at
// scale, the status watcher included.
func BenchmarkSinglePutAt10k(b *testing.B) {
	ctx := context.Background()
	s := benchScheduler(b)
	if _, err := s.Commit(ctx, Txn{Values: crossConnects(b, s, 10000)}); err != nil {
		b.Fatal(err)
	}
	var seen int
	s.Watch(func(changed []ValueStatus) { seen += len(changed) })
	for b.Loop() {
		rec, err := s.Commit(ctx, Txn{Values: []KeyValue{put("/cc/new", val("cc"))}})
		if err != nil || len(rec.Ops) != 5 {
			b.Fatalf("ops %v, err %v", opKeys(rec), err)
		}
		if rec, err = s.Commit(ctx, Txn{Values: []KeyValue{del("/cc/new")}}); err != nil || len(rec.Ops) != 5 {
			b.Fatalf("ops %v, err %v", opKeys(rec), err)
		}
	}
	if seen == 0 {
		b.Fatal("watcher saw no change")
	}
}
