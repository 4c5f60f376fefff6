package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Scheduler is the part of the kvscheduler the orchestrator uses. Keys are
// agent-relative, as models builds them ("config/vpp/v2/interfaces/memif1").
type Scheduler interface {
	Commit(ctx context.Context, txn kvscheduler.Txn) (kvscheduler.TxnRecord, error)
	Watch(w kvscheduler.Watcher) (cancel func())
}

// Options configure an Orchestrator.
type Options struct {
	// Client talks to etcd (embedded or external). Required.
	Client *clientv3.Client
	// Label names the agent: its keys live under /vnf-agent/<label>/. Required.
	Label string
	// Scheduler receives the desired state. Required.
	Scheduler Scheduler
	// Logger gets one line per event; nil discards.
	Logger *slog.Logger

	// ListPageSize bounds one etcd range read during a re-list (default 1000).
	ListPageSize int64
	// MaxBatch bounds how many queued watch events are coalesced into one
	// TxnChange (default 10000).
	MaxBatch int
	// StatusTxnOps bounds the operations in one etcd status txn (default
	// 128, etcd's default --max-txn-ops).
	StatusTxnOps int
	// WriteTimeout bounds one etcd status txn (default 3s).
	WriteTimeout time.Duration
	// RetryMax caps the backoff between failed re-lists and failed status
	// writes (default 5s; the first retry waits 100ms).
	RetryMax time.Duration
	// MaxValueBytes and MaxKeysPerPrefix cap what etcd may ask for (caps.go;
	// defaults DefaultMaxValueBytes and DefaultMaxKeysPerPrefix). A value
	// over a cap is rejected with a per-key error, like a parse error.
	MaxValueBytes    int
	MaxKeysPerPrefix int
	// MaxInvalidStatus caps the rejected keys that get a status document
	// and a warning each (default DefaultMaxInvalidStatus); more are only
	// counted in Stats.ParseErrors.
	MaxInvalidStatus int
}

// Stats are the orchestrator's counters, for metrics.
type Stats struct {
	EtcdEvents        uint64 // config watch events received
	TxnsCommitted     uint64 // scheduler transactions committed (change + full resync)
	Resyncs           uint64 // full resyncs committed
	WatchRestarts     uint64 // watch ended by an error, compaction or reconnect
	ParseErrors       uint64 // config values rejected by models.Unmarshal
	StatusWrites      uint64 // status/oper-state keys put or deleted in etcd
	StatusTxns        uint64 // etcd txns used for those writes
	StatusWriteErrors uint64 // writes in etcd txns that failed (they stay queued and are retried)
	StatusQueued      int    // writes waiting for etcd now
}

// Orchestrator keeps the scheduler's desired state equal to etcd's config
// keys and mirrors the scheduler's per-key status back into etcd.
type Orchestrator struct {
	cli        *clientv3.Client
	sched      Scheduler
	log        *slog.Logger
	opts       Options
	root       string // /vnf-agent/<label>/
	configPref string // root + config/

	// mu guards applied and entries; the watch loop and the scheduler's
	// watcher both touch them.
	mu sync.Mutex
	// applied is what the orchestrator has given the scheduler: the last
	// valid value of every key (an invalid overwrite does not replace it).
	applied map[string]proto.Message
	// counts is the number of applied keys per model prefix (caps.go).
	counts map[string]int
	// nInvalid counts entries holding a value error (each has a status
	// document); nInvalidHidden the rejections past MaxInvalidStatus.
	nInvalid       int
	nInvalidHidden atomic.Uint64
	// ifStates is the last interface state per name in etcd (LastChange
	// cleared), so unchanged states are not written again; ifLoaded once
	// etcd's were read.
	ifMu     sync.Mutex
	ifStates map[string]*interfaces.InterfaceState
	ifLoaded bool
	// entries hold what each status key is rendered from.
	entries map[string]*statusEntry
	// staged collects status writes (nil deletes) until the critical
	// section ends.
	staged map[string][]byte

	queue     writeQueue
	resyncReq chan chan error
	reconnect chan struct{} // watch loop: connection came back
	connUp    chan struct{} // status writer: connection came back
	running   atomic.Bool
	ready     atomic.Bool

	nEvents, nTxns, nResyncs, nWatchRestarts, nParseErr atomic.Uint64
	nStatusWrites, nStatusTxns, nStatusFail             atomic.Uint64
}

