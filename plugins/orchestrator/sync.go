package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// list reads every key under prefix at one revision, page by page, so that a
// large config neither hits etcd's response size limit nor holds a huge
// response in memory twice. rev 0 means the current revision.
func (o *Orchestrator) list(ctx context.Context, prefix string, rev int64, keysOnly bool) ([]*mvccpb.KeyValue, int64, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	var out []*mvccpb.KeyValue
	from := prefix
	limit := o.opts.ListPageSize
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(limit)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		if keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		resp, err := o.cli.Get(ctx, from, opts...)
		if status.Code(err) == codes.ResourceExhausted && limit > 1 {
			// A page larger than the client's receive limit (large values
			// written to an external etcd): read smaller pages.
			limit /= 2
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("list %s at revision %d: %w", prefix, rev, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		out = append(out, resp.Kvs...)
		if !resp.More || len(resp.Kvs) == 0 {
			return out, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// fullResync re-lists the config and commits it as one TxnFullResync. It
// returns the revision the listing was taken at.
func (o *Orchestrator) fullResync(ctx context.Context) (int64, error) {
	kvs, rev, err := o.list(ctx, o.configPref, 0, false)
	if err != nil {
		return 0, err
	}
	statusKeys, _, err := o.list(ctx, o.root+models.StatusDir, rev, true)
	if err != nil {
		return 0, err
	}

	o.mu.Lock()
	present := make(map[string]bool, len(kvs))
	// Fill the new applied set in place: refresh (via rejectValue and
	// clearValueErr) must already see a key as desired.
	prev := o.applied
	o.applied = make(map[string]proto.Message, len(kvs))
	o.counts = map[string]int{}
	invalid := 0
	for _, kv := range kvs {
		rel := strings.TrimPrefix(string(kv.Key), o.root)
		present[rel] = true
		perr := o.admit(rel, kv.Value)
		var v proto.Message
		if perr == nil {
			v, perr = models.Unmarshal(rel, kv.Value)
		}
		if perr != nil {
			invalid++
			last, kept := prev[rel]
			if kept {
				o.setApplied(rel, last)
			}
			o.rejectValue(rel, perr, kept)
			continue
		}
		o.setApplied(rel, v)
		o.clearValueErr(rel)
	}
	// Keys that were invalid and are gone now have nobody left to clear them.
	for rel, e := range o.entries {
		if e.valueErr != "" && !present[rel] {
			o.clearValueErr(rel)
		}
	}
	values := make([]kvscheduler.KeyValue, 0, len(o.applied))
	for k, v := range o.applied {
		values = append(values, kvscheduler.KeyValue{Key: k, Value: v})
	}
	sort.Slice(values, func(i, j int) bool { return values[i].Key < values[j].Key })
	o.releaseStaged()
	o.mu.Unlock()

	// Status keys whose config key is gone (deleted while no agent was
	// watching) would otherwise stay forever.
	stale := 0
	for _, kv := range statusKeys {
		rel := strings.TrimPrefix(string(kv.Key), o.root+models.StatusDir)
		if !present[models.ConfigDir+rel] {
			o.queue.del(string(kv.Key))
			stale++
		}
	}
	if stale > 0 {
		o.queue.kick()
	}

	if !o.ifLoaded {
		// Before the commit: its retrieve re-publishes every state.
		o.loadInterfaceStates(ctx)
		o.ifLoaded = true
	}
	_, err = o.sched.Commit(ctx, kvscheduler.Txn{
		Kind:        kvscheduler.TxnFullResync,
		Description: fmt.Sprintf("etcd full resync at revision %d", rev),
		Values:      values,
	})
	if err != nil {
		return 0, fmt.Errorf("commit full resync at revision %d: %w", rev, err)
	}
	o.nTxns.Add(1)
	o.nResyncs.Add(1)
	o.ready.Store(true)
	o.log.Info("full resync committed", "revision", rev, "keys", len(values), "invalid", invalid, "stale_status", stale)
	return rev, nil
}

// watch follows the config from revision from, committing coalesced
// changes, until something requires a re-list. It returns a resync request
// to answer, or the reason the watch ended.
func (o *Orchestrator) watch(ctx context.Context, from int64) (chan error, error) {
	// RequireLeader makes a member that lost its cluster end the watch
	// instead of serving a stale view.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := o.cli.Watch(wctx, o.configPref, clientv3.WithPrefix(), clientv3.WithRev(from))
	// A reader moves responses into a queue while a commit runs, so that
	// everything that arrived meanwhile becomes the next single TxnChange:
	// under load one scheduler txn per etcd event would fall further and
	// further behind.
	q := &respQueue{wake: make(chan struct{}, 1)}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for resp := range wch {
			q.push(queuedResp{resp: resp})
		}
		q.push(queuedResp{closed: true})
	}()
	defer func() {
		cancel()
		<-readerDone
	}()
	// Drop a stale reconnect signal from before this watch started.
	select {
	case <-o.reconnect:
	default:
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case w := <-o.resyncReq:
			return w, nil
		case <-o.reconnect:
			return nil, errors.New("etcd connection re-established")
		case <-q.wake:
		}
		for {
			events, last, err := q.take(o.opts.MaxBatch)
			if err != nil {
				return nil, fmt.Errorf("watch %s from revision %d: %w", o.configPref, from, err)
			}
			if len(events) == 0 {
				break // nothing queued, or only progress notifications
			}
			if err := o.applyEvents(ctx, events, last); err != nil {
				return nil, err
			}
		}
	}
}

// respQueue holds watch responses between the reader and the committer.
type respQueue struct {
	mu    sync.Mutex
	resps []queuedResp
	wake  chan struct{}
}

type queuedResp struct {
	resp   clientv3.WatchResponse
	closed bool // the watch channel was closed
}

func (q *respQueue) push(r queuedResp) {
	q.mu.Lock()
	q.resps = append(q.resps, r)
	q.mu.Unlock()
	signal(q.wake)
}

// take returns the events of queued responses, up to about max events, and
// the revision of the last one; or the error of a failed/closed watch.
func (q *respQueue) take(max int) ([]*clientv3.Event, int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var events []*clientv3.Event
	var last int64
	n := 0
	for n < len(q.resps) && len(events) < max {
		if q.resps[n].closed {
			return nil, 0, errors.New("watch channel closed")
		}
		r := q.resps[n].resp
		if err := r.Err(); err != nil {
			return nil, 0, err
		}
		events = append(events, r.Events...)
		last = r.Header.Revision
		n++
	}
	q.resps = q.resps[n:]
	return events, last, nil
}

// applyEvents turns watch events into one TxnChange holding the net change
// per key.
func (o *Orchestrator) applyEvents(ctx context.Context, events []*clientv3.Event, rev int64) error {
	o.nEvents.Add(uint64(len(events)))
	o.mu.Lock()
	type before struct {
		v  proto.Message
		ok bool
	}
	initial := map[string]before{}
	var order []string
	for _, ev := range events {
		if ev == nil || ev.Kv == nil {
			continue // never sent by etcd; not worth a panic
		}
		rel := strings.TrimPrefix(string(ev.Kv.Key), o.root)
		if _, seen := initial[rel]; !seen {
			v, ok := o.applied[rel]
			initial[rel] = before{v, ok}
			order = append(order, rel)
		}
		switch ev.Type {
		case clientv3.EventTypePut:
			err := o.admit(rel, ev.Kv.Value)
			var v proto.Message
			if err == nil {
				v, err = models.Unmarshal(rel, ev.Kv.Value)
			}
			if err != nil {
				_, kept := o.applied[rel]
				o.rejectValue(rel, err, kept)
				continue
			}
			o.setApplied(rel, v)
			o.clearValueErr(rel)
		case clientv3.EventTypeDelete:
			o.delApplied(rel)
			o.clearValueErr(rel)
		}
	}
	var values []kvscheduler.KeyValue
	for _, rel := range order {
		b := initial[rel]
		v, ok := o.applied[rel]
		switch {
		case !ok && !b.ok:
		case ok && b.ok && proto.Equal(v, b.v):
		case !ok:
			values = append(values, kvscheduler.KeyValue{Key: rel})
		default:
			values = append(values, kvscheduler.KeyValue{Key: rel, Value: v})
		}
	}
	o.releaseStaged()
	o.mu.Unlock()
	if len(values) == 0 {
		return nil
	}
	_, err := o.sched.Commit(ctx, kvscheduler.Txn{
		Kind:        kvscheduler.TxnChange,
		Description: fmt.Sprintf("etcd changes up to revision %d", rev),
		Values:      values,
	})
	if err != nil {
		return fmt.Errorf("commit %d changes up to revision %d: %w", len(values), rev, err)
	}
	o.nTxns.Add(1)
	o.log.Info("changes committed", "revision", rev, "events", len(events), "keys", len(values))
	return nil
}
