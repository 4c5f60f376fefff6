package cnf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// Mode is what the CNF does with its memif.
type Mode string

// The CNF's modes.
const (
	ModeGen     Mode = "gen"
	ModeSink    Mode = "sink"
	ModeReflect Mode = "reflect"
)

// Options describe the traffic side of a CNF (the memif side is memif.Config).
type Options struct {
	Mode Mode
	// IPMode means frames carry no Ethernet header (memif IP mode).
	IPMode bool
	// Batch is the burst size (default 64).
	Batch int
	// Spins is how often an idle receive queue is re-checked before sleeping on the
	// interrupt (default 64); 0 keeps the default, negative sleeps at once.
	Spins int

	// Generator.
	Rate     float64 // frames per second, all queues together; 0 = as fast as the ring takes
	Size     int     // frame size in bytes, 64..9000 (default 64)
	Stream   uint32  // stream id of queue 0; queue i uses Stream+i
	SrcMAC   [6]byte
	DstMAC   [6]byte
	Linger   time.Duration // after the last frame, keep the link this long for the peer to drain (default 500ms)
	Count    uint64        // gen: frames to send; sink/reflect: stop after receiving this many; 0 = no limit
	Duration time.Duration // gen: from link up; sink/reflect: from start; 0 = no limit

	// Sink and reflector.
	Idle     time.Duration // stop after this long without a frame, once traffic was seen; 0 = never
	SwapMACs bool          // reflect: swap source and destination MAC
	MaxFrame int           // receive buffer per frame (default 9216)

	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Batch == 0 {
		o.Batch = 64
	}
	if o.Spins == 0 {
		o.Spins = 64
	}
	if o.Spins < 0 {
		o.Spins = 0
	}
	if o.Size == 0 {
		o.Size = MinFrameSize
	}
	if o.MaxFrame == 0 {
		o.MaxFrame = 9216
	}
	if o.Linger == 0 {
		o.Linger = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Mode != ModeGen && o.Mode != ModeSink && o.Mode != ModeReflect:
		return fmt.Errorf("cnf: unknown mode %q (want gen, sink or reflect)", o.Mode)
	case o.Batch < 1 || o.Batch > 4096:
		return fmt.Errorf("cnf: batch %d outside 1..4096", o.Batch)
	case o.Size < MinFrameSize || o.Size > MaxFrameSize:
		return fmt.Errorf("cnf: frame size %d outside %d..%d", o.Size, MinFrameSize, MaxFrameSize)
	case o.Rate < 0:
		return fmt.Errorf("cnf: negative rate %v", o.Rate)
	case o.MaxFrame < MinFrameSize || o.MaxFrame > 1<<16:
		return fmt.Errorf("cnf: max frame %d outside %d..65536", o.MaxFrame, MinFrameSize)
	case o.Duration < 0 || o.Idle < 0 || o.Linger < 0:
		return errors.New("cnf: negative duration")
	}
	return nil
}

// Runner runs one CNF's traffic over a memif interface and keeps its counters. Run owns
// the worker goroutines (one per queue) and returns after they have all stopped.
type Runner struct {
	opts  Options
	log   *slog.Logger
	start time.Time
	c     counters

	seqMu sync.Mutex
	seq   *tracker

	// Generator state that outlives a connection: streams keep their sequence numbers and
	// unsent frames across a link flap; budget is what Count still allows.
	gens   []*genStream
	budget atomic.Uint64
	genEnd time.Time // set at the first link up when Duration is set

	running atomic.Bool
	ended   atomic.Int64 // elapsed nanoseconds when Run returned, 0 while running
}

// NewRunner validates opts and prepares a runner.
func NewRunner(opts Options) (*Runner, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	// start is fixed here, not in Run, so Snapshot may be called from another goroutine
	// before Run begins.
	r := &Runner{opts: opts, log: opts.Logger, seq: newTracker(), start: time.Now()}
	if opts.Count > 0 {
		r.budget.Store(opts.Count)
	}
	return r, nil
}

// Snapshot returns the current counters; safe from any goroutine, during and after Run.
func (r *Runner) Snapshot() Summary {
	var s Summary
	elapsed := time.Duration(r.ended.Load())
	if elapsed == 0 {
		elapsed = time.Since(r.start)
	}
	r.c.fill(&s, r.opts.Mode, elapsed)
	r.seqMu.Lock()
	t := r.seq.totals()
	r.seqMu.Unlock()
	s.Lost, s.Reordered, s.Duplicates, s.Foreign, s.Streams = t.lost, t.reordered, t.duplicates, t.foreign, t.streams
	return s
}

