package mesh

import (
	"log/slog"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// A watch event older than what the controller applied itself (its own
// transaction, a re-read) must not roll the cache back: the next write's
// revision compare would lose against the controller's own write.
func TestCacheSkipsWatchEventsOlderThanOwnWrites(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	c := newCache()
	key := models.MeshKey(models.MeshStatus, "c1")
	status := func(state vppmeshv1.ConnectionStatus_State) []byte {
		b, err := models.Marshal(&vppmeshv1.ConnectionStatus{Id: "c1", State: state, Endpoint: "ep-b"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	allocKey := models.MeshAllocPrefix + "memif/ep-b/1"

	// Own writes: PENDING at 10, then DOWN at 11 (with an allocation
	// released at 11).
	c.applyOwn(log, key, status(vppmeshv1.ConnectionStatus_PENDING), 10, false)
	c.applyOwn(log, allocKey, []byte("c1"), 10, false)
	c.applyOwn(log, key, status(vppmeshv1.ConnectionStatus_DOWN), 11, false)
	c.applyOwn(log, allocKey, nil, 11, true)

	// The watch brings revision 10 late: skipped.
	if c.applyWatched(log, key, status(vppmeshv1.ConnectionStatus_PENDING), 10, false) {
		t.Fatal("an event older than the cache was applied")
	}
	if c.applyWatched(log, allocKey, []byte("c1"), 10, false) {
		t.Fatal("an older allocation event was applied")
	}
	if got := c.status["c1"].GetState(); got != vppmeshv1.ConnectionStatus_DOWN || c.statusRev["c1"] != 11 {
		t.Fatalf("cache rolled back: state %v rev %d", got, c.statusRev["c1"])
	}
	if _, held := c.allocs["memif/ep-b/1"]; held {
		t.Fatal("released allocation came back")
	}
	c.watchedUpTo(10)
	if _, ok := c.ahead[key]; !ok {
		t.Fatal("entry dropped before the watch reached its revision")
	}
	// The echo of 11 is skipped too (same value), and the watch has passed.
	if c.applyWatched(log, key, status(vppmeshv1.ConnectionStatus_DOWN), 11, false) {
		t.Fatal("own write's echo applied again")
	}
	c.watchedUpTo(11)
	if len(c.ahead) != 0 {
		t.Fatalf("entries left after the watch passed them: %v", c.ahead)
	}
	// Later news (another writer) is applied.
	if !c.applyWatched(log, key, status(vppmeshv1.ConnectionStatus_UP), 12, false) {
		t.Fatal("a newer event was skipped")
	}
	if got := c.status["c1"].GetState(); got != vppmeshv1.ConnectionStatus_UP || c.statusRev["c1"] != 12 {
		t.Fatalf("newer event not applied: state %v rev %d", got, c.statusRev["c1"])
	}
	// A delete seen by a re-read at revision 20 hides older puts.
	c.applyOwn(log, key, nil, 20, true)
	if c.applyWatched(log, key, status(vppmeshv1.ConnectionStatus_UP), 15, false) || c.status["c1"] != nil {
		t.Fatal("a put older than a re-read delete resurrected the status")
	}
}

// The cache's indexes (allocations by owner, connections per endpoint) stay
// equal to a count over the maps they index, whatever order of puts,
// re-puts, moves, unreadable values and deletes the keys go through.
func TestCacheIndexesFollowEveryChange(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	c := newCache()
	rnd := rand.New(rand.NewPCG(7, 11))
	ids := []string{"c1", "c2", "c3", "c4"}
	eps := []string{"", "ep-a", "ep-b"}
	allocs := []string{"memif/ep-a/1", "memif/ep-a/2", "memif/ep-b/1", "ip/s/198.51.100.0", "vni/8388608"}
	for i := 0; i < 5000; i++ {
		id := ids[rnd.IntN(len(ids))]
		rev := int64(i + 1)
		switch rnd.IntN(6) {
		case 0, 1:
			b, err := models.Marshal(&vppmeshv1.ConnectionStatus{Id: id, Endpoint: eps[rnd.IntN(len(eps))]})
			if err != nil {
				t.Fatal(err)
			}
			c.applyWatched(log, models.MeshKey(models.MeshStatus, id), b, rev, false)
		case 2:
			c.applyWatched(log, models.MeshKey(models.MeshStatus, id), []byte("{not json"), rev, false)
		case 3:
			c.applyWatched(log, models.MeshKey(models.MeshStatus, id), nil, rev, true)
		case 4:
			c.applyWatched(log, models.MeshAllocPrefix+allocs[rnd.IntN(len(allocs))], []byte(id), rev, false)
		case 5:
			c.applyWatched(log, models.MeshAllocPrefix+allocs[rnd.IntN(len(allocs))], nil, rev, true)
		}
		wantLoad := map[string]int{}
		for _, st := range c.status {
			if st.GetEndpoint() != "" {
				wantLoad[st.GetEndpoint()]++
			}
		}
		if got := c.load(); !maps.Equal(got, wantLoad) {
			t.Fatalf("step %d: load %v, statuses say %v", i, got, wantLoad)
		}
		for _, id := range ids {
			want := map[string]bool{}
			for k, owner := range c.allocs {
				if owner == id {
					want[k] = true
				}
			}
			if got := c.allocsOf(id); !maps.Equal(got, want) {
				t.Fatalf("step %d: allocsOf(%s) %v, allocations say %v", i, id, got, want)
			}
		}
	}
}
