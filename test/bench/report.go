package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is what results.json holds.
type Report struct {
	Started  time.Time         `json:"started"`
	Machine  Machine           `json:"machine"`
	Quick    bool              `json:"quick"`
	Runs     int               `json:"runs"`
	VPP      string            `json:"vpp"` // the implementations measured ("vppsim", "vppsim+vpp") or the external socket
	Sizes    []SizeResult      `json:"sizes"`
	Targets  []TargetResult    `json:"targets"`
	Problems []string          `json:"problems,omitempty"`
	Units    map[string]string `json:"units"`
}

// Machine describes where the figures were taken.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Go       string `json:"go"`
	OS       string `json:"os"`
}

// SizeResult is every metric's summary at one number of cross-connects.
type SizeResult struct {
	// Impl is the VPP the size was measured on: "vppsim", "vpp" (FD.io
	// VPP) or "external".
	Impl    string             `json:"impl"`
	N       int                `json:"n"`
	Metrics map[string]Summary `json:"metrics"`
	Errors  []string           `json:"errors,omitempty"`
}

// Target is a goal from issue 6, checked against a metric's median.
type Target struct {
	Name   string
	Metric string
	N      int
	Limit  float64
	Unit   string
}

// TargetResult says whether a target was met and by how much it was missed.
type TargetResult struct {
	Name   string  `json:"name"`
	Metric string  `json:"metric"`
	N      int     `json:"n"`
	Limit  float64 `json:"limit"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	// MissedBy is value/limit when missed (2.0 = twice the target).
	MissedBy float64 `json:"missed_by,omitempty"`
	Measured bool    `json:"measured"`
}

// Targets are issue 6's goals for this 2-core machine.
var Targets = []Target{
	{"10k cross-connects bulk-applied", "bulk_s", 10000, 2, "s"},
	{"agent/floor ratio", "agent_floor_ratio", 10000, 1.5, "x"},
	{"put-to-programmed p99", "latency_p99_ms", 10000, 15, "ms"},
	{"unchanged resync of 10k", "resync_unchanged_s", 10000, 1, "s"},
	{"unchanged resync writes", "resync_unchanged_writes", 10000, 0, "calls"},
	{"agent memory per cross-connect", "rss_per_xc_kib", 10000, 10, "KiB"},
}

// MachineInfo reads the core count and CPU model.
func MachineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUModel: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Run runs every size cfg.Runs times on every implementation and returns the
// report. A failed run is recorded in the report and the session goes on.
func Run(ctx context.Context, cfg Config) *Report {
	r := &Report{Started: time.Now().UTC(), Machine: MachineInfo(), Runs: cfg.Runs, Units: metricUnits}
	impls := cfg.Impls
	if len(impls) == 0 {
		impls = []string{"vppsim"}
	}
	if cfg.VPPSocket != "" {
		impls = []string{"external"}
	}
	r.VPP = strings.Join(impls, "+")
	if cfg.VPPSocket != "" {
		r.VPP = cfg.VPPSocket
	}
	for _, impl := range impls {
		sizes := cfg.Sizes
		if impl == "vpp" && len(cfg.VPPSizes) > 0 {
			sizes = cfg.VPPSizes
		}
		for _, n := range sizes {
			sr := SizeResult{Impl: impl, N: n, Metrics: map[string]Summary{}}
			samples := map[string][]float64{}
			for run := 1; run <= cfg.Runs && ctx.Err() == nil; run++ {
				cfg.Log.Info("run start", "impl", impl, "n", n, "run", run)
				res, err := RunOnce(ctx, cfg, impl, n, run)
				if err != nil {
					cfg.Log.Error("run failed", "impl", impl, "n", n, "run", run, "error", err)
					sr.Errors = append(sr.Errors, err.Error())
				}
				for k, v := range res {
					samples[k] = append(samples[k], v)
				}
				cfg.Log.Info("run done", "impl", impl, "n", n, "run", run, "results", res)
			}
			for k, v := range samples {
				sr.Metrics[k] = Summarize(v)
			}
			r.Sizes = append(r.Sizes, sr)
		}
	}
	r.Targets = checkTargets(r)
	for _, impl := range impls {
		sub := &Report{Runs: r.Runs}
		for _, s := range r.Sizes {
			if s.Impl == impl {
				sub.Sizes = append(sub.Sizes, s)
			}
		}
		// Call counts and the VPP-loss resync need a VPP this session started.
		for _, p := range Sanity(sub, impl != "external", cfg.Only) {
			r.Problems = append(r.Problems, impl+": "+p)
		}
	}
	return r
}

func checkTargets(r *Report) []TargetResult {
	var out []TargetResult
	for _, t := range Targets {
		tr := TargetResult{Name: t.Name, Metric: t.Metric, N: t.N, Limit: t.Limit, Unit: t.Unit}
		for _, s := range r.Sizes {
			// Issue 6's targets are about the agent on vppsim (or the
			// external VPP it was pointed at).
			if s.Impl == "vpp" {
				continue
			}
			if m, ok := s.Metrics[t.Metric]; ok && s.N == t.N {
				tr.Measured, tr.Value = true, m.Median
				tr.Met = m.Median <= t.Limit
				if !tr.Met && t.Limit > 0 {
					tr.MissedBy = m.Median / t.Limit
				}
			}
		}
		out = append(out, tr)
	}
	return out
}

// Sanity lists what makes the figures meaningless: failed runs, zero or
// missing timings, writes during an unchanged resync. It never judges speed.
// Only the metrics of the scenarios in only (empty: all) are required.
func Sanity(r *Report, haveSim bool, only []string) []string {
	var p []string
	need := []string{"floor_s", "bulk_s", "agent_floor_ratio", "latency_p50_ms", "latency_p99_ms", "resync_unchanged_s", "churn_ops_per_s", "rss_per_xc_kib", "heap_per_xc_kib"}
	if haveSim {
		need = append(need, "bulk_write_calls", "bulk_calls_per_s", "resync_vpp_lost_s")
	}
	for _, s := range r.Sizes {
		for _, e := range s.Errors {
			p = append(p, fmt.Sprintf("n=%d: %s", s.N, e))
		}
		for _, k := range need {
			if sc := scenarioOf(k); len(only) > 0 && sc != "bulk" && !slices.Contains(only, sc) {
				continue
			}
			m, ok := s.Metrics[k]
			if !ok || len(m.Samples) < r.Runs || m.Min <= 0 {
				p = append(p, fmt.Sprintf("n=%d: %s missing or not positive (%v)", s.N, k, m.Samples))
			}
		}
		if haveSim && (len(only) == 0 || slices.Contains(only, "resync-unchanged")) {
			if m, ok := s.Metrics["resync_unchanged_writes"]; !ok || m.Max != 0 {
				p = append(p, fmt.Sprintf("n=%d: unchanged resync wrote to VPP (%v calls)", s.N, m.Samples))
			}
		}
		if g0, g1 := s.Metrics["churn_goroutines_start"], s.Metrics["churn_goroutines_end"]; g1.Max > g0.Max+20 {
			p = append(p, fmt.Sprintf("n=%d: goroutines grew during churn (%v -> %v)", s.N, g0.Samples, g1.Samples))
		}
	}
	return p
}

// WriteJSON writes the report.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Markdown renders the short table: one row per metric, one column per size.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# vppmesh benchmarks\n\n%s, %d cores (%s), %s, VPP: %s, %d run(s) per size%s. Cells: median (min–max).\n\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Go, r.VPP, r.Runs,
		map[bool]string{true: ", quick mode", false: ""}[r.Quick])
	b.WriteString("| metric | unit |")
	for _, s := range r.Sizes {
		if s.Impl != "" {
			fmt.Fprintf(&b, " %s N=%d |", s.Impl, s.N)
		} else {
			fmt.Fprintf(&b, " N=%d |", s.N)
		}
	}
	b.WriteString("\n|---|---|")
	for range r.Sizes {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	keys := make([]string, 0, len(metricUnits))
	for k := range metricUnits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		seen := false
		for _, s := range r.Sizes {
			_, ok := s.Metrics[k]
			seen = seen || ok
		}
		if !seen {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |", k, metricUnits[k])
		for _, s := range r.Sizes {
			m, ok := s.Metrics[k]
			switch {
			case !ok:
				b.WriteString(" – |")
			case len(m.Samples) == 1:
				fmt.Fprintf(&b, " %s |", num(m.Median))
			default:
				fmt.Fprintf(&b, " %s (%s–%s) |", num(m.Median), num(m.Min), num(m.Max))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Targets (issue 6, medians at N=10,000, vppsim)\n\n| target | limit | measured | verdict |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		verdict := "not measured"
		switch {
		case !t.Measured:
		case t.Met:
			verdict = "met"
		case t.MissedBy > 0:
			verdict = fmt.Sprintf("missed: %.1f× the limit", t.MissedBy)
		default:
			verdict = fmt.Sprintf("missed by %s %s", num(t.Value-t.Limit), t.Unit)
		}
		val := "–"
		if t.Measured {
			val = num(t.Value) + " " + t.Unit
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s |\n", t.Name, num(t.Limit), t.Unit, val, verdict)
	}
	if len(r.Problems) > 0 {
		b.WriteString("\n## Problems\n\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	return b.String()
}

func num(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f >= 100 || f <= -100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10 || f <= -10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.3g", f)
	}
}
