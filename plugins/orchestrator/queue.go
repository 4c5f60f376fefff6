package orchestrator

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// writeQueue holds etcd writes that have not reached etcd yet. It keeps only
// the latest value per key, so a burst of changes or an etcd outage costs
// one write per key, and producers (the scheduler's watcher) never block on
// etcd.
type writeQueue struct {
	mu      sync.Mutex
	pending map[string]write
	seq     uint64 // bumps on every enqueue, so a failed flush cannot overwrite a newer value
	wake    chan struct{}
}

type write struct {
	val []byte // nil deletes
	seq uint64
}

func newWriteQueue() writeQueue {
	return writeQueue{pending: map[string]write{}, wake: make(chan struct{}, 1)}
}

func (q *writeQueue) put(key string, val []byte) {
	q.mu.Lock()
	q.seq++
	q.pending[key] = write{val: val, seq: q.seq}
	q.mu.Unlock()
}

func (q *writeQueue) del(key string) { q.put(key, nil) }

// putAll queues several writes atomically (nil values delete).
func (q *writeQueue) putAll(ws map[string][]byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, v := range ws {
		q.seq++
		q.pending[k] = write{val: v, seq: q.seq}
	}
}

func (q *writeQueue) kick() { signal(q.wake) }

func (q *writeQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

func (q *writeQueue) take() map[string]write {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	out := q.pending
	q.pending = map[string]write{}
	return out
}

// restore puts back writes that failed, unless a newer one was queued since.
func (q *writeQueue) restore(ws map[string]write) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, w := range ws {
		if cur, ok := q.pending[k]; !ok || cur.seq < w.seq {
			q.pending[k] = w
		}
	}
}

// runWriter flushes the queue whenever it is kicked, and retries with
// backoff while etcd fails.
func (o *Orchestrator) runWriter(ctx context.Context) {
	bo := newBackoff(o.opts.RetryMax)
	// An external cluster may run with a --max-txn-ops below ours; then
	// shrink the txns instead of failing forever.
	maxOps := o.opts.StatusTxnOps
	defer o.finalFlush(ctx, maxOps)
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.queue.wake:
		case <-o.connUp:
		}
		for {
			batch := o.queue.take()
			if batch == nil {
				bo.reset()
				break
			}
			failed, err := o.flush(ctx, batch, maxOps)
			if err == nil {
				continue
			}
			o.queue.restore(failed)
			if errors.Is(err, rpctypes.ErrTooManyOps) && maxOps > 1 {
				maxOps /= 2
				o.log.Warn("etcd refuses txns this large, using smaller ones", "max_ops", maxOps)
				continue
			}
			if ctx.Err() != nil {
				return
			}
			d := bo.next()
			o.log.Warn("status write failed, will retry", "error", err, "queued", o.queue.len(), "retry_in", d)
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			case <-o.connUp:
			}
		}
	}
}

// finalFlush makes one bounded attempt to write what is still queued when
// Run stops, so the status left in etcd is the last one known.
func (o *Orchestrator) finalFlush(ctx context.Context, maxOps int) {
	batch := o.queue.take()
	if batch == nil {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.opts.WriteTimeout)
	defer cancel()
	if failed, err := o.flush(fctx, batch, maxOps); err != nil {
		o.queue.restore(failed)
		o.log.Warn("status left unwritten at stop", "error", err, "queued", len(failed))
	}
}

// flush writes batch in etcd txns of at most maxOps operations; on
// error it returns the writes that did not happen.
func (o *Orchestrator) flush(ctx context.Context, batch map[string]write, maxOps int) (map[string]write, error) {
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for start := 0; start < len(keys); start += maxOps {
		chunk := keys[start:min(start+maxOps, len(keys))]
		ops := make([]clientv3.Op, 0, len(chunk))
		for _, k := range chunk {
			if w := batch[k]; w.val == nil {
				ops = append(ops, clientv3.OpDelete(k))
			} else {
				ops = append(ops, clientv3.OpPut(k, string(w.val)))
			}
		}
		tctx, cancel := context.WithTimeout(ctx, o.opts.WriteTimeout)
		_, err := o.cli.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			o.nStatusFail.Add(uint64(len(ops)))
			failed := make(map[string]write, len(keys)-start)
			for _, k := range keys[start:] {
				failed[k] = batch[k]
			}
			return failed, err
		}
		o.nStatusTxns.Add(1)
		o.nStatusWrites.Add(uint64(len(ops)))
	}
	o.log.Debug("status flushed", "writes", len(keys))
	return nil, nil
}
