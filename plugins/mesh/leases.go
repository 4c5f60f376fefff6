package mesh

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// Endpoint leases end at etcd's pace: etcd's lessor looks for expired
// leases every 500 ms, so an endpoint that stopped renewing keeps its key
// for up to half a second past its TTL, and its connections wait for it.
// The controller follows the leases of the endpoints its connections use
// and treats an endpoint as gone once its lease has run out by etcd's own
// account, without waiting for the revocation:
//
//   - LeaseTimeToLive answers whole seconds, truncated: 0 means less than
//     one second is left at the moment etcd answered. A lease kept alive
//     (renewed every TTL/3 by clientv3) never reads 0: even with the
//     smallest TTL etcd grants (2 s) it stays above 1.3 s.
//   - After a reading of 0 received at t, the lease has ended by t + 1 s
//     unless it was renewed in between; a renewal reads ≥ 1 on the next
//     poll (the leases are polled every LeasePoll while they read ≤ 1).
//   - So the endpoint counts as gone at t + 1 s if no poll since t read
//     ≥ 1, at most about LeasePoll after the lease really ended; etcd's
//     deletion of the key follows and changes nothing more. An expired
//     lease cannot be renewed (etcd refuses it), except across an etcd
//     leader change, which extends every lease: then the endpoint counts
//     again as soon as a poll reads ≥ 1, and only connections that moved
//     in between stay where they went.
//
// A lease reading k ≥ 2 seconds cannot get below one second within k-1
// seconds: it is polled again then (at most every 5 s), so long TTLs cost
// little. The cost is one LeaseTimeToLive per followed lease and LeasePoll
// for short TTLs.

// leaseState is what the follower knows of one lease.
type leaseState struct {
	next   time.Time // when to ask again
	zeroAt time.Time // first reception of a 0 reading since the last ≥ 1 (zero: none)
}

// setLeaseWant gives the follower the leases to follow (the loop's view).
func (m *Controller) setLeaseWant(want map[int64]bool) {
	m.leaseMu.Lock()
	m.leaseWant = want
	for id := range m.leaseGone {
		if !want[id] {
			delete(m.leaseGone, id)
		}
	}
	m.leaseMu.Unlock()
}

// leasesGone returns the followed leases that ran out (a copy).
func (m *Controller) leasesGone() map[int64]bool {
	m.leaseMu.Lock()
	defer m.leaseMu.Unlock()
	out := make(map[int64]bool, len(m.leaseGone))
	for id := range m.leaseGone {
		out[id] = true
	}
	return out
}

// followLeases polls the wanted leases until ctx ends, each when it is
// due (a lease's end is acted on when it is due, not at the next tick).
func (m *Controller) followLeases(ctx context.Context) {
	poll := m.opts.LeasePoll
	states := map[int64]*leaseState{}
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		m.leaseMu.Lock()
		want := m.leaseWant
		m.leaseMu.Unlock()
		for id := range states {
			if !want[id] {
				delete(states, id)
			}
		}
		wake := time.Now().Add(poll) // new wanted leases are seen within poll
		for id := range want {
			s := states[id]
			if s == nil {
				s = &leaseState{}
				states[id] = s
			}
			if !time.Now().Before(s.next) {
				m.pollLease(ctx, id, s, poll)
			}
			if s.next.Before(wake) {
				wake = s.next
			}
		}
		timer.Reset(max(time.Until(wake), time.Millisecond))
	}
}

// pollLease asks etcd for one lease's time to live and updates s; a lease
// found ended is recorded in leaseGone and the loop is kicked.
func (m *Controller) pollLease(ctx context.Context, id int64, s *leaseState, poll time.Duration) {
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	ttl, err := m.leaseTTL(qctx, id)
	cancel()
	now := time.Now()
	if err != nil {
		s.next = now.Add(poll)
		return
	}
	gone := false
	switch {
	case ttl < 0: // revoked or never granted: the key goes with it
		gone = true
		s.next = now.Add(poll)
	case ttl == 0:
		if s.zeroAt.IsZero() {
			s.zeroAt = now
		}
		gone = now.Sub(s.zeroAt) >= time.Second
		s.next = now.Add(poll)
		if end := s.zeroAt.Add(time.Second); !gone && end.Before(s.next) {
			s.next = end
		}
	default:
		s.zeroAt = time.Time{}
		s.next = now.Add(min(max(time.Duration(ttl-1)*time.Second, poll), 5*time.Second))
	}
	m.leaseMu.Lock()
	was := m.leaseGone[id]
	switch {
	case gone && !was && m.leaseWant[id]:
		m.leaseGone[id] = true
	case !gone && was && ttl > 0:
		delete(m.leaseGone, id) // renewed after all (an etcd leader change extends leases)
	default:
		m.leaseMu.Unlock()
		return
	}
	m.leaseMu.Unlock()
	if gone {
		m.log.Info("mesh endpoint lease ran out, its endpoints count as gone", "lease", fmt.Sprintf("%x", id))
	} else {
		m.log.Info("mesh endpoint lease renewed after running out", "lease", fmt.Sprintf("%x", id))
	}
	m.kick()
}

// etcdLeaseTTL is LeaseTimeToLive's answer in seconds (-1: no such lease).
func (m *Controller) etcdLeaseTTL(ctx context.Context, id int64) (int64, error) {
	resp, err := m.cli.TimeToLive(ctx, clientv3.LeaseID(id))
	if err != nil {
		return 0, err
	}
	return resp.TTL, nil
}

// endpointLeases lists the leases of the endpoints the given statuses use.
func endpointLeases(c *cache, mine []*vppmeshv1.ConnectionStatus) map[int64]bool {
	out := map[int64]bool{}
	for _, st := range mine {
		if l := c.endpointLease[st.GetEndpoint()]; l != 0 {
			out[l] = true
		}
	}
	return out
}

// noteLease records the lease an endpoint key is held by (0: none).
func (c *cache) noteLease(key string, lease int64, del bool) {
	kind, name, ok := models.ParseMeshKey(key)
	if !ok || kind != models.MeshEndpoint {
		return
	}
	if del || lease == 0 {
		delete(c.endpointLease, name)
		return
	}
	c.endpointLease[name] = lease
}

// endpointGone reports whether an endpoint's lease ran out (see above).
func (c *cache) endpointGone(name string) bool {
	l := c.endpointLease[name]
	return l != 0 && c.leaseGone[l]
}
