package metrics

import (
	"net/http"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Scheduler is the part of the kvscheduler the metrics read.
type Scheduler interface {
	Status() []kvscheduler.ValueStatus
	History(n int) []kvscheduler.TxnRecord
}

// OrchestratorStats are the orchestrator's cumulative counters. The fields
// mirror orchestrator.Stats one for one, so that the agent can convert with
// metrics.OrchestratorStats(o.Stats()) without this package importing it.
type OrchestratorStats struct {
	EtcdEvents        uint64 // config watch events received
	TxnsCommitted     uint64 // scheduler transactions committed (change + full resync)
	Resyncs           uint64 // full resyncs committed
	WatchRestarts     uint64 // watch ended by an error, compaction or reconnect
	ParseErrors       uint64 // config values rejected by models.Unmarshal
	StatusWrites      uint64 // status/oper-state keys put or deleted in etcd
	StatusTxns        uint64 // etcd txns used for those writes
	StatusWriteErrors uint64 // writes in etcd txns that failed
	StatusQueued      int    // writes waiting for etcd now
}

// InterfaceCounters are one interface's cumulative packet counters.
type InterfaceCounters struct {
	RxPackets, RxBytes, TxPackets, TxBytes, Drops uint64
}

// Flow is one direction through a cross-connect: what entered at one end
// (In) and what left at the other (Out).
type Flow struct {
	InPackets, InBytes, OutPackets, OutBytes uint64
}

// CrossConnectCounters are a cross-connect's counters per direction.
type CrossConnectCounters struct {
	AtoB, BtoA Flow
	Drops      uint64
}

// Options say where each family of metrics comes from; a nil source leaves
// its metrics out.
type Options struct {
	Scheduler    Scheduler
	VPPCalls     func() map[string]uint64 // cumulative calls per VPP message name
	VPPConnected func() bool
	Orchestrator func() OrchestratorStats
	// Interfaces and CrossConnects give the packet counters read from VPP's
	// stats segment, by logical name.
	Interfaces    func() map[string]InterfaceCounters
	CrossConnects func() map[string]CrossConnectCounters
	// GoRuntime adds the Go runtime and process collectors.
	GoRuntime bool
}

// historyScan bounds how many transactions one sync reads; the scheduler
// keeps fewer than that.
const historyScan = 10000

// knownStates are reported even at zero so that an alert on FAILED > 0 has
// a series to watch from the start.
var knownStates = []kvscheduler.State{
	kvscheduler.StatePending, kvscheduler.StateConfigured, kvscheduler.StateFailed,
	kvscheduler.StateInvalid, kvscheduler.StateObtained,
}

// Metrics owns a Prometheus registry with the agent's collectors.
type Metrics struct {
	opts Options
	reg  *prometheus.Registry

	txns       *prometheus.CounterVec
	ops        *prometheus.CounterVec
	txnSeconds *prometheus.HistogramVec
	missed     prometheus.Counter

	mu      sync.Mutex // serializes transaction accounting
	lastSeq uint64     // newest transaction already counted
}

// New builds the registry and its collectors.
func New(opts Options) *Metrics {
	m := &Metrics{
		opts: opts,
		reg:  prometheus.NewRegistry(),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vppmesh_scheduler_txns_total", Help: "Scheduler transactions finished, by kind.",
		}, []string{"kind"}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vppmesh_scheduler_ops_total", Help: "Operations the scheduler executed, by operation and result (ok, error).",
		}, []string{"op", "result"}),
		txnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vppmesh_scheduler_txn_duration_seconds",
			Help:    "Duration of scheduler transactions, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5ms .. ~131s
		}, []string{"kind"}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vppmesh_scheduler_txns_unobserved_total",
			Help: "Transactions that left history before they could be counted (scrapes too far apart).",
		}),
	}
	m.reg.MustRegister(m.txns, m.ops, m.txnSeconds, m.missed, &pullCollector{opts: opts})
	if opts.GoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the metrics' own registry, for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format, counting
// transactions that finished since the last scrape first.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Sync()
		h.ServeHTTP(w, r)
	})
}

// ObserveTxn counts one finished transaction. Feeding it from a watcher and
// also reading history (Sync) never counts a transaction twice: both go by
// its sequence number, and only a number newer than the last counted one
// is taken.
func (m *Metrics) ObserveTxn(rec kvscheduler.TxnRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observeLocked(rec)
}

