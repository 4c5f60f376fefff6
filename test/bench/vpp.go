package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.fd.io/govpp"
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/core"
)

// pipelineWindow bounds the requests in flight on one channel: deep enough to
// keep VPP busy, small enough to stay inside govpp's buffered reply channel.
const pipelineWindow = 256

// VPP is the benchmark's own govpp client: it observes what VPP really has
// (not what the agent says) and issues the floor's calls.
type VPP struct {
	socket string
	conn   *core.Connection
	ch     api.Channel
}

// DialVPP connects to the binary API socket, retrying until ctx ends: VPP
// (or vppsim) may still be starting or restarting.
func DialVPP(ctx context.Context, socket string) (*VPP, error) {
	var last error
	for {
		conn, err := govpp.Connect(socket)
		if err == nil {
			ch, err := conn.NewAPIChannelBuffered(pipelineWindow*2, pipelineWindow*2)
			if err == nil {
				ch.SetReplyTimeout(30 * time.Second)
				return &VPP{socket: socket, conn: conn, ch: ch}, nil
			}
			conn.Disconnect()
			last = err
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to VPP at %s: %w (last error: %v)", socket, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close disconnects.
func (v *VPP) Close() {
	v.ch.Close()
	v.conn.Disconnect()
}

// Snapshot is what VPP has, as far as cross-connects go.
type Snapshot struct {
	ByTag map[string]uint32 // interface tag (the agent's interface name) → sw_if_index
	Up    map[uint32]bool   // admin up
	XC    map[uint32]uint32 // xconnect rx → tx
}

// Snapshot dumps interfaces and xconnects.
func (v *VPP) Snapshot(ctx context.Context) (*Snapshot, error) {
	s := &Snapshot{ByTag: map[string]uint32{}, Up: map[uint32]bool{}, XC: map[uint32]uint32{}}
	req := v.ch.SendMultiRequest(&interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	for {
		d := &interfaces.SwInterfaceDetails{}
		last, err := req.ReceiveReply(d)
		if err != nil {
			return nil, fmt.Errorf("sw_interface_dump: %w", err)
		}
		if last {
			break
		}
		idx := uint32(d.SwIfIndex)
		if d.Tag != "" {
			s.ByTag[d.Tag] = idx
		}
		s.Up[idx] = d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0
	}
	xc, err := v.Xconnects(ctx)
	if err != nil {
		return nil, err
	}
	s.XC = xc
	return s, nil
}

// Xconnects dumps the L2 cross-connect table.
func (v *VPP) Xconnects(ctx context.Context) (map[uint32]uint32, error) {
	out := map[uint32]uint32{}
	req := v.ch.SendMultiRequest(&l2.L2XconnectDump{})
	for {
		d := &l2.L2XconnectDetails{}
		last, err := req.ReceiveReply(d)
		if err != nil {
			return nil, fmt.Errorf("l2_xconnect_dump: %w", err)
		}
		if last {
			return out, nil
		}
		out[uint32(d.RxSwIfIndex)] = uint32(d.TxSwIfIndex)
	}
}

// Programmed reports whether cross-connect name is fully in VPP: both derived
// interfaces exist (found by tag) and are admin up, and both directions are
// cross-connected to each other.
func (s *Snapshot) Programmed(name string) bool {
	a, okA := s.ByTag[name+"-a"]
	b, okB := s.ByTag[name+"-b"]
	if !okA || !okB || !s.Up[a] || !s.Up[b] {
		return false
	}
	ta, okA := s.XC[a]
	tb, okB := s.XC[b]
	return okA && okB && ta == b && tb == a
}

// Count returns how many of names are programmed.
func (s *Snapshot) Count(names []string) int {
	n := 0
	for _, name := range names {
		if s.Programmed(name) {
			n++
		}
	}
	return n
}

// CountTagged returns how many interfaces have a tag starting with prefix.
func (s *Snapshot) CountTagged(prefix string) int {
	n := 0
	for tag := range s.ByTag {
		if strings.HasPrefix(tag, prefix) {
			n++
		}
	}
	return n
}

// pipeline sends len(reqs) requests on one channel with up to pipelineWindow
// in flight, receiving replies in order into replies[i] (made by newReply).
// It is the fastest way govpp offers to issue many independent calls.
func (v *VPP) pipeline(ctx context.Context, reqs []api.Message, newReply func() api.Message) ([]api.Message, error) {
	replies := make([]api.Message, len(reqs))
	inflight := make(chan api.RequestCtx, pipelineWindow)
	var sendErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(inflight)
		for _, r := range reqs {
			if ctx.Err() != nil {
				sendErr = ctx.Err()
				return
			}
			inflight <- v.ch.SendRequest(r)
		}
	}()
	var errs []error
	i := 0
	for rc := range inflight {
		rep := newReply()
		if err := rc.ReceiveReply(rep); err != nil && len(errs) < 5 {
			errs = append(errs, fmt.Errorf("%s #%d: %w", reqs[i].GetMessageName(), i, err))
		}
		replies[i] = rep
		i++
	}
	wg.Wait()
	if sendErr != nil {
		errs = append(errs, sendErr)
	}
	return replies, errors.Join(errs...)
}

// FloorResult is what the floor measured.
type FloorResult struct {
	Seconds    float64
	WriteCalls int
}

// Floor issues, straight from govpp and pipelined, the VPP calls the agent
// needs for n cross-connects (register the memif socket files, create two
// memifs each, tag them, set them up, cross-connect both ways), then removes
// them again (not timed). files are socket filenames the agent does not use.
func (v *VPP) Floor(ctx context.Context, n int, files []string) (FloorResult, error) {
	var res FloorResult
	start := time.Now()
	var socks []api.Message
	for i, f := range files {
		socks = append(socks, &memif.MemifSocketFilenameAddDelV2{IsAdd: true, SocketID: uint32(1000 + i), SocketFilename: f})
	}
	if _, err := v.pipeline(ctx, socks, func() api.Message { return &memif.MemifSocketFilenameAddDelV2Reply{} }); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	creates := make([]api.Message, 0, 2*n)
	for i := 0; i < 2*n; i++ {
		sock, id := memifSlot(i/2, i%2, len(files))
		creates = append(creates, &memif.MemifCreateV2{Role: memif.MEMIF_ROLE_API_MASTER, RxQueues: 1, TxQueues: 1,
			ID: id, SocketID: uint32(1000 + sock), RingSize: 1024, BufferSize: 2048})
	}
	reps, err := v.pipeline(ctx, creates, func() api.Message { return &memif.MemifCreateV2Reply{} })
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	idx := make([]interface_types.InterfaceIndex, len(reps))
	for i, r := range reps {
		idx[i] = r.(*memif.MemifCreateV2Reply).SwIfIndex
	}
	cfg := make([]api.Message, 0, 4*n)
	for i, x := range idx {
		cfg = append(cfg,
			&interfaces.SwInterfaceTagAddDel{IsAdd: true, SwIfIndex: x, Tag: fmt.Sprintf("floor%d", i)},
			&interfaces.SwInterfaceSetFlags{SwIfIndex: x, Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP})
	}
	if _, err := v.pipeline(ctx, cfg, newGenericReply(cfg)); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	xcs := make([]api.Message, 0, 2*n)
	for i := 0; i+1 < len(idx); i += 2 {
		xcs = append(xcs,
			&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: idx[i], TxSwIfIndex: idx[i+1], Enable: true},
			&l2.SwInterfaceSetL2Xconnect{RxSwIfIndex: idx[i+1], TxSwIfIndex: idx[i], Enable: true})
	}
	if _, err := v.pipeline(ctx, xcs, func() api.Message { return &l2.SwInterfaceSetL2XconnectReply{} }); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	res.Seconds = time.Since(start).Seconds()
	res.WriteCalls = len(socks) + len(creates) + len(cfg) + len(xcs)

	dels := make([]api.Message, 0, len(idx))
	for _, x := range idx {
		dels = append(dels, &memif.MemifDelete{SwIfIndex: x})
	}
	if _, err := v.pipeline(ctx, dels, func() api.Message { return &memif.MemifDeleteReply{} }); err != nil {
		return res, fmt.Errorf("floor cleanup: %w", err)
	}
	var unsocks []api.Message
	for i := range files {
		unsocks = append(unsocks, &memif.MemifSocketFilenameAddDelV2{IsAdd: false, SocketID: uint32(1000 + i)})
	}
	if _, err := v.pipeline(ctx, unsocks, func() api.Message { return &memif.MemifSocketFilenameAddDelV2Reply{} }); err != nil {
		return res, fmt.Errorf("floor cleanup: %w", err)
	}
	return res, nil
}

// newGenericReply returns reply factories matching an alternating tag/flags list.
func newGenericReply(reqs []api.Message) func() api.Message {
	i := 0
	return func() api.Message {
		defer func() { i++ }()
		if _, ok := reqs[i].(*interfaces.SwInterfaceTagAddDel); ok {
			return &interfaces.SwInterfaceTagAddDelReply{}
		}
		return &interfaces.SwInterfaceSetFlagsReply{}
	}
}

// isWrite reports whether a VPP message name changes state: everything but
// dumps, pings, event subscriptions, version and CLI queries and the
// socket client's own handshake.
func isWrite(name string) bool {
	for _, p := range []string{"control_ping", "want_", "show_", "sockclnt_", "memclnt_", "get_", "cli_inband", "cli"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return !strings.HasSuffix(name, "_dump")
}

// WriteCalls sums the state-changing calls in a per-message count table.
func WriteCalls(counts map[string]uint64) uint64 {
	var n uint64
	for name, c := range counts {
		if isWrite(name) {
			n += c
		}
	}
	return n
}

// IfEvent is one sw_interface_event.
type IfEvent struct {
	SwIfIndex uint32
	AdminUp   bool
	Deleted   bool
}

// WatchInterfaces subscribes to VPP's interface events until stop is called.
// Events that arrive while the reader is slow are dropped by govpp, which is
// fine for a benchmark that reads them promptly.
func (v *VPP) WatchInterfaces(ctx context.Context) (<-chan IfEvent, func(), error) {
	// A connection of its own: VPP (and vppsim) queue events behind the
	// replies of the same client, and a large dump on that client would
	// delay them or, in vppsim, get the client dropped.
	ev, err := DialVPP(ctx, v.socket)
	if err != nil {
		return nil, nil, err
	}
	raw := make(chan api.Message, 4096)
	sub, err := ev.ch.SubscribeNotification(raw, &interfaces.SwInterfaceEvent{})
	if err != nil {
		ev.Close()
		return nil, nil, fmt.Errorf("subscribe sw_interface_event: %w", err)
	}
	if err := ev.ch.SendRequest(&interfaces.WantInterfaceEvents{EnableDisable: 1, PID: uint32(os.Getpid())}).
		ReceiveReply(&interfaces.WantInterfaceEventsReply{}); err != nil {
		_ = sub.Unsubscribe()
		ev.Close()
		return nil, nil, fmt.Errorf("want_interface_events: %w", err)
	}
	out := make(chan IfEvent, 4096)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case m := <-raw:
				e, ok := m.(*interfaces.SwInterfaceEvent)
				if !ok {
					continue
				}
				select {
				case out <- IfEvent{SwIfIndex: uint32(e.SwIfIndex), AdminUp: e.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0, Deleted: e.Deleted}:
				case <-done:
					return
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	stop := func() {
		close(done)
		_ = sub.Unsubscribe()
		ev.Close()
	}
	return out, stop, nil
}
