package kvscheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// Scheduler implements API. Create it with New, register descriptors, then
// Commit transactions.
type Scheduler struct {
	opts Options
	log  Logger

	// sem serializes transactions (and Retrieve) while letting a waiting
	// caller give up through its context.
	sem chan struct{}

	// mu guards everything below. The transaction goroutine holds it while
	// planning and releases it while descriptor callbacks run, so Status
	// never waits for VPP.
	mu              sync.RWMutex
	descs           []*adapter
	nodes           map[string]*node
	depIndex        keyIndex // dependency key -> keys whose desired value needs it
	appliedDepIndex keyIndex // dependency key -> keys whose applied value needs it
	failed          map[string]struct{}
	history         []pastTxn
	seq             uint64

	wmu       sync.Mutex
	watchers  map[uint64]Watcher
	nextWatch uint64

	closeOnce sync.Once
	closed    chan struct{}
	stop      context.CancelFunc
	stopCtx   context.Context
	wake      chan struct{}
	wg        sync.WaitGroup
}

var _ API = (*Scheduler)(nil)

// New returns a running scheduler; Close stops its retry goroutine.
func New(opts Options) *Scheduler {
	if opts.HistorySize <= 0 {
		opts.HistorySize = 100
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = 32
	}
	if opts.RetryInitial <= 0 {
		opts.RetryInitial = 100 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.RetryMax < opts.RetryInitial {
		opts.RetryMax = opts.RetryInitial
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{
		opts:            opts,
		log:             lg,
		sem:             make(chan struct{}, 1),
		nodes:           make(map[string]*node),
		depIndex:        keyIndex{},
		appliedDepIndex: keyIndex{},
		failed:          make(map[string]struct{}),
		watchers:        make(map[uint64]Watcher),
		closed:          make(chan struct{}),
		stop:            cancel,
		stopCtx:         ctx,
		wake:            make(chan struct{}, 1),
	}
	s.wg.Add(1)
	go s.retryLoop()
	return s
}

func (s *Scheduler) addDescriptor(a *adapter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.log = s.log
	for _, d := range s.descs {
		if d.name == a.name {
			return fmt.Errorf("kvscheduler: descriptor %s already registered", a.name)
		}
		if d.prefix == a.prefix {
			return fmt.Errorf("kvscheduler: descriptors %s and %s share key prefix %q", d.name, a.name, a.prefix)
		}
	}
	s.descs = append(s.descs, a)
	// Keys seen before this descriptor existed now have a handler.
	for k, n := range s.nodes {
		if n.desc == nil && strings.HasPrefix(k, a.prefix) {
			n.desc = s.descFor(k)
		}
	}
	return nil
}

// debugEnabled reports whether the logger would write a debug record: a
// per-operation record's arguments cost an allocation each even when the
// level drops it (at 10k cross-connects, 50,000 per bulk apply). A Logger
// that cannot say is asked every time.
func (s *Scheduler) debugEnabled() bool {
	l, ok := s.log.(interface {
		Enabled(context.Context, slog.Level) bool
	})
	return !ok || l.Enabled(context.Background(), slog.LevelDebug)
}

// descFor returns the descriptor with the longest prefix of key, or nil.
func (s *Scheduler) descFor(key string) *adapter {
	var best *adapter
	for _, d := range s.descs {
		if strings.HasPrefix(key, d.prefix) && (best == nil || len(d.prefix) > len(best.prefix)) {
			best = d
		}
	}
	return best
}

// ErrResyncAbandoned is Commit's answer when a resync could not read a
// descriptor it never read before and the scheduler closed or the caller
// gave up: nothing was changed.
var ErrResyncAbandoned = errors.New("kvscheduler: resync abandoned before any change: a descriptor could not be retrieved")

// Commit runs txn after all earlier transactions finished.
func (s *Scheduler) Commit(ctx context.Context, txn Txn) (TxnRecord, error) {
	return s.commit(ctx, txn, false)
}

func (s *Scheduler) commit(ctx context.Context, txn Txn, retryAll bool) (TxnRecord, error) {
	if err := s.acquire(ctx); err != nil {
		return TxnRecord{}, err
	}
	defer s.release()
	switch txn.Kind {
	case "":
		txn.Kind = TxnChange
	case TxnChange, TxnFullResync, TxnDownstreamResync, TxnRetry:
	default:
		return TxnRecord{}, fmt.Errorf("kvscheduler: unknown transaction kind %q", txn.Kind)
	}
	// Once started, a transaction finishes even if the caller gives up:
	// stopping half way would leave the southbound between two plans.
	// The caller's context rides along for the one step that may give up
	// safely: retrying a failed retrieve before anything was changed.
	rec, changed, abandoned := s.run(context.WithValue(context.WithoutCancel(ctx), callerCtxKey{}, ctx), txn, retryAll)
	s.notify(changed)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if abandoned {
		return rec, ErrResyncAbandoned
	}
	return rec, nil
}

func (s *Scheduler) acquire(ctx context.Context) error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("kvscheduler: waiting for the transaction queue: %w", ctx.Err())
	case <-s.closed:
		return ErrClosed
	}
	select {
	case <-s.closed:
		<-s.sem
		return ErrClosed
	default:
		return nil
	}
}