// Run moves traffic over iface, which the caller has created and connected, until the
// mode's work is done (count, duration, idle), ctx ends, or a queue fails beyond a link
// flap. Link flaps are survived: workers stop with the old queues and start again on the
// new ones. It returns the final summary; ctx ending is a normal stop, not an error.
func (r *Runner) Run(ctx context.Context, iface *memif.Interface) (Summary, error) {
	if !r.running.CompareAndSwap(false, true) {
		return Summary{}, errors.New("cnf: Run called twice")
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if r.opts.Mode != ModeGen && r.opts.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(runCtx, r.opts.Duration)
		defer cancel()
	}
	var monitor sync.WaitGroup
	if r.opts.Mode != ModeGen && r.opts.Idle > 0 {
		monitor.Add(1)
		go func() { defer monitor.Done(); r.watchIdle(runCtx, stop) }()
	}
	err := r.supervise(runCtx, stop, iface)
	stop()
	monitor.Wait()
	r.ended.Store(int64(max(time.Since(r.start), 1)))
	s := r.Snapshot()
	r.log.Info("cnf stopped", "mode", s.Mode, "sent", s.Sent, "received", s.Received, "lost", s.Lost,
		"reordered", s.Reordered, "duplicates", s.Duplicates, "pps", s.PPS)
	return s, err
}

// supervise runs the workers of one connection after another.
func (r *Runner) supervise(ctx context.Context, stop context.CancelFunc, iface *memif.Interface) error {
	for ctx.Err() == nil {
		if err := iface.WaitUp(ctx); err != nil {
			return nil
		}
		rx, tx := iface.RxQueues(), iface.TxQueues()
		if rx == nil || tx == nil {
			// Down again before we looked; wait for the next up.
			_ = iface.WaitDown(ctx)
			continue
		}
		r.c.linkUps.Add(1)
		info := iface.Info()
		r.log.Info("cnf link up", "mode", string(r.opts.Mode), "interface", info.Name, "role", info.Role.String(),
			"rx_queues", len(rx), "tx_queues", len(tx), "ring_size", info.RingSize)
		done, err := r.runConnection(ctx, stop, rx, tx)
		for _, q := range rx {
			r.c.rxDrops.Add(q.Stats().Drops)
		}
		if err != nil {
			return err
		}
		if done {
			if r.opts.Mode == ModeGen {
				r.linger(ctx, iface)
			}
			return nil
		}
		if ctx.Err() == nil {
			r.log.Info("cnf link down, waiting for the next connection", "interface", info.Name)
			_ = iface.WaitDown(ctx)
		}
	}
	return nil
}

// runConnection starts one worker per queue and waits for all of them. done reports that
// the mode's work is finished (not a link flap).
func (r *Runner) runConnection(ctx context.Context, stop context.CancelFunc, rx, tx []*memif.Queue) (bool, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		done = true
	)
	report := func(d bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		done = done && d
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch r.opts.Mode {
	case ModeGen:
		if r.genEnd.IsZero() && r.opts.Duration > 0 {
			r.genEnd = time.Now().Add(r.opts.Duration)
		}
		r.ensureGens(len(tx))
		for i, q := range tx {
			g := r.gens[i]
			wg.Add(1)
			go func() { defer wg.Done(); report(r.generate(ctx, g, q, len(tx))) }()
		}
	case ModeSink:
		for _, q := range rx {
			wg.Add(1)
			go func() { defer wg.Done(); report(r.sink(ctx, stop, q)) }()
		}
	case ModeReflect:
		for i, q := range rx {
			out := tx[i%len(tx)]
			wg.Add(1)
			go func() { defer wg.Done(); report(r.reflect(ctx, stop, q, out)) }()
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return true, errors.Join(errs...)
	}
	return done, errors.Join(errs...)
}

// linger keeps a finished generator's link up so the peer can drain the ring: closing the
// memif would take the frames still in shared memory with it.
func (r *Runner) linger(ctx context.Context, iface *memif.Interface) {
	lctx, cancel := context.WithTimeout(ctx, r.opts.Linger)
	defer cancel()
	_ = iface.WaitDown(lctx)
}

// watchIdle stops a receiving CNF once traffic has started and then paused for Idle.
func (r *Runner) watchIdle(ctx context.Context, stop context.CancelFunc) {
	tick := min(r.opts.Idle/4, 100*time.Millisecond)
	t := time.NewTicker(max(tick, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			last := r.c.last.Load()
			if last != 0 && time.Since(r.start)-time.Duration(last) > r.opts.Idle {
				r.log.Info("cnf idle, stopping", "idle", r.opts.Idle.String())
				stop()
				return
			}
		}
	}
}

// queueErr sorts a queue error: a link flap ends the worker without error, and so does a
// protocol violation by the peer (the memif disconnects and a slave reconnects); anything
// else, such as a frame larger than the whole ring, is a configuration error to report.
func (r *Runner) queueErr(op string, q *memif.Queue, err error) error {
	switch {
	case errors.Is(err, memif.ErrDisconnected), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	case errors.Is(err, memif.ErrBadDescriptor):
		r.log.Warn("cnf peer protocol error, link drops", "queue", q.Index(), "op", op, "err", err)
		return nil
	}
	return fmt.Errorf("memif queue %d %s: %w", q.Index(), op, err)
}
