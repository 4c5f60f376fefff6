package ifplugin_test

import (
	"fmt"
	"testing"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// BenchmarkCreateDelete100Memifs measures one transaction creating 100
// memifs (admin up, one address) and one deleting them, through the
// scheduler, govppmux and vppsim over the socket.
func BenchmarkCreateDelete100Memifs(b *testing.B) {
	e := startEnv(b)
	s, _ := e.agent(b)
	vals := make([]*ifmodel.Interface, 100)
	names := make([]string, 100)
	for i := range vals {
		names[i] = fmt.Sprintf("m%d", i)
		vals[i] = &ifmodel.Interface{Name: names[i], Type: ifmodel.Interface_MEMIF, Enabled: true,
			IpAddresses: []string{fmt.Sprintf("10.1.%d.1/24", i)},
			Link:        &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: uint32(i), SocketFilename: e.dir + "/bench.sock"}}}
	}
	b.ResetTimer()
	for range b.N {
		rec := commit(b, s, kvscheduler.TxnChange, vals...)
		if len(rec.Errors) > 0 {
			b.Fatalf("create failed: %v", rec.Errors)
		}
		del(b, s, names...)
	}
}