func (m *Metrics) observeLocked(rec kvscheduler.TxnRecord) {
	if rec.Seq <= m.lastSeq {
		return
	}
	if m.lastSeq != 0 && rec.Seq > m.lastSeq+1 {
		m.missed.Add(float64(rec.Seq - m.lastSeq - 1))
	}
	m.lastSeq = rec.Seq
	m.txns.WithLabelValues(string(rec.Kind)).Inc()
	m.txnSeconds.WithLabelValues(string(rec.Kind)).Observe(rec.Duration.Seconds())
	for _, op := range rec.Ops {
		result := "ok"
		if op.Error != "" {
			result = "error"
		}
		m.ops.WithLabelValues(string(op.Op), result).Inc()
	}
}

// Sync counts the transactions in the scheduler's history that were not
// counted yet. Handler calls it on every scrape.
func (m *Metrics) Sync() {
	if m.opts.Scheduler == nil {
		return
	}
	hist := m.opts.Scheduler.History(historyScan)
	sort.Slice(hist, func(i, j int) bool { return hist[i].Seq < hist[j].Seq })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range hist {
		m.observeLocked(rec)
	}
}

// pullCollector reads the sources that keep their own counters at scrape
// time, so nothing is copied between scrapes.
type pullCollector struct{ opts Options }

var (
	descValues = prometheus.NewDesc("vppmesh_scheduler_values",
		"Values known to the scheduler, by state and descriptor.", []string{"state", "descriptor"}, nil)
	descVPPCalls = prometheus.NewDesc("vppmesh_vpp_api_calls_total",
		"VPP binary API requests sent, by message name.", []string{"message"}, nil)
	descVPPConnected = prometheus.NewDesc("vppmesh_vpp_connected",
		"1 while the agent is connected to VPP.", nil, nil)
	descEtcdEvents = prometheus.NewDesc("vppmesh_etcd_events_total",
		"Config watch events received from etcd.", nil, nil)
	descParseErrors = prometheus.NewDesc("vppmesh_etcd_parse_errors_total",
		"Config values in etcd rejected by model validation.", nil, nil)
	descWatchRestarts = prometheus.NewDesc("vppmesh_etcd_watch_restarts_total",
		"Config watches restarted after an error, compaction or reconnect.", nil, nil)
	descStatusWrites = prometheus.NewDesc("vppmesh_etcd_status_writes_total",
		"Status keys written to etcd, by result (ok, error).", []string{"result"}, nil)
	descStatusTxns = prometheus.NewDesc("vppmesh_etcd_status_txns_total",
		"etcd transactions used to write status keys.", nil, nil)
	descStatusQueued = prometheus.NewDesc("vppmesh_etcd_status_queued",
		"Status writes waiting for etcd.", nil, nil)
	descResyncs = prometheus.NewDesc("vppmesh_etcd_resyncs_total",
		"Full resyncs of desired state from etcd.", nil, nil)
	descIfPackets = prometheus.NewDesc("vppmesh_interface_packets_total",
		"Packets through an agent interface, by direction (rx, tx), from VPP's stats segment.", []string{"interface", "direction"}, nil)
	descIfBytes = prometheus.NewDesc("vppmesh_interface_bytes_total",
		"Bytes through an agent interface, by direction (rx, tx).", []string{"interface", "direction"}, nil)
	descIfDrops = prometheus.NewDesc("vppmesh_interface_drops_total",
		"Packets dropped on an agent interface.", []string{"interface"}, nil)
	descXCPackets = prometheus.NewDesc("vppmesh_xconnect_packets_total",
		"Packets through a cross-connect, by direction (a_to_b, b_to_a) and stage (in: entered, out: left).", []string{"xconnect", "direction", "stage"}, nil)
	descXCBytes = prometheus.NewDesc("vppmesh_xconnect_bytes_total",
		"Bytes through a cross-connect, by direction and stage.", []string{"xconnect", "direction", "stage"}, nil)
	descXCDrops = prometheus.NewDesc("vppmesh_xconnect_drops_total",
		"Packets dropped on a cross-connect's interfaces.", []string{"xconnect"}, nil)
)

