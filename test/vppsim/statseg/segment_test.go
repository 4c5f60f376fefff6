package statseg

import (
	"reflect"
	"testing"

	"go.fd.io/govpp/api"
)

func TestGovppReadsPublishedCounters(t *testing.T) {
	seg, path := newTestSegment(t)
	want := []InterfaceCounters{
		sample(0, "local0", 1),
		sample(1, "memif1/0", 1),
		sample(2, "VirtualEthernet0/0/0", 1),
	}
	if err := seg.Update(want); err != nil {
		t.Fatalf("Update: %v", err)
	}
	conn := connectStats(t, path)
	got := readIfaces(t, conn)
	if len(got) != len(want) {
		t.Fatalf("got %d interfaces, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if !reflect.DeepEqual(got[i], toAPI(w)) {
			t.Errorf("interface %d:\n got %+v\nwant %+v", i, got[i], toAPI(w))
		}
	}
}

func TestSystemStats(t *testing.T) {
	seg, path := newTestSegment(t)
	for range 3 {
		if err := seg.Update([]InterfaceCounters{{SwIfIndex: 0, Name: "local0"}}); err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	conn := connectStats(t, path)
	var sys api.SystemStats
	if err := conn.GetSystemStats(&sys); err != nil {
		t.Fatalf("GetSystemStats: %v", err)
	}
	if sys.Heartbeat != 3 {
		t.Errorf("heartbeat %d, want 3 (one per Update)", sys.Heartbeat)
	}
	if sys.LastUpdate == 0 {
		t.Errorf("last_update is zero")
	}
	if len(sys.VectorRatePerWorker) != 1 {
		t.Errorf("vector_rate_per_worker has %d threads, want 1", len(sys.VectorRatePerWorker))
	}
}
