package agentctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// ExitError carries the exit code a failure asks for: 1 for a value that
// failed, 2 for a --wait that timed out.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes of --wait.
const (
	ExitFailed  = 1 // a written value is FAILED or INVALID
	ExitTimeout = 2 // --timeout passed with values still not CONFIGURED
)

// Written is one key a verb put into etcd, for --wait: the revision of the
// write and whether the value differs from what etcd held (an unchanged
// value makes the agent do nothing, so its current status is the answer).
type Written struct {
	Key      string // full etcd key
	Revision int64
	Changed  bool
	// Forced is set for a value written with --force that does not parse:
	// the agent refuses it, which only its status key reports.
	Forced bool
	// StatusKey is where the agent reports on Key (a mesh connection's
	// /vppmesh/v1/status/connection/<id>); empty for a config key, whose
	// status is /vnf-agent/<label>/status/<key without config/>.
	StatusKey string
}

// waitFlag adds --wait to a verb.
func waitFlag(cmd *cobra.Command, wait *bool) {
	cmd.Flags().BoolVar(wait, "wait", false, "after writing, wait until the agent reports every written key CONFIGURED "+
		"(exit 0), one FAILED or INVALID (exit 1), or --timeout passes (exit 2)")
}

// keyStatus is the part of the agent's status document --wait reads.
type keyStatus struct {
	State      string   `json:"state"`
	Error      string   `json:"error"`
	ValueError string   `json:"value_error"`
	Missing    []string `json:"missing"`
}

// parseStatus reads a status document: the agent's per-key JSON, or a
// mesh connection's ConnectionStatus (protobuf JSON, which leaves out the
// zero state PENDING).
func parseStatus(key string, data []byte) (keyStatus, bool) {
	if kind, _, ok := models.ParseMeshKey(key); ok && kind == models.MeshStatus {
		_, v, err := models.UnmarshalMesh(key, data)
		if err != nil {
			return keyStatus{}, false
		}
		cs := v.(*vppmeshv1.ConnectionStatus)
		return keyStatus{State: cs.GetState().String(), Error: cs.GetError()}, true
	}
	var st keyStatus
	if json.Unmarshal(data, &st) != nil || st.State == "" {
		return keyStatus{}, false
	}
	return st, true
}

// waitItem is one awaited key and what its status says so far.
type waitItem struct {
	Written
	statusKey string
	seen      bool // a status for this write arrived
	st        keyStatus
}

// state is the item's state for counting: "NO STATUS" until the agent
// reported on this write; INVALID when etcd holds a value the agent refused
// (it then keeps the last valid one).
func (it *waitItem) state() string {
	switch {
	case !it.seen:
		return "NO STATUS"
	case it.st.ValueError != "":
		return "INVALID"
	}
	return it.st.State
}

func (it *waitItem) errMsg() string {
	if it.st.ValueError != "" {
		return it.st.ValueError
	}
	return it.st.Error
}

// sameValue reports whether etcd's previous value means the same as the
// new one: equal bytes, or the same message (a value written by etcdctl in
// another spelling), so that the agent has nothing to do.
func sameValue(full string, prev, data []byte) bool {
	if bytes.Equal(prev, data) {
		return true
	}
	a, err := validate(full, prev)
	if err != nil {
		return false
	}
	b, err := validate(full, data)
	return err == nil && bytes.Equal(a, b)
}

// unparsable reports whether the agent would refuse to parse a value
// written with --force.
func unparsable(full string, data []byte) bool {
	_, err := validate(full, data)
	return err != nil
}

// statusKeyOf maps a full config key to the agent's status key for it.
func statusKeyOf(full string) (string, error) {
	rel, ok := relKey(full)
	if !ok || !strings.HasPrefix(rel, models.ConfigDir) {
		return "", fmt.Errorf("--wait: %s is not a config key of an agent (%s<label>/%s...): nothing reports its state", full, allAgentsPrefix, models.ConfigDir)
	}
	return full[:len(full)-len(rel)] + models.StatusKey(rel), nil
}

// WaitOutcome is what a wait saw at its end.
type WaitOutcome struct {
	Configured int
	Failed     []*waitItem // FAILED or INVALID
	Pending    []*waitItem // anything else
	Elapsed    time.Duration
}

