package metrics

import "testing"

func TestPacketCounters(t *testing.T) {
	ifs := map[string]InterfaceCounters{"xc-a": {RxPackets: 10, RxBytes: 640, TxPackets: 9, TxBytes: 576, Drops: 1}}
	m := New(Options{
		Interfaces: func() map[string]InterfaceCounters { return ifs },
		CrossConnects: func() map[string]CrossConnectCounters {
			return map[string]CrossConnectCounters{"xc": {
				AtoB:  Flow{InPackets: 10, InBytes: 640, OutPackets: 9, OutBytes: 576},
				BtoA:  Flow{InPackets: 3, OutPackets: 3},
				Drops: 1,
			}}
		},
	})
	got := scrape(t, m)
	want(t, got, `vppmesh_interface_packets_total{direction="rx",interface="xc-a"}`, 10)
	want(t, got, `vppmesh_interface_bytes_total{direction="tx",interface="xc-a"}`, 576)
	want(t, got, `vppmesh_interface_drops_total{interface="xc-a"}`, 1)
	want(t, got, `vppmesh_xconnect_packets_total{direction="a_to_b",stage="out",xconnect="xc"}`, 9)
	want(t, got, `vppmesh_xconnect_packets_total{direction="b_to_a",stage="in",xconnect="xc"}`, 3)
	want(t, got, `vppmesh_xconnect_bytes_total{direction="a_to_b",stage="in",xconnect="xc"}`, 640)
	want(t, got, `vppmesh_xconnect_drops_total{xconnect="xc"}`, 1)
	// Sources are read at every scrape.
	ifs = map[string]InterfaceCounters{"xc-a": {RxPackets: 11}}
	want(t, scrape(t, m), `vppmesh_interface_packets_total{direction="rx",interface="xc-a"}`, 11)
}
