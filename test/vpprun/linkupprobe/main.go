// Command linkupprobe measures how fast FD.io VPP brings memif links up
// when many slaves connect at once, and whether that depends on how many
// memifs VPP already holds connected: it starts a private VPP
// (test/vpprun), connects -existing memifs (VPP master, Go slaves from
// test/vppsim/memif), then creates -batch more and starts all their slaves
// at once, reporting when each link came up. By hand, never in CI.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.fd.io/govpp"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"

	"github.com/vppmesh/vppmesh/test/vpprun"
	vmemif "github.com/vppmesh/vppmesh/test/vppsim/memif"
)

func main() {
	existing := flag.Int("existing", 0, "memifs connected before the measured batch")
	batch := flag.Int("batch", 250, "memifs brought up at once")
	dir := flag.String("dir", "/tmp/vpp-linkupprobe", "run directory")
	interrupt := flag.Bool("interrupt", false, "set rx-mode interrupt on each memif after creating it")
	after := flag.String("after", "", "rx mode (interrupt or adaptive) set on the -existing memifs once connected")
	flag.Parse()
	rxInterrupt = *interrupt
	rxAfter = map[string]interface_types.RxMode{"interrupt": interface_types.RX_MODE_API_INTERRUPT, "adaptive": interface_types.RX_MODE_API_ADAPTIVE}[*after]
	if err := run(*dir, *existing, *batch); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var (
	rxInterrupt bool
	rxAfter     interface_types.RxMode
)

func run(dir string, existing, batch int) error {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	v, err := vpprun.Start(context.Background(), vpprun.Config{Dir: dir, Name: "linkupprobe", MainHeap: "1G", Plugins: []string{"memif"}})
	if err != nil {
		return err
	}
	defer v.Stop()
	conn, err := govpp.Connect(v.APISocket)
	if err != nil {
		return err
	}
	defer conn.Disconnect()
	ch, err := conn.NewAPIChannel()
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "m.sock")
	if err := ch.SendRequest(&memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: 1, SocketFilename: sock}).
		ReceiveReply(&memif.MemifSocketFilenameAddDelV2Reply{}); err != nil {
		return err
	}
	var idx []interface_types.InterfaceIndex // by memif id
	create := func(id int) error {
		rep := &memif.MemifCreateV2Reply{}
		if err := ch.SendRequest(&memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, RxQueues: 1, TxQueues: 1,
			SocketID: 1, ID: uint32(id), RingSize: 1024, BufferSize: 2048}).ReceiveReply(rep); err != nil {
			return err
		}
		idx = append(idx, rep.SwIfIndex)
		if err := ch.SendRequest(&interfaces.SwInterfaceSetFlags{SwIfIndex: rep.SwIfIndex, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP}).
			ReceiveReply(&interfaces.SwInterfaceSetFlagsReply{}); err != nil {
			return err
		}
		if rxInterrupt {
			if err := ch.SendRequest(&interfaces.SwInterfaceSetRxMode{SwIfIndex: rep.SwIfIndex, Mode: interface_types.RX_MODE_API_INTERRUPT}).
				ReceiveReply(&interfaces.SwInterfaceSetRxModeReply{}); err != nil {
				return fmt.Errorf("rx-mode interrupt: %w", err)
			}
		}
		return nil
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var slaves []*vmemif.Interface
	defer func() {
		for _, s := range slaves {
			_ = s.Close()
		}
	}()
	connect := func(from, n int) ([]time.Duration, error) {
		start := time.Now()
		var mu sync.Mutex
		var ups []time.Duration
		var wg sync.WaitGroup
		for id := from; id < from+n; id++ {
			s, err := vmemif.NewSlave(sock, vmemif.Config{ID: uint32(id), RetryInterval: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, Logger: quiet})
			if err != nil {
				return nil, err
			}
			slaves = append(slaves, s)
			if err := s.Connect(); err != nil {
				return nil, err
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if s.WaitUp(ctx) == nil {
					mu.Lock()
					ups = append(ups, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		sort.Slice(ups, func(i, j int) bool { return ups[i] < ups[j] })
		return ups, nil
	}
	for id := 0; id < existing+batch; id++ {
		if err := create(id); err != nil {
			return fmt.Errorf("create %d: %w", id, err)
		}
	}
	if _, err := connect(0, existing); err != nil {
		return err
	}
	if rxAfter != 0 {
		for id := 0; id < existing; id++ {
			if err := ch.SendRequest(&interfaces.SwInterfaceSetRxMode{SwIfIndex: idx[id], Mode: rxAfter}).
				ReceiveReply(&interfaces.SwInterfaceSetRxModeReply{}); err != nil {
				return fmt.Errorf("rx mode of memif %d: %w", id, err)
			}
		}
	}
	ups, err := connect(existing, batch)
	if err != nil {
		return err
	}
	if len(ups) == 0 {
		return fmt.Errorf("no link came up")
	}
	at := func(q float64) time.Duration { return ups[int(q*float64(len(ups)-1))] }
	fmt.Printf("existing=%d batch=%d: up %d, first %v, p50 %v, p99 %v, last %v (%.0f links/s)\n", existing, batch, len(ups),
		ups[0].Round(time.Millisecond), at(0.5).Round(time.Millisecond), at(0.99).Round(time.Millisecond), ups[len(ups)-1].Round(time.Millisecond),
		float64(len(ups))/ups[len(ups)-1].Seconds())
	// VPP's CPU while every link idles: polling queues keep its main
	// thread busy, interrupt/adaptive ones let it sleep.
	cpu := func() float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", v.Pid()))
		if err != nil {
			return 0
		}
		f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
		var ut, st float64
		fmt.Sscan(f[11], &ut)
		fmt.Sscan(f[12], &st)
		return (ut + st) / 100 // clock ticks (USER_HZ 100) → seconds
	}
	c0, t0 := cpu(), time.Now()
	time.Sleep(3 * time.Second)
	fmt.Printf("VPP CPU while idle: %.0f%% of a core\n", 100*(cpu()-c0)/time.Since(t0).Seconds())
	for _, cmd := range []string{"show interface rx-placement", "show runtime"} {
		out, _ := v.CLI(context.Background(), cmd)
		lines := strings.Split(out, "\n")
		fmt.Printf("--- %s (%d lines)\n%s\n", cmd, len(lines), strings.Join(lines[:min(len(lines), 14)], "\n"))
	}
	return nil
}
