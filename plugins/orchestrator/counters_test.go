package orchestrator

import (
	"strings"
	"testing"
)

func TestCountersJoinTheStatus(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	r := runOrch(t, cli, "a", newMemSched(), nil)
	waitFor(t, "ready", r.o.Ready)
	statusKey := "/vnf-agent/a/status/vpp/v2/interfaces/m1"

	// Counters for a key without a status create nothing.
	r.o.PublishCounters(ifRel("m1"), map[string]uint64{"rx_packets": 1})
	mustPut(t, cli, ifKey("a", "m1"), memifJSON("m1", 1))
	waitFor(t, "status", func() bool { _, ok := mustGet(t, cli, statusKey); return ok })
	if v, _ := mustGet(t, cli, statusKey); strings.Contains(v, "counters") {
		t.Fatalf("counters published before the status existed leaked in: %s", v)
	}

	// Zero counters add nothing to a status that shows none yet (after a
	// bulk apply that would rewrite every status only to add zeros).
	type ctrs struct {
		RxPackets uint64 `json:"rx_packets"`
	}
	r.o.PublishCounters(ifRel("m1"), ctrs{})
	r.o.mu.Lock()
	shown := r.o.entries[ifRel("m1")].counters
	r.o.mu.Unlock()
	if shown != nil {
		t.Fatalf("zero counters were attached to a status without counters: %s", shown)
	}
	r.o.PublishCounters(ifRel("m1"), map[string]uint64{"rx_packets": 42})
	waitFor(t, "counters in status", func() bool {
		v, _ := mustGet(t, cli, statusKey)
		return strings.Contains(v, `"counters":{"rx_packets":42}`) && strings.Contains(v, `"state":"CONFIGURED"`)
	})
	// Unchanged counters make no write.
	before := r.o.Stats().StatusWrites
	r.o.PublishCounters(ifRel("m1"), map[string]uint64{"rx_packets": 42})
	if after := r.o.Stats().StatusWrites; after != before {
		t.Fatalf("unchanged counters wrote %d times", after-before)
	}
	// Once shown, counters that drop to zero (a re-created interface) are
	// written like any change.
	r.o.PublishCounters(ifRel("m1"), ctrs{})
	waitFor(t, "zero counters in status", func() bool {
		v, _ := mustGet(t, cli, statusKey)
		return strings.Contains(v, `"counters":{"rx_packets":0}`)
	})
	r.o.PublishCounters(ifRel("m1"), map[string]uint64{"rx_packets": 42})
	waitFor(t, "counters back in status", func() bool {
		v, _ := mustGet(t, cli, statusKey)
		return strings.Contains(v, `"rx_packets":42`)
	})
	// Unencodable counters are refused without disturbing the status.
	r.o.PublishCounters(ifRel("m1"), map[string]any{"bad": make(chan int)})
	if v, _ := mustGet(t, cli, statusKey); !strings.Contains(v, `"rx_packets":42`) {
		t.Fatalf("status after bad counters: %s", v)
	}
}
