package mesh

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// Metrics are the mesh's Prometheus collectors: connections by state (of
// the connections this agent owns), heals, and selection and heal latency
// histograms. Register them with Collectors and pass the value to
// SetObserver.
type Metrics struct {
	m        *Controller
	selected prometheus.Histogram
	healed   prometheus.Histogram
	states   *prometheus.Desc
	heals    *prometheus.Desc
	conflict *prometheus.Desc
}

// NewMetrics builds the collectors of m and makes them its observer.
func NewMetrics(m *Controller) *Metrics {
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	x := &Metrics{
		m: m,
		selected: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vppmesh_mesh_selection_seconds", Buckets: buckets,
			Help: "Time from a connection seen without an endpoint to its status UP.",
		}),
		healed: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vppmesh_mesh_heal_seconds", Buckets: buckets,
			Help: "Time from a connection losing its endpoint to its status UP on another one.",
		}),
		states:   prometheus.NewDesc("vppmesh_mesh_connections", "Connections this agent owns, by state.", []string{"state"}, nil),
		heals:    prometheus.NewDesc("vppmesh_mesh_heals_total", "Connections moved off an endpoint that went away or whose link stayed down.", nil, nil),
		conflict: prometheus.NewDesc("vppmesh_mesh_decision_conflicts_total", "Decision transactions refused by etcd because another writer was first.", nil, nil),
	}
	m.SetObserver(x)
	return x
}

// Selected observes a selection latency.
func (x *Metrics) Selected(d time.Duration) { x.selected.Observe(d.Seconds()) }

// Healed observes a heal latency.
func (x *Metrics) Healed(d time.Duration) { x.healed.Observe(d.Seconds()) }

// Collectors returns what to register.
func (x *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{x.selected, x.healed, x}
}

// Describe implements prometheus.Collector.
func (x *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- x.states
	ch <- x.heals
	ch <- x.conflict
}

// Collect implements prometheus.Collector.
func (x *Metrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	for _, name := range vppmeshv1.ConnectionStatus_State_name {
		counts[name] = 0
	}
	for _, st := range x.m.Statuses() {
		counts[st.GetState().String()]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(x.states, prometheus.GaugeValue, float64(n), s)
	}
	ch <- prometheus.MustNewConstMetric(x.heals, prometheus.CounterValue, float64(x.m.stats.Heals.Load()))
	ch <- prometheus.MustNewConstMetric(x.conflict, prometheus.CounterValue, float64(x.m.stats.Conflicts.Load()))
}
