package ifstats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"go.fd.io/govpp/adapter/statsclient"
	govppapi "go.fd.io/govpp/api"
	"go.fd.io/govpp/core"
)

// DefaultSocket is where VPP serves its stats segment.
const DefaultSocket = "/run/vpp/stats.sock"

// Counters of one interface, cumulative since it was created in VPP.
type Counters struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	Drops     uint64 `json:"drops"`
	RxErrors  uint64 `json:"rx_errors"`
	TxErrors  uint64 `json:"tx_errors"`
	RxMiss    uint64 `json:"rx_miss"`
	RxNoBuf   uint64 `json:"rx_no_buf"`
}

// Names maps VPP interface indices to logical names; ifplugin's *Plugin
// implements it.
type Names interface {
	NameOf(swIfIndex uint32) (string, bool)
}

// Options configure a Collector.
type Options struct {
	Socket   string        // stats socket (DefaultSocket when empty)
	Interval time.Duration // poll period (1s when zero)
	Names    Names
	Logger   *slog.Logger
	// OnUpdate, if set, receives each new snapshot (by logical name) from
	// the collector's goroutine.
	OnUpdate func(map[string]Counters)
}

// Collector polls VPP's stats segment. Counters are read by polling, as
// from VPP itself: the segment is shared memory, a read costs no API call.
type Collector struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	snap      map[string]Counters
	connected bool
}

// New returns a collector; Run starts it.
func New(opts Options) *Collector {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{opts: opts, log: log.With("component", "ifstats"), snap: map[string]Counters{}}
}

// Snapshot returns the last counters read, by logical interface name.
func (c *Collector) Snapshot() map[string]Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Counters, len(c.snap))
	for k, v := range c.snap {
		out[k] = v
	}
	return out
}

// Connected reports whether the stats segment is being read.
func (c *Collector) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// Run connects to the stats socket and polls until ctx ends, reconnecting
// with backoff when VPP (and with it the segment) goes away.
func (c *Collector) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := core.ConnectStats(statsclient.NewStatsClient(c.opts.Socket, statsclient.SetSocketRetryTimeout(time.Second)))
		if err != nil {
			c.log.Debug("stats segment not available", "socket", c.opts.Socket, "error", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		c.setConnected(true)
		c.log.Info("stats segment connected", "socket", c.opts.Socket)
		err = c.poll(ctx, conn)
		conn.Disconnect()
		c.setConnected(false)
		if err != nil {
			c.log.Warn("stats segment lost", "socket", c.opts.Socket, "error", err)
		}
	}
}

func (c *Collector) setConnected(v bool) {
	c.mu.Lock()
	c.connected = v
	c.mu.Unlock()
}

// poll reads the interface counters every Interval until an error.
func (c *Collector) poll(ctx context.Context, conn *core.StatsConnection) error {
	var stats govppapi.InterfaceStats
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	failures := 0
	for {
		if err := guardFault(func() error { return conn.GetInterfaceStats(&stats) }); err != nil {
			var fe *FaultError
			if errors.As(err, &fe) {
				// The mapping no longer holds what the directory says
				// (a VPP that died or is starting): start over.
				return err
			}
			// A read can race with a layout change; only a run of
			// failures means the segment is gone.
			if failures++; failures >= 3 {
				return fmt.Errorf("read interface stats: %w", err)
			}
		} else {
			failures = 0
			c.store(stats.Interfaces)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// FaultError is a memory fault met while reading the shared stats segment.
type FaultError struct{ Err error }

func (e *FaultError) Error() string { return "stats segment read faulted: " + e.Err.Error() }
func (e *FaultError) Unwrap() error { return e.Err }

// guardFault runs read, which dereferences VPP's shared memory, and turns a
// memory fault into an error. The stats segment is input from another
// process: a VPP that is dying or starting can leave its directory pointing
// outside the mapping (VPP 25.10 killed under a running agent did, and the
// agent died with SIGSEGV in govpp's statsclient). Go's panic-on-fault mode
// is per goroutine and made for exactly this: memory-mapped data.
func guardFault(read func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			re, ok := r.(interface {
				error
				Addr() uintptr
			})
			if !ok {
				panic(r) // not a memory fault: a bug, not input
			}
			err = &FaultError{Err: re}
		}
	}()
	return read()
}

func (c *Collector) store(ifs []govppapi.InterfaceCounters) {
	snap := make(map[string]Counters, len(ifs))
	for _, i := range ifs {
		name, ok := c.opts.Names.NameOf(i.InterfaceIndex)
		if !ok {
			continue // not one of the agent's interfaces
		}
		snap[name] = Counters{
			RxPackets: i.Rx.Packets, RxBytes: i.Rx.Bytes,
			TxPackets: i.Tx.Packets, TxBytes: i.Tx.Bytes,
			Drops: i.Drops, RxErrors: i.RxErrors, TxErrors: i.TxErrors,
			RxMiss: i.RxMiss, RxNoBuf: i.RxNoBuf,
		}
	}
	c.mu.Lock()
	c.snap = snap
	c.mu.Unlock()
	if c.opts.OnUpdate != nil {
		c.opts.OnUpdate(snap)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
