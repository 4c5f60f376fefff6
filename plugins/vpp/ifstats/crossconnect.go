package ifstats

// CrossConnectCounters are a cross-connect's counters per direction: a→b is
// what entered at end a and left at end b, b→a the reverse.
type CrossConnectCounters struct {
	AtoB  Direction `json:"a_to_b"`
	BtoA  Direction `json:"b_to_a"`
	Drops uint64    `json:"drops"`
}

// Direction is one way through a cross-connect.
type Direction struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
}

// CrossConnect combines the counters of a cross-connect's two interfaces;
// ok is false unless both are known.
func CrossConnect(snap map[string]Counters, ifA, ifB string) (CrossConnectCounters, bool) {
	a, okA := snap[ifA]
	b, okB := snap[ifB]
	if !okA || !okB {
		return CrossConnectCounters{}, false
	}
	return CrossConnectCounters{
		AtoB:  Direction{RxPackets: a.RxPackets, RxBytes: a.RxBytes, TxPackets: b.TxPackets, TxBytes: b.TxBytes},
		BtoA:  Direction{RxPackets: b.RxPackets, RxBytes: b.RxBytes, TxPackets: a.TxPackets, TxBytes: a.TxBytes},
		Drops: a.Drops + b.Drops,
	}, true
}

// Report is every counter the agent knows, as REST and agentctl show it.
type Report struct {
	Connected     bool                            `json:"connected"` // stats segment being read
	Interfaces    map[string]Counters             `json:"interfaces"`
	CrossConnects map[string]CrossConnectCounters `json:"xconnects"`
}