// New checks the options and returns an orchestrator; Run starts it.
func New(o Options) (*Orchestrator, error) {
	if o.Client == nil || o.Scheduler == nil {
		return nil, errors.New("orchestrator: Client and Scheduler are required")
	}
	if o.Label == "" {
		return nil, errors.New("orchestrator: Label is required")
	}
	if o.ListPageSize <= 0 {
		o.ListPageSize = DefaultListPageSize
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.MaxKeysPerPrefix <= 0 {
		o.MaxKeysPerPrefix = DefaultMaxKeysPerPrefix
	}
	if o.MaxInvalidStatus <= 0 {
		o.MaxInvalidStatus = DefaultMaxInvalidStatus
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 10000
	}
	if o.StatusTxnOps <= 0 {
		o.StatusTxnOps = 128
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 3 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root := models.AgentRoot(o.Label)
	return &Orchestrator{
		cli:        o.Client,
		sched:      o.Scheduler,
		log:        log.With("component", "orchestrator", "label", o.Label),
		opts:       o,
		root:       root,
		configPref: root + models.ConfigDir,
		applied:    map[string]proto.Message{},
		counts:     map[string]int{},
		entries:    map[string]*statusEntry{},
		ifStates:   map[string]*interfaces.InterfaceState{},
		staged:     map[string][]byte{},
		queue:      newWriteQueue(),
		resyncReq:  make(chan chan error),
		reconnect:  make(chan struct{}, 1),
		connUp:     make(chan struct{}, 1),
	}, nil
}

// Ready reports whether the first full resync has been committed.
func (o *Orchestrator) Ready() bool { return o.ready.Load() }

// Stats returns a snapshot of the counters.
func (o *Orchestrator) Stats() Stats {
	return Stats{
		EtcdEvents:        o.nEvents.Load(),
		TxnsCommitted:     o.nTxns.Load(),
		Resyncs:           o.nResyncs.Load(),
		WatchRestarts:     o.nWatchRestarts.Load(),
		ParseErrors:       o.nParseErr.Load(),
		StatusWrites:      o.nStatusWrites.Load(),
		StatusTxns:        o.nStatusTxns.Load(),
		StatusWriteErrors: o.nStatusFail.Load(),
		StatusQueued:      o.queue.len(),
	}
}

// Resync re-lists etcd and commits a full resync, and waits for it. It
// needs Run to be running.
func (o *Orchestrator) Resync(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case o.resyncReq <- reply:
	case <-ctx.Done():
		return fmt.Errorf("resync request: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("resync: %w", ctx.Err())
	}
}

// Run lists, resyncs and watches etcd until ctx is done; it returns nil then.
// It also runs the status writer, so status reaches etcd only while Run runs.
func (o *Orchestrator) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("orchestrator: already running")
	}
	defer o.running.Store(false)
	unwatch := o.sched.Watch(o.onStatus)
	defer unwatch()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { o.runWriter(ctx) })
	wg.Go(func() { o.monitorConn(ctx) })

	bo := newBackoff(o.opts.RetryMax)
	var waiting []chan error
	for {
		rev, err := o.fullResync(ctx)
		for _, w := range waiting {
			w <- err
		}
		waiting = waiting[:0]
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d := bo.next()
			o.log.Warn("full resync failed, retrying", "error", err, "retry_in", d)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			case w := <-o.resyncReq:
				waiting = append(waiting, w)
			}
			continue
		}
		bo.reset()
		w, err := o.watch(ctx, rev+1)
		if ctx.Err() != nil {
			return nil
		}
		if w != nil {
			waiting = append(waiting, w)
			o.log.Info("resync requested")
			continue
		}
		o.nWatchRestarts.Add(1)
		o.log.Warn("config watch ended, re-listing", "error", err, "from_revision", rev+1)
	}
}

// monitorConn turns "etcd was unreachable and is back" into a re-list (the
// watch may have resumed, but a level-triggered re-list is what makes sure
// nothing was missed) and into an immediate status flush.
func (o *Orchestrator) monitorConn(ctx context.Context) {
	conn := o.cli.ActiveConnection()
	if conn == nil {
		return
	}
	state := conn.GetState()
	lost := false
	for conn.WaitForStateChange(ctx, state) {
		state = conn.GetState()
		switch state {
		case connectivity.Ready:
			if lost {
				lost = false
				o.log.Info("etcd reachable again")
				signal(o.reconnect)
				signal(o.connUp)
			}
		case connectivity.TransientFailure, connectivity.Connecting, connectivity.Idle:
			if !lost {
				lost = true
				o.log.Warn("etcd connection lost", "state", state.String())
			}
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

type backoff struct{ cur, max time.Duration }

func newBackoff(max time.Duration) *backoff { return &backoff{max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = 100 * time.Millisecond
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