// waitWritten waits for the agent to report on every written key (etcd
// status documents: one read, then one watch from the next revision), with
// a progress line, for at most --timeout. It returns an *ExitError unless
// every key is CONFIGURED, and prints a summary line in table output.
func (c *cli) waitWritten(ctx context.Context, written []Written) error {
	if len(written) == 0 {
		return nil
	}
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	items := map[string]*waitItem{}
	roots := map[string]bool{}
	for _, w := range written {
		sk := w.StatusKey
		if sk == "" {
			if sk, err = statusKeyOf(w.Key); err != nil {
				return err
			}
			rest := sk[len(allAgentsPrefix):]
			roots[allAgentsPrefix+rest[:strings.IndexByte(rest, '/')+1]+models.StatusDir] = true
		} else {
			roots[sk[:strings.LastIndexByte(sk, '/')+1]] = true
		}
		items[sk] = &waitItem{Written: w, statusKey: sk}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	// The current statuses: a few keys one by one in a txn, many by prefix.
	var rev int64
	apply := func(kv *mvccpb.KeyValue, deleted bool) {
		it := items[string(kv.Key)]
		if it == nil {
			return
		}
		if deleted {
			it.seen, it.st = false, keyStatus{}
			return
		}
		if it.Changed && kv.ModRevision <= it.Revision {
			return // written before our value: says nothing about it
		}
		st, ok := parseStatus(string(kv.Key), kv.Value)
		if !ok {
			return
		}
		it.seen, it.st = true, st
	}
	if len(items) <= 64 {
		ops := make([]clientv3.Op, 0, len(items))
		for sk := range items {
			ops = append(ops, clientv3.OpGet(sk))
		}
		resp, err := cl.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return c.etcdErr("--wait: read", "status keys", err)
		}
		rev = resp.Header.Revision
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				apply(kv, false)
			}
		}
	} else {
		for root := range roots {
			resp, err := cl.Get(ctx, root, clientv3.WithPrefix(), clientv3.WithRev(rev))
			if err != nil {
				return c.etcdErr("--wait: read", root, err)
			}
			rev = resp.Header.Revision
			for _, kv := range resp.Kvs {
				apply(kv, false)
			}
		}
	}

	prog := c.newProgress("wait", len(items))
	var watches []clientv3.WatchChan
	for root := range roots {
		watches = append(watches, cl.Watch(clientv3.WithRequireLeader(ctx), root, clientv3.WithPrefix(), clientv3.WithRev(rev+1)))
	}
	events := mergeWatches(ctx, watches)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastConfirm time.Time
	restOK := true
	for {
		out := tally(items, false)
		final := len(out.Failed) > 0 || len(out.Pending) == 0
		// A changed value the scheduler found equal to what it has produces
		// no new status document: past a second the scheduler is asked too.
		if since := time.Since(lastConfirm); (final && since >= confirmEvery) || (restOK && since >= time.Second && unreported(out.Pending)) {
			// The status keys say it is over (or a changed key got no
			// status yet): the scheduler confirms.
			lastConfirm = time.Now()
			done := final
			if restOK {
				ok, err := c.confirmByREST(ctx, items)
				switch {
				case err != nil && ctx.Err() == nil:
					restOK = false // done stays what the status keys say
					fmt.Fprintf(c.errOut, "warning: --wait cannot ask the agent's REST API (%v); trusting the etcd status keys alone\n", err)
				case err != nil || !ok:
					done = false
				default:
					out = tally(items, false)
					done = len(out.Failed) > 0 || len(out.Pending) == 0
				}
			}
			if done {
				prog.done()
				out = tally(items, true)
				out.Elapsed = time.Since(start)
				return c.waitResult(out)
			}
		}
		prog.update(out.Configured+len(out.Failed), stateCounts(items), time.Now())
		select {
		case wr, ok := <-events:
			if !ok {
				prog.done()
				if ctx.Err() == nil {
					return fmt.Errorf("--wait: the etcd watch ended")
				}
				out = tally(items, true)
				if errors.Is(ctx.Err(), context.Canceled) {
					return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("--wait interrupted: %s", describePending(out))}
				}
				return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("--wait: timed out after %s: %s", c.timeout, describePending(out))}
			}
			if err := wr.Err(); err != nil {
				prog.done()
				return fmt.Errorf("--wait: watch status keys: %w", err)
			}
			for _, ev := range wr.Events {
				apply(ev.Kv, ev.Type == clientv3.EventTypeDelete)
			}
		case <-tick.C:
		}
	}
}

// confirmEvery paces the REST confirmation while the scheduler has not
// caught up with the writes.
const confirmEvery = 200 * time.Millisecond

// confirmByREST settles what the status keys alone cannot: a changed value's
// status document may be rewritten (new counters) with the old state before
// the agent has read the change. The scheduler's history says up to which
// etcd revision it has applied changes ("etcd changes up to revision N");
// once that covers the writes, its own states of those keys are taken. It
// reports false while the scheduler is behind. Keys of other agents, keys
// with their own status key and values the agent refused to parse (reported
// in etcd only) are left to the status keys.
func (c *cli) confirmByREST(ctx context.Context, items map[string]*waitItem) (bool, error) {
	root := c.agentRoot()
	var check []*waitItem
	var need int64
	for _, it := range items {
		if it.Changed && it.StatusKey == "" && it.st.ValueError == "" && strings.HasPrefix(it.Key, root) && (it.seen || !it.Forced) {
			check = append(check, it)
			need = max(need, it.Revision)
		}
	}
	if len(check) == 0 {
		return true, nil
	}
	var hist []kvscheduler.TxnRecord
	if err := c.restCall(ctx, "GET", restapi.PathTxnHistory, url.Values{"n": {"200"}}, &hist); err != nil {
		return false, err
	}
	var applied int64
	for _, t := range hist {
		if i := strings.LastIndex(t.Description, "revision "); i >= 0 {
			if r, err := strconv.ParseInt(t.Description[i+len("revision "):], 10, 64); err == nil {
				applied = max(applied, r)
			}
		}
	}
	if applied == 0 {
		return true, nil // no etcd transaction in sight (only retries): the status keys decide
	}
	if applied < need {
		return false, nil
	}
	states := map[string]restapi.ValueJSON{}
	if len(check) <= 64 {
		for _, it := range check {
			var v restapi.ValueJSON
			rel := strings.TrimPrefix(it.Key, root)
			if err := c.restCall(ctx, "GET", restapi.PathValues, url.Values{"key": {rel}}, &v); err != nil {
				if strings.Contains(err.Error(), "404") {
					continue // no status (yet)
				}
				return false, err
			}
			states[rel] = v
		}
	} else {
		var vals []restapi.ValueJSON
		if err := c.restCall(ctx, "GET", restapi.PathValues, url.Values{"prefix": {models.ConfigDir}}, &vals); err != nil {
			return false, err
		}
		for _, v := range vals {
			states[v.Key] = v
		}
	}
	for _, it := range check {
		v, ok := states[strings.TrimPrefix(it.Key, root)]
		if !ok {
			it.seen = false
			continue
		}
		it.seen, it.st = true, keyStatus{State: string(v.State), Error: v.Error, Missing: v.Missing}
	}
	return true, nil
}

