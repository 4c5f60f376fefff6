package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// KeyStatus is the JSON document under /vnf-agent/<label>/status/<key>, one
// per northbound config key, so an etcdctl-only user sees what happened.
type KeyStatus struct {
	// Key is the agent-relative config key ("config/vpp/v2/interfaces/m1").
	Key   string            `json:"key"`
	State kvscheduler.State `json:"state"`
	// Error is the scheduler's error, or the parse error of a value that
	// never was valid (State INVALID).
	Error string `json:"error,omitempty"`
	// ValueError is set when etcd holds an invalid value for a key that had
	// a valid one: the last valid value stays applied (State tells how it
	// is doing) until the key is fixed or deleted.
	ValueError string   `json:"value_error,omitempty"`
	LastChange string   `json:"last_change"` // RFC3339
	Missing    []string `json:"missing,omitempty"`
	Retries    int      `json:"retries,omitempty"`
	// Derived lists the values the scheduler derived from this one.
	Derived []DerivedStatus `json:"derived,omitempty"`
	// Counters are the value's packet counters (a cross-connect's or an
	// interface's), as last published by the agent.
	Counters json.RawMessage `json:"counters,omitempty"`
}

// DerivedStatus is the state of one derived value.
type DerivedStatus struct {
	Key   string            `json:"key"`
	State kvscheduler.State `json:"state"`
	Error string            `json:"error,omitempty"`
	// Missing names what a PENDING derived value waits for (a cross-connect's
	// VXLAN tunnel waits for its uplink).
	Missing []string `json:"missing,omitempty"`
}

// statusEntry is what one status document is rendered from. It keeps only
// the fields the document shows (not whole ValueStatus copies), and the
// derived values as a small sorted slice: at 10k cross-connects these
// entries are a large part of the agent's memory.
type statusEntry struct {
	sched      *schedState
	valueErr   string
	valueErrAt time.Time
	derived    []DerivedStatus // sorted by key
	counters   json.RawMessage
}

// schedState is the scheduler's view of a northbound key.
type schedState struct {
	State      kvscheduler.State
	Error      string
	Missing    []string
	Retries    int
	LastChange time.Time
}

// setDerived records (or, when gone, forgets) one derived value's state.
func (e *statusEntry) setDerived(vs kvscheduler.ValueStatus) {
	i := sort.Search(len(e.derived), func(i int) bool { return e.derived[i].Key >= vs.Key })
	found := i < len(e.derived) && e.derived[i].Key == vs.Key
	switch {
	case gone(vs.State) && found:
		e.derived = slices.Delete(e.derived, i, i+1)
		if len(e.derived) == 0 {
			e.derived = nil
		}
	case gone(vs.State):
	case found:
		e.derived[i] = DerivedStatus{Key: vs.Key, State: vs.State, Error: vs.Error, Missing: vs.Missing}
	default:
		e.derived = slices.Insert(e.derived, i, DerivedStatus{Key: vs.Key, State: vs.State, Error: vs.Error, Missing: vs.Missing})
	}
}

func gone(s kvscheduler.State) bool {
	return s == kvscheduler.StateRemoved || s == kvscheduler.StateNonexistent
}

// onStatus is the scheduler's Watcher: it only updates memory and queues
// writes, so it never waits for etcd.
func (o *Orchestrator) onStatus(changed []kvscheduler.ValueStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer o.releaseStaged()
	dirty := map[string]bool{}
	// Northbound values first, so their derived values find their entry.
	for i := range changed {
		vs := changed[i]
		if vs.Derived || vs.State == kvscheduler.StateObtained || !strings.HasPrefix(vs.Key, models.ConfigDir) {
			continue
		}
		e := o.entry(vs.Key)
		e.sched = &schedState{State: vs.State, Error: vs.Error, Missing: vs.Missing, Retries: vs.Retries, LastChange: vs.LastChange}
		dirty[vs.Key] = true
	}
	for _, vs := range changed {
		if !vs.Derived || vs.Parent == "" {
			continue
		}
		e, ok := o.entries[vs.Parent]
		if !ok {
			continue
		}
		e.setDerived(vs)
		dirty[vs.Parent] = true
	}
	for k := range dirty {
		o.refresh(k)
	}
}

