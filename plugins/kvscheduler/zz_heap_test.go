package kvscheduler

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

func BenchmarkZZHeap(b *testing.B) {
	runtime.MemProfileRate = 256
	s := benchScheduler(b)
	kvs := crossConnects(b, s, 10000)
	s.Commit(context.Background(), Txn{Values: kvs})
	s.history = nil
	kvs = nil
	runtime.GC()
	f, _ := os.Create("/tmp/kheap.out")
	pprof.WriteHeapProfile(f)
	f.Close()
	runtime.KeepAlive(s)
}
