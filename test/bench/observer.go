package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// XCStatusKey is the etcd key of cross-connect name's status document.
func XCStatusKey(name string) string {
	return "/vnf-agent/" + Label + "/status/vppmesh/v1/xconnect/" + name
}

// XCObserver sees cross-connects become programmed without dumping VPP's
// whole xconnect table per put (at 10,000 that dump alone takes ~40 ms, so
// polling it made the put→programmed latency the observer's). Per put it
// waits for two events, neither of which costs VPP or the agent a dump:
//
//   - VPP's own sw_interface_event: two new interfaces came admin up (the
//     cross-connect's ends), and
//   - the agent's status document saying CONFIGURED for the cross-connect
//     and for every value derived from it (an etcd watch): the agent writes
//     that only after VPP acknowledged every call, the
//     sw_interface_set_l2_xconnect pair included. The cross-connect's own
//     state alone is not enough: it makes no VPP call and turns CONFIGURED
//     before its derived interfaces and xconnects are created.
//
// The later of the two is the programmed time. Verify then checks, with one
// interface dump and one xconnect dump for all probes together, that VPP
// really holds every pair the agent called CONFIGURED.
type XCObserver struct {
	vpp    *VPP
	events <-chan IfEvent
	stopEv func()
	wctx   context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	configured map[string]time.Time // cross-connect name → first CONFIGURED seen
	changed    chan struct{}        // closed and replaced on every status change
	watchErr   error
	// ups carries the arrival time of each interface's first admin-up
	// event, stamped as it arrives (not when Wait gets to it).
	ups    chan time.Time
	evDone chan struct{}
}

// NewXCObserver subscribes to VPP's interface events and watches the agent's
// cross-connect status documents from now on.
func NewXCObserver(ctx context.Context, vpp *VPP, etcd *clientv3.Client) (*XCObserver, error) {
	events, stopEv, err := vpp.WatchInterfaces(ctx)
	if err != nil {
		return nil, err
	}
	o := newObserver(ctx, vpp, etcd)
	o.events, o.stopEv = events, stopEv
	go o.stampUps(o.wctx)
	return o, nil
}

// NewStatusObserver watches the agent's cross-connect status documents from
// now on, without VPP's interface events: for WaitAll, where VPP is checked
// by one dump at the end (Verify) and thousands of events would only cost
// VPP work. Wait needs NewXCObserver.
func NewStatusObserver(ctx context.Context, vpp *VPP, etcd *clientv3.Client) *XCObserver {
	o := newObserver(ctx, vpp, etcd)
	close(o.evDone)
	return o
}

func newObserver(ctx context.Context, vpp *VPP, etcd *clientv3.Client) *XCObserver {
	wctx, cancel := context.WithCancel(ctx)
	o := &XCObserver{vpp: vpp, stopEv: func() {}, wctx: wctx, cancel: cancel, done: make(chan struct{}),
		configured: map[string]time.Time{}, changed: make(chan struct{}), ups: make(chan time.Time, 4096), evDone: make(chan struct{})}
	prefix := XCStatusKey("")
	// WithRequireLeader: a partitioned member ends the watch instead of
	// leaving it silent.
	wch := etcd.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix())
	go o.watch(wch, prefix)
	return o
}

// xcState is the part of a status document the observer reads.
type xcState struct {
	State   string `json:"state"`
	Derived []struct {
		State string `json:"state"`
	} `json:"derived"`
}

// programmed reports whether the document says the cross-connect and every
// derived value (at least one) are CONFIGURED.
func (st *xcState) programmed() bool {
	if st.State != "CONFIGURED" || len(st.Derived) == 0 {
		return false
	}
	for _, d := range st.Derived {
		if d.State != "CONFIGURED" {
			return false
		}
	}
	return true
}

func (o *XCObserver) watch(wch clientv3.WatchChan, prefix string) {
	defer close(o.done)
	for resp := range wch {
		if err := resp.Err(); err != nil {
			o.fail(fmt.Errorf("watch %s: %w", prefix, err))
			return
		}
		now := time.Now()
		o.mu.Lock()
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			name := strings.TrimPrefix(string(ev.Kv.Key), prefix)
			var st xcState
			if err := json.Unmarshal(ev.Kv.Value, &st); err != nil {
				continue // not a status document we know: not ours to judge
			}
			if _, ok := o.configured[name]; !ok && st.programmed() {
				o.configured[name] = now
			}
		}
		close(o.changed)
		o.changed = make(chan struct{})
		o.mu.Unlock()
	}
	o.fail(fmt.Errorf("watch %s ended", prefix))
}