func (o *Orchestrator) entry(rel string) *statusEntry {
	e, ok := o.entries[rel]
	if !ok {
		e = &statusEntry{}
		o.entries[rel] = e
	}
	return e
}

// rejectValue records that etcd's value for rel failed to parse. Caller
// holds o.mu.
func (o *Orchestrator) rejectValue(rel string, err error, kept bool) {
	o.nParseErr.Add(1)
	// A memif secret must reach neither the log nor the status key.
	msg := redactParseError(err.Error())
	e, known := o.entries[rel]
	if !known && !kept && o.nInvalid >= o.opts.MaxInvalidStatus {
		// Junk keys would each get a status document and a warning: past
		// the cap they are only counted (caps.go).
		if o.nInvalidHidden.Add(1)%1000 == 1 {
			o.log.Warn("config value rejected; too many invalid keys to report each", "key", rel, "error", msg,
				"reported", o.nInvalid, "unreported", o.nInvalidHidden.Load())
		}
		return
	}
	o.log.Warn("config value rejected", "key", rel, "error", msg, "last_valid_kept", kept)
	if e == nil {
		e = o.entry(rel)
	}
	if e.valueErr == "" {
		o.nInvalid++
	}
	e.valueErr = msg
	e.valueErrAt = time.Now()
	o.refresh(rel)
}

// clearValueErr forgets a parse error of rel. Caller holds o.mu.
func (o *Orchestrator) clearValueErr(rel string) {
	e, ok := o.entries[rel]
	if !ok || e.valueErr == "" {
		return
	}
	e.valueErr = ""
	o.nInvalid--
	o.refresh(rel)
}

// refresh queues the status document of rel, or its deletion once nothing
// about the key is left to report. Caller holds o.mu.
func (o *Orchestrator) refresh(rel string) {
	e := o.entries[rel]
	statusKey := o.root + models.StatusKey(rel)
	_, desired := o.applied[rel]
	hasSched := e != nil && e.sched != nil && !gone(e.sched.State)
	if e == nil || (!hasSched && e.valueErr == "" && !desired) {
		delete(o.entries, rel)
		o.staged[statusKey] = nil
		return
	}
	if !hasSched && e.valueErr == "" {
		// Desired but the scheduler has not reported yet: nothing to say.
		return
	}
	ks := KeyStatus{Key: rel}
	last := e.valueErrAt
	if hasSched {
		s := e.sched
		ks.State, ks.Error, ks.Missing, ks.Retries = s.State, s.Error, s.Missing, s.Retries
		ks.ValueError = e.valueErr
		if s.LastChange.After(last) {
			last = s.LastChange
		}
	} else {
		ks.State, ks.Error = kvscheduler.StateInvalid, e.valueErr
	}
	if last.IsZero() {
		last = time.Now()
	}
	ks.LastChange = last.UTC().Format(time.RFC3339)
	ks.Derived = e.derived
	ks.Counters = e.counters
	data, err := json.Marshal(ks)
	if err != nil {
		o.log.Error("status encoding failed", "key", rel, "error", err)
		return
	}
	o.staged[statusKey] = data
}

// releaseStaged hands the status writes staged under o.mu to the queue in
// one step, so the writer sees a whole burst at once and packs it into full
// txns. Caller holds o.mu.
func (o *Orchestrator) releaseStaged() {
	if len(o.staged) == 0 {
		return
	}
	o.queue.putAll(o.staged)
	clear(o.staged)
	o.queue.kick()
}