func (c *pullCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descValues
	ch <- descVPPCalls
	ch <- descVPPConnected
	ch <- descEtcdEvents
	ch <- descParseErrors
	ch <- descWatchRestarts
	ch <- descStatusWrites
	ch <- descStatusTxns
	ch <- descStatusQueued
	ch <- descResyncs
	for _, d := range []*prometheus.Desc{descIfPackets, descIfBytes, descIfDrops, descXCPackets, descXCBytes, descXCDrops} {
		ch <- d
	}
}

func (c *pullCollector) Collect(ch chan<- prometheus.Metric) {
	if c.opts.Scheduler != nil {
		counts := map[[2]string]int{}
		descriptors := map[string]bool{}
		for _, st := range c.opts.Scheduler.Status() {
			counts[[2]string{string(st.State), st.Descriptor}]++
			descriptors[st.Descriptor] = true
		}
		for d := range descriptors {
			for _, s := range knownStates {
				k := [2]string{string(s), d}
				if _, ok := counts[k]; !ok {
					counts[k] = 0
				}
			}
		}
		for k, n := range counts {
			constMetric(ch, descValues, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
	if c.opts.VPPCalls != nil {
		for msg, n := range c.opts.VPPCalls() {
			constMetric(ch, descVPPCalls, prometheus.CounterValue, float64(n), msg)
		}
	}
	if c.opts.VPPConnected != nil {
		v := 0.0
		if c.opts.VPPConnected() {
			v = 1
		}
		constMetric(ch, descVPPConnected, prometheus.GaugeValue, v)
	}
	if c.opts.Orchestrator != nil {
		s := c.opts.Orchestrator()
		constMetric(ch, descEtcdEvents, prometheus.CounterValue, float64(s.EtcdEvents))
		constMetric(ch, descParseErrors, prometheus.CounterValue, float64(s.ParseErrors))
		constMetric(ch, descWatchRestarts, prometheus.CounterValue, float64(s.WatchRestarts))
		constMetric(ch, descStatusWrites, prometheus.CounterValue, float64(s.StatusWrites), "ok")
		constMetric(ch, descStatusWrites, prometheus.CounterValue, float64(s.StatusWriteErrors), "error")
		constMetric(ch, descStatusTxns, prometheus.CounterValue, float64(s.StatusTxns))
		constMetric(ch, descStatusQueued, prometheus.GaugeValue, float64(s.StatusQueued))
		constMetric(ch, descResyncs, prometheus.CounterValue, float64(s.Resyncs))
	}
	if c.opts.Interfaces != nil {
		for name, v := range c.opts.Interfaces() {
			constMetric(ch, descIfPackets, prometheus.CounterValue, float64(v.RxPackets), name, "rx")
			constMetric(ch, descIfPackets, prometheus.CounterValue, float64(v.TxPackets), name, "tx")
			constMetric(ch, descIfBytes, prometheus.CounterValue, float64(v.RxBytes), name, "rx")
			constMetric(ch, descIfBytes, prometheus.CounterValue, float64(v.TxBytes), name, "tx")
			constMetric(ch, descIfDrops, prometheus.CounterValue, float64(v.Drops), name)
		}
	}
	if c.opts.CrossConnects != nil {
		for name, v := range c.opts.CrossConnects() {
			for _, f := range []struct {
				dir  string
				flow Flow
			}{{"a_to_b", v.AtoB}, {"b_to_a", v.BtoA}} {
				constMetric(ch, descXCPackets, prometheus.CounterValue, float64(f.flow.InPackets), name, f.dir, "in")
				constMetric(ch, descXCPackets, prometheus.CounterValue, float64(f.flow.OutPackets), name, f.dir, "out")
				constMetric(ch, descXCBytes, prometheus.CounterValue, float64(f.flow.InBytes), name, f.dir, "in")
				constMetric(ch, descXCBytes, prometheus.CounterValue, float64(f.flow.OutBytes), name, f.dir, "out")
			}
			constMetric(ch, descXCDrops, prometheus.CounterValue, float64(v.Drops), name)
		}
	}
}

// constMetric sends one metric; a label value Prometheus refuses (not UTF-8)
// becomes an invalid metric that the handler skips instead of a panic.
func constMetric(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}