func (s *Scheduler) release() { <-s.sem }

// Status returns every known key's status, sorted by key.
func (s *Scheduler) Status() []ValueStatus {
	s.mu.RLock()
	out := make([]ValueStatus, 0, len(s.nodes))
	for _, n := range s.nodes {
		if n.visible() {
			out = append(out, n.status())
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// StatusPrefix returns the status of every known key starting with prefix,
// sorted by key. Only matching keys are copied, so a periodic caller (the
// agent's counters) does not pay for every derived value at 10k
// cross-connects.
func (s *Scheduler) StatusPrefix(prefix string) []ValueStatus {
	s.mu.RLock()
	var out []ValueStatus
	for k, n := range s.nodes {
		if strings.HasPrefix(k, prefix) && n.visible() {
			out = append(out, n.status())
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// StatusOf returns one key's status.
func (s *Scheduler) StatusOf(key string) (ValueStatus, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodes[key]
	if n == nil || !n.visible() {
		return ValueStatus{}, false
	}
	return n.status(), true
}

// History returns up to the last n transactions, oldest first.
func (s *Scheduler) History(n int) []TxnRecord {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n <= 0 || n > len(s.history) {
		n = len(s.history)
	}
	out := make([]TxnRecord, 0, n)
	for i := len(s.history) - n; i < len(s.history); i++ {
		out = append(out, s.history[i].unpack())
	}
	return out
}

// Watch registers w for the statuses changed by each later transaction. w
// runs on the transaction's goroutine before the next transaction starts, so
// it must not call Commit or Retrieve.
func (s *Scheduler) Watch(w Watcher) (cancel func()) {
	s.wmu.Lock()
	id := s.nextWatch
	s.nextWatch++
	s.watchers[id] = w
	s.wmu.Unlock()
	return func() {
		s.wmu.Lock()
		delete(s.watchers, id)
		s.wmu.Unlock()
	}
}

func (s *Scheduler) notify(changed []ValueStatus) {
	if len(changed) == 0 {
		return
	}
	s.wmu.Lock()
	ids := make([]uint64, 0, len(s.watchers))
	for id := range s.watchers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	ws := make([]Watcher, 0, len(ids))
	for _, id := range ids {
		ws = append(ws, s.watchers[id])
	}
	s.wmu.Unlock()
	for _, w := range ws {
		w(append([]ValueStatus(nil), changed...))
	}
}

// Close stops the retry goroutine and refuses further transactions. It waits
// for a running transaction to finish.
func (s *Scheduler) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.stop()
	})
	s.wg.Wait()
}

// Retrieve reports what the southbound holds now, through every descriptor's
// Retrieve in RetrieveAfter order, without changing anything. It runs
// between transactions.
func (s *Scheduler) Retrieve(ctx context.Context) ([]RetrievedValue, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.release()
	s.mu.RLock()
	order, desired := s.retrievePlan()
	s.mu.RUnlock()
	var out []RetrievedValue
	for _, d := range order {
		got, err := d.retrieve(ctx, desired[d])
		if err != nil {
			return out, fmt.Errorf("kvscheduler: retrieve %s: %w", d.name, err)
		}
		out = append(out, got...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// retrievePlan returns the descriptors that can retrieve, dependencies
// (RetrieveAfter) first, and the desired values of each. Caller holds mu.
func (s *Scheduler) retrievePlan() ([]*adapter, map[*adapter][]KeyValue) {
	byName := make(map[string]*adapter, len(s.descs))
	for _, d := range s.descs {
		byName[d.name] = d
	}
	var order []*adapter
	state := make(map[*adapter]int) // 1 visiting, 2 done
	var visit func(d *adapter)
	visit = func(d *adapter) {
		if state[d] != 0 {
			return // done, or a RetrieveAfter cycle: registration order decides
		}
		state[d] = 1
		for _, name := range d.retrieveAfter {
			if dep := byName[name]; dep != nil {
				visit(dep)
			}
		}
		state[d] = 2
		if d.retrieve != nil {
			order = append(order, d)
		}
	}
	for _, d := range s.descs {
		visit(d)
	}
	desired := make(map[*adapter][]KeyValue, len(order))
	for k, n := range s.nodes {
		if n.desc != nil && n.desc.retrieve != nil && n.desired != nil && n.invalidErr() == nil {
			desired[n.desc] = append(desired[n.desc], KeyValue{Key: k, Value: n.desired})
		}
	}
	for _, kvs := range desired {
		sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	}
	return order, desired
}

// equalOrNil compares two optional values.
func equalOrNil(a, b proto.Message) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return proto.Equal(a, b)
}