// PublishCounters attaches packet counters to the status of a config key
// (agent-relative, e.g. "config/vppmesh/v1/xconnect/xc1") and queues the
// status write if they changed. Keys without a status are ignored: counters
// never create a status of their own. Zero counters (the Go zero value) are
// not attached to a status that shows none yet: after a bulk apply of 10k
// cross-connects that would rewrite every status document only to add
// zeros; the counters field appears with the first packet. It never blocks.
func (o *Orchestrator) PublishCounters(rel string, counters any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	// Looked up before encoding: the agent offers the counters of every
	// interface, and at 10k cross-connects nearly all are derived ones
	// without a status of their own.
	e, ok := o.entries[rel]
	if !ok || e.sched == nil {
		return
	}
	if e.counters == nil && isZero(counters) {
		return
	}
	data, err := json.Marshal(counters)
	if err != nil {
		o.log.Error("counters encoding failed", "key", rel, "error", err)
		return
	}
	if bytes.Equal(e.counters, data) {
		return
	}
	e.counters = data
	o.refresh(rel)
	o.releaseStaged()
}

// isZero reports whether v is nil or its type's zero value.
func isZero(v any) bool {
	if v == nil {
		return true
	}
	return reflect.ValueOf(v).IsZero()
}

// PublishInterfaceState queues an interface's oper state for Ligato's
// /vnf-agent/<label>/vpp/status/v2/interface/<name>, or its deletion when
// the state says DELETED. It never blocks; writes are coalesced and reach
// etcd while Run runs.
func (o *Orchestrator) PublishInterfaceState(st *interfaces.InterfaceState) {
	if st == nil || st.GetName() == "" {
		o.log.Warn("interface state without a name ignored")
		return
	}
	key := o.root + models.InterfaceStatePrefix + st.GetName()
	if st.GetOperStatus() == interfaces.InterfaceState_DELETED || st.GetAdminStatus() == interfaces.InterfaceState_DELETED {
		o.ifMu.Lock()
		delete(o.ifStates, st.GetName())
		o.ifMu.Unlock()
		o.queue.del(key)
		o.queue.kick()
		return
	}
	data, err := models.Marshal(st)
	if err != nil {
		o.log.Error("interface state encoding failed", "interface", st.GetName(), "error", err)
		return
	}
	// A state equal to the one etcd already has (its time aside; its
	// counters too when this one carries none) is not written again: an
	// agent restart re-publishes every interface's state.
	cur := proto.Clone(st).(*interfaces.InterfaceState)
	cur.LastChange = 0
	o.ifMu.Lock()
	known := o.ifStates[st.GetName()]
	if known != nil && cur.Statistics == nil && known.Statistics != nil {
		k := proto.Clone(known).(*interfaces.InterfaceState)
		k.Statistics = nil
		known = k
	}
	same := known != nil && proto.Equal(known, cur)
	if !same {
		if cur.Statistics == nil && o.ifStates[st.GetName()] != nil {
			cur.Statistics = o.ifStates[st.GetName()].Statistics
		}
		o.ifStates[st.GetName()] = cur
	}
	o.ifMu.Unlock()
	if same {
		return
	}
	o.queue.put(key, data)
	o.queue.kick()
}

// loadInterfaceStates remembers the interface states etcd holds, so that
// re-publishing an unchanged one after a restart writes nothing.
func (o *Orchestrator) loadInterfaceStates(ctx context.Context) {
	kvs, _, err := o.list(ctx, o.root+models.InterfaceStatePrefix, 0, false)
	if err != nil {
		o.log.Warn("interface states not read; unchanged ones will be written again", "error", err)
		return
	}
	o.ifMu.Lock()
	defer o.ifMu.Unlock()
	for _, kv := range kvs {
		name := strings.TrimPrefix(string(kv.Key), o.root+models.InterfaceStatePrefix)
		if _, ok := o.ifStates[name]; ok {
			continue // published by this process already: newer
		}
		st := &interfaces.InterfaceState{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(kv.Value, st); err != nil {
			continue
		}
		st.LastChange = 0
		o.ifStates[name] = st
	}
}
