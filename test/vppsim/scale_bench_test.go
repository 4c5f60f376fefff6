package vppsim

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/core"
)

// scaleMemifs is how many memifs BenchmarkScale creates; 20000 is the figure the
// README quotes (go test -run '^$' -bench Scale -scale-memifs 20000 ./test/vppsim).
var scaleMemifs = flag.Int("scale-memifs", 2000, "memif interfaces BenchmarkScale creates")

// scaleSockets is how many memif socket files the masters are spread over.
const scaleSockets = 8

// pipelineN sends reqs on ch with up to 256 in flight, as the agent and the bench
// floor do, and fails on any error reply.
func pipelineN(tb testing.TB, ch api.Channel, reqs []api.Message, newReply func(api.Message) api.Message) []api.Message {
	tb.Helper()
	replies := make([]api.Message, len(reqs))
	inflight := make(chan api.RequestCtx, 256)
	go func() {
		defer close(inflight)
		for _, r := range reqs {
			inflight <- ch.SendRequest(r)
		}
	}()
	i := 0
	var firstErr error
	for rc := range inflight {
		rep := newReply(reqs[i])
		if err := rc.ReceiveReply(rep); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s #%d: %w", reqs[i].GetMessageName(), i, err)
		}
		replies[i] = rep
		i++
	}
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
	return replies
}

func replyFor(req api.Message) api.Message {
	switch req.(type) {
	case *memif.MemifSocketFilenameAddDelV2:
		return &memif.MemifSocketFilenameAddDelV2Reply{}
	case *memif.MemifCreateV2:
		return &memif.MemifCreateV2Reply{}
	case *memif.MemifDelete:
		return &memif.MemifDeleteReply{}
	case *interfaces.SwInterfaceTagAddDel:
		return &interfaces.SwInterfaceTagAddDelReply{}
	case *interfaces.SwInterfaceSetFlags:
		return &interfaces.SwInterfaceSetFlagsReply{}
	case *l2.SwInterfaceSetL2Xconnect:
		return &l2.SwInterfaceSetL2XconnectReply{}
	}
	panic("no reply type for " + req.GetMessageName())
}

// subscribeEvents enables interface events on conn, as the agent does on its one
// connection, and counts them as they arrive.
func subscribeEvents(tb testing.TB, conn *core.Connection) *atomic.Int64 {
	tb.Helper()
	ch, err := conn.NewAPIChannel()
	if err != nil {
		tb.Fatal(err)
	}
	notif := make(chan api.Message, 4096)
	if _, err := ch.SubscribeNotification(notif, &interfaces.SwInterfaceEvent{}); err != nil {
		tb.Fatal(err)
	}
	var n atomic.Int64
	go func() {
		for range notif {
			n.Add(1)
		}
	}()
	if err := ch.SendRequest(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: 1}).
		ReceiveReply(&interfaces.WantInterfaceEventsReply{}); err != nil {
		tb.Fatal(err)
	}
	return &n
}

// BenchmarkScale creates -scale-memifs master memifs with vppsim's real drivers and a
// stats segment, tags them, sets them up and cross-connects them in pairs (the calls
// the agent makes for cross-connects), then reads each back with a filtered
// sw_interface_dump and deletes them all. An event subscriber is connected throughout.
// It reports write calls per second and the heap and goroutines per interface.
func BenchmarkScale(b *testing.B) {
	n := *scaleMemifs &^ 1
	dir := b.TempDir()
	for b.Loop() {
		sim, err := Start(context.Background(), Config{
			Socket:      filepath.Join(dir, "api.sock"),
			StatsSocket: filepath.Join(dir, "stats.sock"),
			Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			b.Fatal(err)
		}
		conn, err := core.Connect(socketclient.NewVppClient(sim.SocketPath()))
		if err != nil {
			b.Fatal(err)
		}
		ch, err := conn.NewAPIChannelBuffered(1024, 1024)
		if err != nil {
			b.Fatal(err)
		}
		events := subscribeEvents(b, conn)

		var setup, creates, cfg, reads, dels []api.Message
		for s := 0; s < scaleSockets; s++ {
			setup = append(setup, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: uint32(1000 + s),
				SocketFilename: filepath.Join(dir, fmt.Sprintf("m%d.sock", s))})
		}
		for i := 0; i < n; i++ {
			creates = append(creates, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, RxQueues: 1, TxQueues: 1,
				ID: uint32(i/scaleSockets + 1), SocketID: uint32(1000 + i%scaleSockets), RingSize: 1024, BufferSize: 2048})
		}
		pipelineN(b, ch, setup, replyFor)
		start := time.Now()
		reps := pipelineN(b, ch, creates, replyFor)
		idx := make([]interface_types.InterfaceIndex, n)
		for i, r := range reps {
			idx[i] = r.(*memif.MemifCreateV2Reply).SwIfIndex
			cfg = append(cfg, &interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: idx[i], Tag: fmt.Sprintf("s%d", i)},
				&interfaces.SwInterfaceSetFlags{SwIfIndex: idx[i], Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
			dels = append(dels, &memif.MemifDelete{SwIfIndex: idx[i]})
		}
		for i := 0; i+1 < n; i += 2 {
			cfg = append(cfg, &l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: idx[i], TxSwIfIndex: idx[i+1], Enable: true},
				&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: idx[i+1], TxSwIfIndex: idx[i], Enable: true})
		}
		pipelineN(b, ch, cfg, replyFor)
		writes := time.Since(start)

		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/float64(n)/1024, "heapKiB/if")
		b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/if")

		// The agent's status reader asks for one interface at a time.
		start = time.Now()
		for i := 0; i < n; i += max(1, n/2000) {
			reads = append(reads, &interfaces.SwInterfaceDump{SwIfIndex: idx[i]})
		}
		for _, r := range reads {
			var d interfaces.SwInterfaceDetails
			got := 0
			mc := ch.SendMultiRequest(r)
			for {
				last, err := mc.ReceiveReply(&d)
				if err != nil {
					b.Fatal(err)
				}
				if last {
					break
				}
				got++
			}
			if got != 1 {
				b.Fatalf("filtered dump of %d: %d details", r.(*interfaces.SwInterfaceDump).SwIfIndex, got)
			}
		}
		b.ReportMetric(float64(len(reads))/time.Since(start).Seconds(), "dumps1/s")

		start = time.Now()
		pipelineN(b, ch, dels, replyFor)
		writes += time.Since(start)
		b.ReportMetric(float64(len(creates)+len(cfg)+len(dels))/writes.Seconds(), "writes/s")
		if sim.ClientCount() != 1 {
			b.Error("the event-subscribed client was disconnected")
		}
		b.ReportMetric(float64(events.Load())/float64(n), "events/if")
		ch.Close()
		conn.Disconnect()
		sim.Close()
	}
}