// unreported tells whether a pending key still waits for its first status
// after a change (and may never get one: see confirmByREST).
func unreported(pending []*waitItem) bool {
	for _, it := range pending {
		if !it.seen && it.Changed && it.StatusKey == "" && !it.Forced {
			return true
		}
	}
	return false
}

// mergeWatches funnels several watch channels into one, closed when all
// are (they close when ctx ends).
func mergeWatches(ctx context.Context, chans []clientv3.WatchChan) <-chan clientv3.WatchResponse {
	if len(chans) == 1 {
		return chans[0]
	}
	out := make(chan clientv3.WatchResponse)
	done := make(chan struct{}, len(chans))
	for _, ch := range chans {
		go func() {
			defer func() { done <- struct{}{} }()
			for wr := range ch {
				select {
				case out <- wr:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		for range chans {
			<-done
		}
		close(out)
	}()
	return out
}

// tally sorts the outcome's lists by key when asked (for messages; the
// loop only needs the counts).
func tally(items map[string]*waitItem, sorted bool) WaitOutcome {
	var out WaitOutcome
	for _, it := range items {
		switch it.state() {
		case "CONFIGURED", "UP": // UP: a mesh connection, rendered with its links up
			out.Configured++
		case "FAILED", "INVALID":
			out.Failed = append(out.Failed, it)
		default:
			out.Pending = append(out.Pending, it)
		}
	}
	if !sorted {
		return out
	}
	byKey := func(l []*waitItem) {
		sort.Slice(l, func(i, j int) bool { return l[i].Key < l[j].Key })
	}
	byKey(out.Failed)
	byKey(out.Pending)
	return out
}

var countOrder = []string{"CONFIGURED", "UP", "PENDING", "DOWN", "FAILED", "INVALID", "NO STATUS"}

func stateCounts(items map[string]*waitItem) []stateCount {
	n := map[string]int{}
	for _, it := range items {
		n[it.state()]++
	}
	out := make([]stateCount, 0, len(n))
	for _, s := range countOrder {
		out = append(out, stateCount{s, n[s]})
		delete(n, s)
	}
	for _, s := range sortedKeys(n) {
		out = append(out, stateCount{s, n[s]})
	}
	return out
}

// maxNamed bounds how many keys an error names; the rest are counted.
const maxNamed = 20

func describePending(out WaitOutcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d keys not CONFIGURED yet", len(out.Pending), len(out.Pending)+out.Configured+len(out.Failed))
	for i, it := range out.Pending {
		if i == maxNamed {
			fmt.Fprintf(&b, "\n  ... and %d more", len(out.Pending)-maxNamed)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s", it.Key, it.state())
		switch {
		case !it.seen:
			b.WriteString(" (the agent has not reported on this write; is an agent with this label running?)")
		case len(it.st.Missing) > 0:
			b.WriteString(", waits on " + strings.Join(it.st.Missing, ", "))
		case it.errMsg() != "":
			b.WriteString(": " + it.errMsg())
		}
	}
	return b.String()
}

func (c *cli) waitResult(out WaitOutcome) error {
	total := out.Configured + len(out.Failed) + len(out.Pending)
	if len(out.Failed) == 0 {
		if c.output == "table" {
			fmt.Fprintf(c.out, "all %d keys CONFIGURED (%s)\n", total, out.Elapsed.Round(time.Millisecond))
		}
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--wait: %d of %d keys failed", len(out.Failed), total)
	for i, it := range out.Failed {
		if i == maxNamed {
			fmt.Fprintf(&b, "\n  ... and %d more", len(out.Failed)-maxNamed)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s: %s", it.Key, it.state(), it.errMsg())
	}
	if len(out.Pending) > 0 {
		fmt.Fprintf(&b, "\n(%d CONFIGURED, %d not yet)", out.Configured, len(out.Pending))
	}
	return &ExitError{Code: ExitFailed, Err: errors.New(b.String())}
}
