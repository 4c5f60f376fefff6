package kvscheduler

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
)

// This file is the scheduler's contract with descriptors and with its
// callers (orchestrator, REST, agentctl). It imports no model, no etcd and
// no govpp.

// Descriptor tells the scheduler how to handle one kind of value. V is the
// value's message type, M the metadata the descriptor keeps per value (a VPP
// sw_if_index, for example). Register it with RegisterDescriptor; the
// scheduler wraps it into an untyped adapter (generics instead of Ligato's
// generated adapters).
//
// Every callback may be called from several goroutines at once for different
// keys (independent operations are executed in parallel so that VPP calls are
// pipelined); it must be safe for that.
type Descriptor[V proto.Message, M any] struct {
	// Name identifies the descriptor in logs, history and metrics.
	Name string
	// KeyPrefix selects the keys this descriptor handles.
	KeyPrefix string

	// Validate rejects a value that can never be applied; the value becomes
	// INVALID, is never retried and affects no other key. Optional.
	Validate func(key string, v V) error
	// Equivalent reports whether two values need no operation to get from one
	// to the other. Optional; proto.Equal by default.
	Equivalent func(key string, old, new V) bool
	// Create applies a value and returns its metadata.
	Create func(ctx context.Context, key string, v V) (M, error)
	// Update changes an applied value in place. Optional: when nil, or when
	// UpdateWithRecreate says so, the scheduler deletes and re-creates.
	Update func(ctx context.Context, key string, old, new V, oldMeta M) (M, error)
	// UpdateWithRecreate reports whether a change needs delete + create.
	// Optional.
	UpdateWithRecreate func(key string, old, new V, meta M) bool
	// Delete removes an applied value.
	Delete func(ctx context.Context, key string, v V, meta M) error
	// Retrieve lists what exists on the southbound side (VPP) for this
	// descriptor's keys. Optional: without it, resync trusts the scheduler's
	// own record. desired holds the values the scheduler wants, to help
	// correlate (e.g. fill defaults the southbound cannot report).
	Retrieve func(ctx context.Context, desired []KV[V]) ([]Retrieved[V, M], error)
	// RetrieveAfter names descriptors whose Retrieve must run first (their
	// metadata, e.g. interface indices, is needed to retrieve this one).
	RetrieveAfter []string
	// Dependencies lists keys that must be CONFIGURED before this value is
	// created; while any is missing the value is PENDING. Optional.
	Dependencies func(key string, v V) []Dependency
	// DerivedValues lists values derived from this one. Each is handled by
	// its own descriptor, created after and deleted before its parent, and
	// re-derived when the parent changes. Optional.
	DerivedValues func(key string, v V) []KeyValue
}

// KV is a typed key-value pair.
type KV[V proto.Message] struct {
	Key   string
	Value V
}

// KeyValue is an untyped key-value pair.
type KeyValue struct {
	Key   string
	Value proto.Message
}

// Retrieved is one value found on the southbound side.
type Retrieved[V proto.Message, M any] struct {
	Key      string
	Value    V
	Metadata M
	// Origin tells whether the agent created it (FromNB: it may be deleted
	// when no longer desired) or it was there independently (FromSB, e.g.
	// VPP's local0: never touched, but it satisfies dependencies).
	Origin Origin
}

// Origin of a value.
type Origin int

const (
	FromNB Origin = iota // created by the agent from desired state
	FromSB               // found in the southbound, not the agent's
)

// Dependency is one key a value needs before it can be created.
type Dependency struct {
	Label string // human-readable reason, e.g. "interface-exists"
	Key   string
}

// State of a value.
type State string

const (
	StateNonexistent State = "NONEXISTENT" // not desired, not applied
	StatePending     State = "PENDING"     // desired, waiting for dependencies
	StateConfigured  State = "CONFIGURED"  // applied and equal to desired
	StateFailed      State = "FAILED"      // last operation failed; retried with backoff
	StateInvalid     State = "INVALID"     // rejected by Validate; not retried
	StateObtained    State = "OBTAINED"    // found in the southbound, not managed
	StateRemoved     State = "REMOVED"     // deleted on request
)

// ValueStatus is the externally visible state of one key.
type ValueStatus struct {
	Key        string        `json:"key"`
	Descriptor string        `json:"descriptor"`
	State      State         `json:"state"`
	Error      string        `json:"error,omitempty"`
	Derived    bool          `json:"derived,omitempty"`
	Parent     string        `json:"parent,omitempty"`   // key of the value it derives from
	Missing    []string      `json:"missing,omitempty"`  // dependencies not yet satisfied (PENDING)
	Value      proto.Message `json:"-"`                  // desired value, nil if none
	Metadata   any           `json:"metadata,omitempty"` // descriptor metadata, if applied
	LastChange time.Time     `json:"last_change"`
	Retries    int           `json:"retries,omitempty"` // consecutive failed attempts
}

