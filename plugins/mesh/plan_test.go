package mesh

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

func testCache(t *testing.T, kvs map[string]string) *cache {
	t.Helper()
	c := newCache()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for k, v := range kvs {
		c.apply(log, k, []byte(v), 1, false)
	}
	return c
}

// A memif id freed in etcd but still rendered for another connection is
// not handed out (VPP would refuse a second memif with the same socket and
// id); a kept decision keeps its id and its /31.
func TestDecideAllocation(t *testing.T) {
	c := testCache(t, map[string]string{
		models.MeshServicePrefix + "s":               `{"name":"s","payload":"IP","ip_pool":"198.51.100.0/30"}`,
		models.MeshEndpointPrefix + "ep":             `{"name":"ep","network_services":["s"],"node":"n1","memif":{"socket_filename":"/run/ep.sock","secret":"x"}}`,
		models.MeshConnectionPrefix + "c1":           `{"id":"c1","network_service":"s","node":"n1","memif":{"socket_filename":"/run/c1.sock"}}`,
		models.MeshAllocPrefix + "memif/ep/0":        "other",
		models.MeshAllocPrefix + "ip/s/198.51.100.0": "other",
	})
	busy := map[string]int{MemifBusyKey("/run/ep.sock", 1): 1}
	d, ref := decide(c, "n1", c.conns["c1"], nil, nil, busyFor(busy, nil))
	if ref != nil {
		t.Fatal(ref)
	}
	if got := d.status.GetEndpointLink().GetMemif().GetId(); got != 2 {
		t.Fatalf("memif id %d: 0 is allocated and 1 still rendered, want 2", got)
	}
	if d.status.GetEndpointLink().GetMemif().GetSecret() != "" {
		t.Fatal("memif secret copied into the status")
	}
	if d.render.GetB().GetMemif().GetSecret() != "x" || !d.render.GetB().GetMemif().GetMaster() {
		t.Fatalf("rendered endpoint link %v: want VPP master with the endpoint's secret", d.render.GetB())
	}
	if d.status.GetIpContext().GetClientIp() != "198.51.100.2/31" || d.status.GetIpContext().GetEndpointIp() != "198.51.100.3/31" {
		t.Fatalf("ip context %v", d.status.GetIpContext())
	}
	if !d.allocs["memif/ep/2"] || !d.allocs["ip/s/198.51.100.2"] || len(d.allocs) != 2 {
		t.Fatalf("allocations %v", d.allocs)
	}
	// Once held, the decision is kept as it is, even with id 0 freed.
	for k := range d.allocs {
		c.setAlloc(k, "c1")
	}
	c.delAlloc("memif/ep/0")
	cur := d.status
	cur.ClientNode = "n1"
	again, ref := decide(c, "n1", c.conns["c1"], cur, nil, busyFor(nil, d.render))
	if ref != nil || !sameDecision(cur, again.status) {
		t.Fatalf("kept decision changed: %v → %v (%v)", cur, again.status, ref)
	}
	// The pool has one /31 left for others: a second connection gets
	// PENDING "exhausted" while "other" and c1 hold both.
	c.setAlloc("ip/s/198.51.100.0", "other")
	c.conns["c2"] = &vppmeshv1.Connection{Id: "c2", NetworkService: "s", Node: "n1", Link: c.conns["c1"].GetLink().(*vppmeshv1.Connection_Memif)}
	if _, ref := decide(c, "n1", c.conns["c2"], nil, nil, busyFor(nil, nil)); ref == nil || ref.Failed {
		t.Fatalf("exhausted pool: %+v", ref)
	}
}

func TestParseRxMode(t *testing.T) {
	for in, want := range map[string]ifmodel.Interface_RxMode_Type{
		"": ifmodel.Interface_RxMode_UNKNOWN, "default": ifmodel.Interface_RxMode_UNKNOWN,
		"polling": ifmodel.Interface_RxMode_POLLING, "Interrupt": ifmodel.Interface_RxMode_INTERRUPT,
		"adaptive": ifmodel.Interface_RxMode_ADAPTIVE,
	} {
		if got, err := ParseRxMode(in); err != nil || got != want {
			t.Errorf("ParseRxMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseRxMode("fast"); err == nil || !strings.Contains(err.Error(), `"fast"`) {
		t.Errorf("ParseRxMode(fast) = %v, want an error naming the value", err)
	}
}
