package statseg

import (
	"testing"

	"go.fd.io/govpp/adapter/statsclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/core"
)

// BenchmarkUpdateValues is the steady state: vppsim republishing the counters
// of 100 interfaces, no layout change.
func BenchmarkUpdateValues(b *testing.B) {
	seg, err := New(b.TempDir()+"/stats.sock", WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	in := ifaceSet(100, 1)
	if err := seg.Update(in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in[i%100].Rx.Packets++
		if err := seg.Update(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGovppRead is the reader side for comparison: one GetInterfaceStats
// of 100 interfaces through govpp's statsclient.
func BenchmarkGovppRead(b *testing.B) {
	seg, err := New(b.TempDir()+"/stats.sock", WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	if err := seg.Update(ifaceSet(100, 1)); err != nil {
		b.Fatal(err)
	}
	conn, err := core.ConnectStats(statsclient.NewStatsClient(seg.path))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Disconnect()
	var st api.InterfaceStats
	b.ReportAllocs()
	for b.Loop() {
		if err := conn.GetInterfaceStats(&st); err != nil {
			b.Fatal(err)
		}
	}
}
