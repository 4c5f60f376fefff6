package restapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// BenchmarkSchedulerStatus10k measures rendering /values for an
// agent with 10,000 values (protojson per value dominates).
func BenchmarkSchedulerStatus10k(b *testing.B) {
	f := &fakeScheduler{}
	for i := 0; i < 10000; i++ {
		name := fmt.Sprintf("memif%d", i)
		f.status = append(f.status, kvscheduler.ValueStatus{
			Key: "config/vpp/v2/interfaces/" + name, Descriptor: "vpp-interface", State: kvscheduler.StateConfigured,
			Value: &interfaces.Interface{Name: name, Type: interfaces.Interface_MEMIF, Enabled: true,
				Link: &interfaces.Interface_Memif{Memif: &interfaces.MemifLink{Master: true, Id: uint32(i), SocketFilename: "/run/vpp/memif.sock"}}},
			Metadata: map[string]uint32{"sw_if_index": uint32(i + 1)},
		})
	}
	s, err := New(Options{Scheduler: f})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/values", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("code %d", w.Code)
		}
	}
}