// TxnKind distinguishes the three kinds of transaction.
type TxnKind string

const (
	// TxnChange applies incremental changes to the desired state.
	TxnChange TxnKind = "change"
	// TxnFullResync replaces the whole desired state with Values and
	// reconciles it against what Retrieve reports.
	TxnFullResync TxnKind = "full-resync"
	// TxnDownstreamResync keeps the desired state and reconciles it against
	// what Retrieve reports (after VPP restarted, or on request).
	TxnDownstreamResync TxnKind = "downstream-resync"
	// TxnRetry is started by the scheduler itself to retry failed values.
	TxnRetry TxnKind = "retry"
)

// Txn is a batch of changes to the desired state. A nil Value deletes.
type Txn struct {
	Kind        TxnKind
	Description string
	Values      []KeyValue
}

// Operation kinds recorded in history.
type OpKind string

const (
	OpCreate   OpKind = "CREATE"
	OpUpdate   OpKind = "UPDATE"
	OpRecreate OpKind = "RECREATE"
	OpDelete   OpKind = "DELETE"
)

// Op is one executed operation.
type Op struct {
	Key       string        `json:"key"`
	Op        OpKind        `json:"op"`
	Derived   bool          `json:"derived,omitempty"`
	PrevState State         `json:"prev_state"`
	NewState  State         `json:"new_state"`
	Error     string        `json:"error,omitempty"`
	Retry     bool          `json:"retry,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
}

// TxnRecord is one finished transaction, kept in history.
type TxnRecord struct {
	Seq         uint64        `json:"seq"`
	Kind        TxnKind       `json:"kind"`
	Description string        `json:"description,omitempty"`
	Start       time.Time     `json:"start"`
	Duration    time.Duration `json:"duration_ns"`
	Changes     []string      `json:"changes"` // keys changed by the request (deletes included)
	Ops         []Op          `json:"ops"`
	// Errors per key for values that ended FAILED or INVALID in this txn.
	Errors map[string]string `json:"errors,omitempty"`
}

// Options tune the scheduler.
type Options struct {
	// HistorySize is how many transactions stay visible (default 100).
	HistorySize int
	// Parallelism bounds how many independent operations run at once
	// (default 32; 1 makes execution strictly sequential).
	Parallelism int
	// RetryInitial and RetryMax bound the exponential retry backoff
	// (defaults 100ms and 30s). Failed values are retried until they succeed
	// or are no longer desired.
	RetryInitial, RetryMax time.Duration
	// Logger receives one structured line per event (slog); nil discards.
	Logger Logger
}

// Logger is the subset of *slog.Logger the scheduler uses.
type Logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
	Debug(msg string, args ...any)
}

// Watcher receives the statuses that changed in one transaction, after it
// finished, in transaction order. It must not block for long.
type Watcher func(changed []ValueStatus)

// API is what the scheduler offers its callers; *Scheduler implements it.
// Consumers (orchestrator, REST) should declare the subset they use.
type API interface {
	// Commit runs a transaction and waits for it; transactions run one at a
	// time in commit order. The error is only for a transaction that could
	// not run (context cancelled, scheduler closed); per-value failures are
	// in the record.
	Commit(ctx context.Context, txn Txn) (TxnRecord, error)
	// Status returns the status of every known key (desired, derived,
	// obtained), sorted by key.
	Status() []ValueStatus
	// StatusOf returns the status of one key.
	StatusOf(key string) (ValueStatus, bool)
	// StatusPrefix returns the status of every known key that starts with
	// prefix, sorted by key: what a caller interested in one kind of value
	// asks instead of copying all of them.
	StatusPrefix(prefix string) []ValueStatus
	// History returns up to the last n transactions, oldest first.
	History(n int) []TxnRecord
	// Watch registers a watcher; the returned func unregisters it.
	Watch(w Watcher) (cancel func())
	// Close stops retries and background work.
	Close()
}

// RetrievedValue is one value the southbound reports, as returned by
// (*Scheduler).Retrieve for dumps.
type RetrievedValue struct {
	Key        string        `json:"key"`
	Descriptor string        `json:"descriptor"`
	Value      proto.Message `json:"-"`
	Origin     Origin        `json:"origin"`
	Metadata   any           `json:"metadata,omitempty"`
}
