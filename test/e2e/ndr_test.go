package e2e

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The no-drop-rate search of the dataplane benchmark (RFC 2544 throughput, as
// FD.io CSIT runs it): the generator offers a fixed rate for a trial of fixed
// length, loss is counted at the sink and at the middle hop's own counters,
// and a binary search finds the highest rate with no loss (NDR) and with at
// most PDRLossPct loss (PDR). Each rate is tried Repeats times and passes only
// if every repeat does. This file holds the bookkeeping (pure, unit-tested
// below in ndr_search_test.go); bench_test.go runs the trials.

// midCounters are the middle hop's own counters over one trial (deltas),
// summed over its interfaces.
type midCounters struct {
	Rx uint64 `json:"rx"` // frames the middle hop received
	Tx uint64 `json:"tx"` // frames it transmitted
	// TxFull counts frames dropped because an egress ring (the sink's, or
	// the vhost peer's) had no free slot: the receiver was too slow.
	TxFull uint64 `json:"tx_full"`
	// Drops are the middle hop's other drops (receive misses, receive
	// errors, error-drop): frames it did not manage itself.
	Drops uint64 `json:"drops"`
	// Errors are VPP's non-zero error counters (/err/<node>/<reason>).
	Errors map[string]uint64 `json:"errors,omitempty"`
}

func (m midCounters) add(o midCounters) midCounters {
	s := midCounters{Rx: m.Rx + o.Rx, Tx: m.Tx + o.Tx, TxFull: m.TxFull + o.TxFull, Drops: m.Drops + o.Drops}
	for _, src := range []map[string]uint64{m.Errors, o.Errors} {
		for k, v := range src {
			if s.Errors == nil {
				s.Errors = map[string]uint64{}
			}
			s.Errors[k] += v
		}
	}
	return s
}

func (m midCounters) sub(o midCounters) midCounters {
	d := midCounters{Rx: m.Rx - o.Rx, Tx: m.Tx - o.Tx, TxFull: m.TxFull - o.TxFull, Drops: m.Drops - o.Drops}
	for k, v := range m.Errors {
		if v -= o.Errors[k]; v != 0 {
			if d.Errors == nil {
				d.Errors = map[string]uint64{}
			}
			d.Errors[k] = v
		}
	}
	return d
}

// trialResult is one fixed-length trial at one offered rate.
type trialResult struct {
	RatePPS   float64 `json:"rate_pps"`
	DurationS float64 `json:"duration_s"`
	Offered   uint64  `json:"offered"`  // rate × duration
	Sent      uint64  `json:"sent"`     // frames the generator's ring accepted
	Received  uint64  `json:"received"` // frames the sink counted
	// GenRingFull counts generator bursts a full ring cut short: its
	// receiver (the middle hop, or the sink when direct) did not drain it.
	GenRingFull uint64      `json:"gen_ring_full"`
	SinkRxDrops uint64      `json:"sink_rx_drops"` // frames over the sink's receive buffer
	Mid         midCounters `json:"middle"`
	// MidCPUS is the middle hop's CPU time (user+system, all threads) over
	// WindowS, the trial's steady part (first frame + trial length).
	MidCPUS float64 `json:"middle_cpu_s"`
	WindowS float64 `json:"window_s"`
	Loss    uint64  `json:"loss"` // frames offered and not delivered (see account)
	LossPct float64 `json:"loss_pct"`
	// GenShort: the generator did not offer the rate and its ring was never
	// full, so the trial says nothing about the middle hop.
	GenShort bool   `json:"gen_short,omitempty"`
	Limit    string `json:"limit,omitempty"` // who lost frames (empty: nobody)
}

// pacingSlack is how far below rate × duration the generator's count may end
// without counting as short: its token bucket starts empty and stops at a
// deadline, so a couple of bursts and 0.1 % are within its pacing.
func pacingSlack(offered uint64, batch int) uint64 { return offered/1000 + uint64(2*batch) }

// account fills Loss, LossPct, GenShort and Limit from the counts. Frames
// offered but refused by a full generator ring count as lost (the receiver of
// that ring did not keep up); a generator that fell short with room in its
// ring makes the trial invalid (GenShort). direct is a trial without a middle
// hop (generator straight into the sink).
func (r *trialResult) account(batch int, direct bool) {
	var short uint64
	if r.Sent < r.Offered {
		short = r.Offered - r.Sent
	}
	isShort := short > pacingSlack(r.Offered, batch)
	var inflight uint64
	if r.Received < r.Sent {
		inflight = r.Sent - r.Received
	}
	r.Loss = inflight
	r.GenShort = isShort && r.GenRingFull == 0
	if isShort && r.GenRingFull > 0 {
		r.Loss += short
	}
	if r.Offered > 0 {
		r.LossPct = 100 * float64(r.Loss) / float64(r.Offered)
	}
	r.Limit = r.limit(short, isShort, direct)
}

// limit names who lost the frames, from each component's own counters.
func (r *trialResult) limit(short uint64, isShort, direct bool) string {
	if r.GenShort {
		return fmt.Sprintf("generator: offered %d of %d frames with room in its ring", r.Sent, r.Offered)
	}
	if r.Loss == 0 {
		return ""
	}
	var who []string
	if isShort {
		hop := "middle hop"
		if direct {
			hop = "sink"
		}
		who = append(who, fmt.Sprintf("%s: did not drain the generator's ring (%d frames refused, %d full bursts)", hop, short, r.GenRingFull))
	}
	if r.Mid.TxFull > 0 {
		who = append(who, fmt.Sprintf("sink: its ring was full (%d frames the middle hop could not transmit)", r.Mid.TxFull))
	}
	if r.Mid.Drops > 0 {
		who = append(who, fmt.Sprintf("middle hop: dropped %d (receive miss/error, error-drop)", r.Mid.Drops))
	}
	if r.SinkRxDrops > 0 {
		who = append(who, fmt.Sprintf("sink: dropped %d over its receive buffer", r.SinkRxDrops))
	}
	// Frames the generator's ring took and the sink never counted, beyond
	// what the counters above explain (a kernel link on the VXLAN row).
	var inflight uint64
	if r.Received < r.Sent {
		inflight = r.Sent - r.Received
	}
	if counted := r.Mid.TxFull + r.Mid.Drops + r.SinkRxDrops; inflight > counted {
		who = append(who, fmt.Sprintf("unattributed: %d frames lost with no drop counter moving", inflight-counted))
	}
	return strings.Join(who, "; ")
}

// searchConfig bounds one NDR/PDR search.
type searchConfig struct {
	MaxPPS     float64 // the first rate tried: the search's ceiling
	MinPPS     float64 // below this a rate is not tried (NDR reported as 0)
	Resolution float64 // an interval [pass, fail] is done when narrower than this fraction of fail
	PDRLossPct float64 // partial drop rate: loss allowed, in percent of offered
	Repeats    int     // trials per rate; the rate passes only if all do
	MaxSteps   int     // rates tried at most (quick mode: 2)
}

// searchStep is one rate and its repeated trials.
type searchStep struct {
	RatePPS float64       `json:"rate_pps"`
	NDR     bool          `json:"pass_ndr"`
	PDR     bool          `json:"pass_pdr"`
	Trials  []trialResult `json:"trials"`
}

// searchResult is one search's outcome. A zero Fail rate means the ceiling
// passed (the figure is "at least"); a zero Pass rate that nothing at or
// above MinPPS passed.
type searchResult struct {
	NDRPass float64      `json:"ndr_pps"`
	NDRFail float64      `json:"ndr_first_fail_pps"`
	PDRPass float64      `json:"pdr_pps"`
	PDRFail float64      `json:"pdr_first_fail_pps"`
	Steps   []searchStep `json:"steps"`
}

// step finds the trials of the search at rate (nil if never tried).
func (s searchResult) step(rate float64) *searchStep {
	for i := range s.Steps {
		if s.Steps[i].RatePPS == rate {
			return &s.Steps[i]
		}
	}
	return nil
}

// runSearch bisects for NDR and PDR together: every trial narrows both
// intervals; NDR is refined first, then PDR. The first guess below a failing
// ceiling is the rate the sink actually received there (CSIT's MLRsearch
// starts from the forwarding rate the same way).
func runSearch(cfg searchConfig, trial func(rate float64) trialResult) searchResult {
	var res searchResult
	var hint float64 // delivered rate at the lowest failing rate
	rate := cfg.MaxPPS
	for len(res.Steps) < cfg.MaxSteps && rate > 0 {
		st := searchStep{RatePPS: rate, NDR: true, PDR: true}
		for range max(cfg.Repeats, 1) {
			tr := trial(rate)
			st.Trials = append(st.Trials, tr)
			if tr.GenShort || tr.Loss != 0 {
				st.NDR = false
			}
			if tr.GenShort || tr.LossPct > cfg.PDRLossPct {
				st.PDR = false
			}
		}
		res.Steps = append(res.Steps, st)
		res.NDRPass, res.NDRFail = interval(res.Steps, func(s searchStep) bool { return s.NDR })
		res.PDRPass, res.PDRFail = interval(res.Steps, func(s searchStep) bool { return s.PDR })
		if !st.PDR || !st.NDR {
			d := slices.MinFunc(st.Trials, func(a, b trialResult) int { return cmp.Compare(a.Received, b.Received) })
			if d.DurationS > 0 {
				hint = float64(d.Received) / d.DurationS
			}
		}
		rate = nextRate(cfg, res, hint)
	}
	return res
}

// interval is one goal's bracket from every step so far: fail is the lowest
// rate that failed (0: none), pass the highest rate below it that passed (0:
// none). A pass above a failure (noise) does not count: the figure is the
// rate under which nothing failed.
func interval(steps []searchStep, ok func(searchStep) bool) (pass, fail float64) {
	for _, st := range steps {
		if !ok(st) && (fail == 0 || st.RatePPS < fail) {
			fail = st.RatePPS
		}
	}
	for _, st := range steps {
		if ok(st) && (fail == 0 || st.RatePPS < fail) {
			pass = max(pass, st.RatePPS)
		}
	}
	return pass, fail
}

// nextRate is the next rate to try, 0 when both intervals are narrow enough.
func nextRate(cfg searchConfig, res searchResult, hint float64) float64 {
	for _, iv := range [][2]float64{{res.NDRPass, res.NDRFail}, {res.PDRPass, res.PDRFail}} {
		lo, hi := iv[0], iv[1]
		if hi == 0 || hi-lo <= cfg.Resolution*hi || hi <= cfg.MinPPS {
			continue
		}
		if lo == 0 {
			// Nothing passed yet: halve, or go straight to a little under
			// what the sink got at the lowest failure when that is lower
			// (a middle hop far below the ceiling).
			r := hi / 2
			if h := hint * 0.95; h > 0 && h < r {
				r = h
			}
			return max(r, cfg.MinPPS)
		}
		return (lo + hi) / 2
	}
	return 0
}

// procCPUSeconds is a process's user+system CPU time, all threads, from
// /proc/<pid>/stat (fields 14 and 15, in USER_HZ = 100 ticks per second on
// every Linux architecture the project builds for).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(string(b))
}

func parseProcStatCPU(s string) (float64, error) {
	// The command name (field 2) is in parentheses and may hold spaces or ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command field in %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the command", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: utime %q stime %q", f[11], f[12])
	}
	return float64(ut+st) / 100, nil
}
