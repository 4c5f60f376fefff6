package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/agent"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// These benchmarks run the agent in-process so that `go test -cpuprofile`
// sees the agent, etcd and vppsim in one profile (the agent has no pprof
// endpoint, and the process benchmarks must not change it):
//
//	go test -run '^$' -bench AgentBulk -benchtime 3x -cpuprofile cpu.out ./test/bench -xc 2000
var (
	profileXC   = flag.Int("xc", 1000, "cross-connects per iteration of the in-process agent benchmarks")
	heapProfile = flag.String("heapprofile", "", "write a heap profile with -xc cross-connects configured (BenchmarkAgentResyncUnchanged)")
)

type inproc struct {
	sim   interface{ SocketPath() string }
	agent *agent.Agent
	opts  agent.Options
	etcd  *clientv3.Client
	files []string
	mu    sync.Mutex
	conf  map[string]bool // CrossConnect keys the scheduler has CONFIGURED
}

func tcpPort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startInproc(b *testing.B) *inproc {
	b.Helper()
	dir := b.TempDir()
	sim := quietSim(b)
	e := &inproc{sim: sim, files: []string{filepath.Join(dir, "m0.sock"), filepath.Join(dir, "m1.sock")}}
	e.opts = agent.Options{Label: Label, VPPSocket: sim.SocketPath(),
		EtcdListen: fmt.Sprintf("http://127.0.0.1:%d", tcpPort(b)), EtcdPeer: fmt.Sprintf("http://127.0.0.1:%d", tcpPort(b)),
		HTTPAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, "etcd"), HealthInterval: time.Second, LogLevel: slog.LevelError}
	e.start(b)
	b.Cleanup(e.stop)
	return e
}

func (e *inproc) start(b *testing.B) {
	b.Helper()
	e.agent = agent.New(e.opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := e.agent.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.opts.EtcdListen}, DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	e.etcd = cli
	// A watch rather than polling Status: Status sorts every value, and
	// polling it showed up as a quarter of the profile.
	e.mu.Lock()
	e.conf = map[string]bool{}
	e.mu.Unlock()
	sched := e.agent.Scheduler()
	sched.Watch(e.observe)
	e.observe(sched.Status())
	e.waitUntil(b, "ready", e.agent.Ready)
}

func (e *inproc) stop() {
	if e.etcd != nil {
		e.etcd.Close()
		e.etcd = nil
	}
	if e.agent != nil {
		e.agent.Close()
		e.agent = nil
	}
}

func (e *inproc) waitUntil(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *inproc) observe(changed []kvscheduler.ValueStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range changed {
		if strings.HasPrefix(v.Key, "config/vppmesh/") {
			if v.State == kvscheduler.StateConfigured {
				e.conf[v.Key] = true
			} else {
				delete(e.conf, v.Key)
			}
		}
	}
}

// configured counts the CrossConnect values the scheduler has CONFIGURED.
func (e *inproc) configured() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conf)
}

func (e *inproc) txn(b *testing.B, n int, put bool) {
	b.Helper()
	for lo := 0; lo < n; lo += etcdTxnOps {
		var ops []clientv3.Op
		for i := lo; i < min(lo+etcdTxnOps, n); i++ {
			name := fmt.Sprintf("x%d", i)
			if put {
				ops = append(ops, clientv3.OpPut(XCKey(name), xcValue(name, i, e.files)))
			} else {
				ops = append(ops, clientv3.OpDelete(XCKey(name)))
			}
		}
		if _, err := e.etcd.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAgentBulkApply: etcd txns of -xc cross-connects until the
// scheduler has them all CONFIGURED (each reply came from vppsim), then
// (untimed) deletes them again.
func BenchmarkAgentBulkApply(b *testing.B) {
	e := startInproc(b)
	n := *profileXC
	b.ResetTimer()
	for range b.N {
		e.txn(b, n, true)
		e.waitUntil(b, "all configured", func() bool { return e.configured() == n })
		b.StopTimer()
		e.txn(b, n, false)
		e.waitUntil(b, "all removed", func() bool { return e.configured() == 0 })
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "xc/s")
}

// BenchmarkAgentResyncUnchanged: agent restart with -xc cross-connects in
// etcd and VPP, until ready.
func BenchmarkAgentResyncUnchanged(b *testing.B) {
	e := startInproc(b)
	n := *profileXC
	e.txn(b, n, true)
	e.waitUntil(b, "all configured", func() bool { return e.configured() == n })
	if *heapProfile != "" {
		// -memprofile is written after the agent has stopped; this one
		// shows what n configured cross-connects keep alive.
		runtime.GC()
		f, err := os.Create(*heapProfile)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		e.stop()
		b.StartTimer()
		e.start(b)
	}
}
