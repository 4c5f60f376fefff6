package statseg

// Pair is a combined counter: packets and the bytes they carried.
type Pair struct {
	Packets uint64
	Bytes   uint64
}

// InterfaceCounters is one interface's row in the segment, indexed by
// SwIfIndex as VPP indexes its counter vectors.
type InterfaceCounters struct {
	SwIfIndex uint32
	Name      string

	Rx, Tx                              Pair
	RxUnicast, RxMulticast, RxBroadcast Pair
	TxUnicast, TxMulticast, TxBroadcast Pair
	Drops, Punt, IP4, IP6, Mpls         uint64
	RxNoBuf, RxMiss, RxError, TxError   uint64
}

// statNames is the name vector of interfaces, indexed by sw_if_index.
const statNames = "/if/names"

type simpleDef struct {
	name string
	get  func(*InterfaceCounters) uint64
}

type combinedDef struct {
	name string
	get  func(*InterfaceCounters) Pair
}

// simpleStats and combinedStats list the per-interface stats VPP registers
// for every interface; the directory is built from them once, at New.
func simpleStats() []simpleDef {
	return []simpleDef{
		{"/if/drops", func(c *InterfaceCounters) uint64 { return c.Drops }},
		{"/if/punt", func(c *InterfaceCounters) uint64 { return c.Punt }},
		{"/if/ip4", func(c *InterfaceCounters) uint64 { return c.IP4 }},
		{"/if/ip6", func(c *InterfaceCounters) uint64 { return c.IP6 }},
		{"/if/rx-no-buf", func(c *InterfaceCounters) uint64 { return c.RxNoBuf }},
		{"/if/rx-miss", func(c *InterfaceCounters) uint64 { return c.RxMiss }},
		{"/if/rx-error", func(c *InterfaceCounters) uint64 { return c.RxError }},
		{"/if/tx-error", func(c *InterfaceCounters) uint64 { return c.TxError }},
		{"/if/mpls", func(c *InterfaceCounters) uint64 { return c.Mpls }},
	}
}

func combinedStats() []combinedDef {
	return []combinedDef{
		{"/if/rx", func(c *InterfaceCounters) Pair { return c.Rx }},
		{"/if/rx-unicast", func(c *InterfaceCounters) Pair { return c.RxUnicast }},
		{"/if/rx-multicast", func(c *InterfaceCounters) Pair { return c.RxMulticast }},
		{"/if/rx-broadcast", func(c *InterfaceCounters) Pair { return c.RxBroadcast }},
		{"/if/tx", func(c *InterfaceCounters) Pair { return c.Tx }},
		{"/if/tx-unicast", func(c *InterfaceCounters) Pair { return c.TxUnicast }},
		{"/if/tx-multicast", func(c *InterfaceCounters) Pair { return c.TxMulticast }},
		{"/if/tx-broadcast", func(c *InterfaceCounters) Pair { return c.TxBroadcast }},
	}
}

// System stats govpp's GetSystemStats reads; scalars hold integers in the
// entry's 64-bit union, as VPP stores them.
const (
	sysVectorRate      = "/sys/vector_rate"
	sysNumWorkers      = "/sys/num_worker_threads"
	sysInputRate       = "/sys/input_rate"
	sysLastUpdate      = "/sys/last_update"
	sysLastStatsClear  = "/sys/last_stats_clear"
	sysHeartbeat       = "/sys/heartbeat"
	sysBootTime        = "/sys/boottime"
	sysVectorPerWorker = "/sys/vector_rate_per_worker"
)