func (o *XCObserver) stampUps(ctx context.Context) {
	defer close(o.evDone)
	seen := map[uint32]bool{}
	for {
		select {
		case ev := <-o.events:
			switch {
			case ev.Deleted:
				delete(seen, ev.SwIfIndex) // the index may be reused
			case ev.AdminUp && !seen[ev.SwIfIndex]:
				seen[ev.SwIfIndex] = true
				select {
				case o.ups <- time.Now():
				case <-ctx.Done():
					return
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func (o *XCObserver) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.watchErr == nil {
		o.watchErr = err
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

// Sighting is when one cross-connect was seen programmed.
type Sighting struct {
	Configured time.Time // the agent's status said it and its derived values CONFIGURED
	BothUp     time.Time // VPP announced the second end admin up
}

// Programmed is the later of the two: the cross-connect is in VPP.
func (s Sighting) Programmed() time.Time {
	if s.Configured.After(s.BothUp) {
		return s.Configured
	}
	return s.BothUp
}

// Wait returns when cross-connect name is CONFIGURED in the agent's status
// and two interfaces not seen before came admin up in VPP. Probes must be put
// one at a time (the events carry no names).
func (o *XCObserver) Wait(ctx context.Context, name string, timeout time.Duration) (Sighting, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var upAt time.Time
	up := 0
	for {
		o.mu.Lock()
		cfgAt, ok := o.configured[name]
		werr, changed := o.watchErr, o.changed
		o.mu.Unlock()
		if werr != nil {
			return Sighting{}, werr
		}
		if ok && up >= 2 {
			return Sighting{Configured: cfgAt, BothUp: upAt}, nil
		}
		select {
		case at := <-o.ups:
			up++
			upAt = at
		case <-changed:
		case <-deadline.C:
			return Sighting{}, fmt.Errorf("%s: after %v: CONFIGURED %v, %d of 2 interfaces up in VPP", name, timeout, ok, up)
		case <-ctx.Done():
			return Sighting{}, ctx.Err()
		}
	}
}

// WaitAll returns when every named cross-connect is programmed by the
// agent's status (see XCObserver) and the time the last of them was: what
// the agent reported. Names need not be put one at a time.
func (o *XCObserver) WaitAll(ctx context.Context, names []string, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	left := slices.Clone(names)
	var last time.Time
	for {
		o.mu.Lock()
		werr, changed := o.watchErr, o.changed
		// Only the names not seen yet are looked up again: a bulk of
		// 10,000 sees hundreds of watch responses.
		n := 0
		for _, name := range left {
			at, ok := o.configured[name]
			if !ok {
				left[n] = name
				n++
				continue
			}
			if at.After(last) {
				last = at
			}
		}
		left = left[:n]
		o.mu.Unlock()
		if werr != nil {
			return time.Time{}, werr
		}
		if len(left) == 0 {
			return last, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("after %v: %d of %d cross-connects not CONFIGURED in the agent's status (first: %s)",
				timeout, len(left), len(names), left[0])
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// Verify checks with one dump of each table that VPP holds every named
// cross-connect (both ends present by tag, admin up, cross-connected both
// ways): what the agent's CONFIGURED claimed.
func (o *XCObserver) Verify(ctx context.Context, names []string) error {
	snap, err := o.vpp.Snapshot(ctx)
	if err != nil {
		return err
	}
	return Check(snap, names)
}

// Check is Verify on a snapshot taken by the caller.
func Check(snap *Snapshot, names []string) error {
	var missing []string
	for _, n := range names {
		if !snap.Programmed(n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d of %d cross-connects the agent reported CONFIGURED are not in VPP: %s",
			len(missing), len(names), strings.Join(missing[:min(len(missing), 10)], ", "))
	}
	return nil
}

// Close stops the watch and the event subscription.
func (o *XCObserver) Close() {
	o.cancel()
	<-o.done
	<-o.evDone
	o.stopEv()
}
