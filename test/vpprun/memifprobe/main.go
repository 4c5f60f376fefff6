// Command memifprobe measures how many memifs FD.io VPP takes before it
// crashes, and what the limit depends on. Each case starts a private VPP
// (test/vpprun), creates memifs in batches (pipelined, as the agent and the
// bench do), checks after each batch that VPP is alive, and stops at -max or
// at the crash. It takes VPP down on purpose: run it once, by hand
// (scripts/vpp-memif-limit.sh), never in CI.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.fd.io/govpp"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"

	"github.com/vppmesh/vppmesh/test/vpprun"
)

type probe struct {
	name    string
	sockets int
	heap    string
	adminUp bool
	window  int // requests in flight
	nofile  uint64
	pause   time.Duration // between batches
	statseg string        // stats segment size ("" = VPP's default, 32M)
}

func main() {
	max := flag.Int("max", 12000, "stop after this many memifs")
	batch := flag.Int("batch", 200, "memifs per batch (alive check after each)")
	dir := flag.String("dir", "/tmp/vpp-memifprobe", "run directory root (one sub-directory per case)")
	only := flag.String("case", "", "run only this case")
	flag.Parse()
	cases := []probe{
		{name: "agent-like", sockets: 1, heap: "1G", adminUp: true, window: 256},
		{name: "no-admin-up", sockets: 1, heap: "1G", adminUp: false, window: 256},
		{name: "100-sockets", sockets: 100, heap: "1G", adminUp: true, window: 256},
		{name: "4-sockets", sockets: 4, heap: "1G", adminUp: true, window: 256},
		{name: "heap-4G", sockets: 1, heap: "4G", adminUp: true, window: 256},
		{name: "statseg-512M", sockets: 1, heap: "1G", adminUp: true, window: 256, statseg: "512M"},
		{name: "statseg-512M-heap-4G", sockets: 1, heap: "4G", adminUp: true, window: 256, statseg: "512M"},
		{name: "nofile-4096", sockets: 1, heap: "1G", adminUp: true, window: 256, nofile: 4096},
		{name: "serial", sockets: 1, heap: "1G", adminUp: true, window: 1},
		{name: "paced-50ms", sockets: 1, heap: "1G", adminUp: true, window: 256, pause: 50 * time.Millisecond},
	}
	for _, c := range cases {
		if *only != "" && c.name != *only {
			continue
		}
		res := run(c, filepath.Join(*dir, c.name), *max, *batch)
		fmt.Println(res)
	}
}

func run(c probe, dir string, max, batch int) string {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Sprintf("%s: %v", c.name, err)
	}
	if c.nofile != 0 {
		var old syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old)
		defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: c.nofile, Max: old.Max})
	}
	v, err := vpprun.Start(context.Background(), vpprun.Config{Dir: dir, Name: "memifprobe-" + c.name,
		MainHeap: c.heap, StatsSize: c.statseg, Plugins: []string{"memif"}})
	if c.nofile != 0 {
		// Only VPP gets the lower limit.
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 20000, Max: 20000})
	}
	if err != nil {
		return fmt.Sprintf("%s: start: %v", c.name, err)
	}
	defer v.Stop()
	conn, err := govpp.Connect(v.APISocket)
	if err != nil {
		return fmt.Sprintf("%s: connect: %v", c.name, err)
	}
	defer conn.Disconnect()
	ch, err := conn.NewAPIChannelBuffered(1024, 1024)
	if err != nil {
		return fmt.Sprintf("%s: %v", c.name, err)
	}
	ch.SetReplyTimeout(3 * time.Second)
	for s := 0; s < c.sockets; s++ {
		rep := &memif.MemifSocketFilenameAddDelV2Reply{}
		if err := ch.SendRequest(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: uint32(s + 1),
			SocketFilename: filepath.Join(dir, fmt.Sprintf("m%d.sock", s))}).ReceiveReply(rep); err != nil {
			return fmt.Sprintf("%s: socket: %v", c.name, err)
		}
	}
	start := time.Now()
	created := 0
	var lastErr error
	for created < max {
		var reqs []api.Message
		for i := created; i < created+batch; i++ {
			reqs = append(reqs, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, RxQueues: 1, TxQueues: 1,
				SocketID: uint32(i%c.sockets + 1), ID: uint32(i / c.sockets), RingSize: 1024, BufferSize: 2048})
		}
		reps, err := pipeline(ch, reqs, c.window, func() api.Message { return &memif.MemifCreateV2Reply{} })
		if c.adminUp && err == nil {
			var ups []api.Message
			for _, r := range reps {
				ups = append(ups, &interfaces.SwInterfaceSetFlags{SwIfIndex: r.(*memif.MemifCreateV2Reply).SwIfIndex,
					Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
			}
			_, err = pipeline(ch, ups, c.window, func() api.Message { return &interfaces.SwInterfaceSetFlagsReply{} })
		}
		if err != nil {
			lastErr = err
			break
		}
		created += batch
		if c.pause > 0 {
			time.Sleep(c.pause)
		}
		if v.Exited() || vpprun.Ping(v.APISocket) != nil {
			break
		}
	}
	time.Sleep(4 * time.Second) // memif_process runs every 3 s: give it a turn at the full table
	alive := !v.Exited() && vpprun.Ping(v.APISocket) == nil
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", v.Pid()))
	out := fmt.Sprintf("%-12s sockets=%-3d heap=%s statseg=%s admin_up=%v window=%d nofile=%d pause=%v: created %d (in batches of %d) in %.1fs, alive=%v, vpp fds=%d",
		c.name, c.sockets, c.heap, c.statseg, c.adminUp, c.window, c.nofile, c.pause, created, batch, time.Since(start).Seconds(), alive, len(fds))
	if lastErr != nil {
		out += fmt.Sprintf(", last error: %v", lastErr)
	}
	if !alive {
		tail := v.LogTail(14)
		var sig []string
		for _, l := range strings.Split(tail, "\n") {
			if strings.Contains(l, "signal") || strings.Contains(l, "#") {
				sig = append(sig, strings.TrimSpace(l))
			}
		}
		out += "\n    " + strings.Join(sig, "\n    ")
	}
	return out
}

// pipeline sends reqs with up to window in flight and returns the replies
// in order; the first error (transport or retval) ends it.
func pipeline(ch api.Channel, reqs []api.Message, window int, newReply func() api.Message) ([]api.Message, error) {
	out := make([]api.Message, len(reqs))
	inflight := make(chan api.RequestCtx, window)
	go func() {
		for _, r := range reqs {
			inflight <- ch.SendRequest(r)
		}
		close(inflight)
	}()
	i := 0
	for rc := range inflight {
		rep := newReply()
		if err := rc.ReceiveReply(rep); err != nil {
			// VPP died or refused: the rest is abandoned with VPP.
			return out, fmt.Errorf("%s #%d: %w", reqs[i].GetMessageName(), i, err)
		}
		out[i] = rep
		i++
	}
	return out, nil
}
