package e2e

import (
	"strings"
	"testing"
)

// device is a synthetic middle hop: no loss up to ndr, 0.3 % loss up to pdr,
// 10 % above; the sink gets what is not lost.
func device(ndr, pdr float64, tries *[]float64) func(float64) trialResult {
	return func(rate float64) trialResult {
		*tries = append(*tries, rate)
		r := trialResult{RatePPS: rate, DurationS: 1, Offered: uint64(rate), Sent: uint64(rate)}
		lost := uint64(0)
		switch {
		case rate > pdr:
			lost = r.Sent / 10
			r.Mid.TxFull = lost
		case rate > ndr:
			lost = r.Sent * 3 / 1000
			r.Mid.TxFull = lost
		}
		r.Received = r.Sent - lost
		r.account(64, false)
		return r
	}
}

func TestSearchFindsNDRAndPDR(t *testing.T) {
	var tries []float64
	cfg := searchConfig{MaxPPS: 8e6, MinPPS: 1e4, Resolution: 0.02, PDRLossPct: 0.5, Repeats: 2, MaxSteps: 40}
	res := runSearch(cfg, device(1e6, 1.5e6, &tries))
	if res.NDRPass > 1e6 || res.NDRPass < 0.98e6 || res.NDRFail <= 1e6 || res.NDRFail-res.NDRPass > 0.02*res.NDRFail {
		t.Errorf("NDR bracket [%v, %v], want it around 1e6 within 2 %%", res.NDRPass, res.NDRFail)
	}
	if res.PDRPass > 1.5e6 || res.PDRPass < 1.47e6 || res.PDRFail <= 1.5e6 {
		t.Errorf("PDR bracket [%v, %v], want it around 1.5e6", res.PDRPass, res.PDRFail)
	}
	if len(tries) != 2*len(res.Steps) {
		t.Errorf("%d trials for %d steps, want 2 repeats each", len(tries), len(res.Steps))
	}
	if len(res.Steps) > 20 {
		t.Errorf("%d steps: the search does not converge fast", len(res.Steps))
	}
	// Every trial lies inside [MinPPS, MaxPPS] and no rate is tried twice.
	seen := map[float64]bool{}
	for _, st := range res.Steps {
		if st.RatePPS < cfg.MinPPS || st.RatePPS > cfg.MaxPPS || seen[st.RatePPS] {
			t.Errorf("rate %v tried (seen before: %v)", st.RatePPS, seen[st.RatePPS])
		}
		seen[st.RatePPS] = true
	}
	// The steps' verdicts agree with the device.
	if st := res.step(res.NDRFail); st == nil || st.NDR || st.Trials[0].Limit == "" || !strings.HasPrefix(st.Trials[0].Limit, "sink:") {
		t.Errorf("first NDR failure step %+v: want a failure blamed on the sink's full ring", st)
	}
}

func TestSearchCeilingPasses(t *testing.T) {
	var tries []float64
	res := runSearch(searchConfig{MaxPPS: 1e5, MinPPS: 1e3, Resolution: 0.02, PDRLossPct: 0.5, Repeats: 1, MaxSteps: 40}, device(1e6, 2e6, &tries))
	if res.NDRPass != 1e5 || res.NDRFail != 0 || res.PDRPass != 1e5 || len(tries) != 1 {
		t.Fatalf("got %+v after %v, want the ceiling to pass in one trial", res, tries)
	}
}

func TestSearchNothingPasses(t *testing.T) {
	var tries []float64
	cfg := searchConfig{MaxPPS: 1e6, MinPPS: 1e5, Resolution: 0.02, PDRLossPct: 0.5, Repeats: 1, MaxSteps: 40}
	res := runSearch(cfg, device(0, 0, &tries))
	if res.NDRPass != 0 || res.PDRPass != 0 || res.NDRFail != 1e5 {
		t.Fatalf("got pass %v/%v fail %v, want nothing passing down to the minimum rate", res.NDRPass, res.PDRPass, res.NDRFail)
	}
	for _, r := range tries {
		if r < cfg.MinPPS {
			t.Errorf("tried %v below the minimum rate", r)
		}
	}
}

func TestSearchStopsAtMaxSteps(t *testing.T) {
	var tries []float64
	res := runSearch(searchConfig{MaxPPS: 8e6, MinPPS: 1e4, Resolution: 0.001, PDRLossPct: 0.5, Repeats: 1, MaxSteps: 2}, device(1e6, 1.5e6, &tries))
	if len(res.Steps) != 2 || len(tries) != 2 {
		t.Fatalf("%d steps, %d trials: want 2", len(res.Steps), len(tries))
	}
	// The second step is under the first failure's delivered rate.
	if tries[1] >= tries[0] || tries[1] < 1e4 {
		t.Fatalf("second rate %v after %v", tries[1], tries[0])
	}
}

func TestIntervalIgnoresPassAboveFailure(t *testing.T) {
	steps := []searchStep{{RatePPS: 4, NDR: false}, {RatePPS: 2, NDR: true}, {RatePPS: 3, NDR: false}, {RatePPS: 3.5, NDR: true}}
	pass, fail := interval(steps, func(s searchStep) bool { return s.NDR })
	if pass != 2 || fail != 3 {
		t.Fatalf("interval = [%v, %v], want [2, 3]", pass, fail)
	}
}

func TestTrialAccounting(t *testing.T) {
	for _, c := range []struct {
		name      string
		r         trialResult
		direct    bool
		loss      uint64
		short     bool
		limitPref string
	}{
		{"clean", trialResult{Offered: 100000, Sent: 99950, Received: 99950}, false, 0, false, ""},
		{"generator short", trialResult{Offered: 100000, Sent: 80000, Received: 80000}, false, 0, true, "generator:"},
		{"middle hop refused", trialResult{Offered: 100000, Sent: 80000, Received: 80000, GenRingFull: 7}, false, 20000, false, "middle hop: did not drain"},
		{"sink refused (direct)", trialResult{Offered: 100000, Sent: 80000, Received: 80000, GenRingFull: 7}, true, 20000, false, "sink: did not drain"},
		{"sink ring full", trialResult{Offered: 100000, Sent: 100000, Received: 99000, Mid: midCounters{TxFull: 1000}}, false, 1000, false, "sink: its ring"},
		{"middle drops", trialResult{Offered: 100000, Sent: 100000, Received: 99000, Mid: midCounters{Drops: 1000}}, false, 1000, false, "middle hop: dropped"},
		{"unattributed", trialResult{Offered: 100000, Sent: 100000, Received: 99000}, false, 1000, false, "unattributed"},
		{"partly unattributed", trialResult{Offered: 100000, Sent: 100000, Received: 99000, Mid: midCounters{TxFull: 400}}, false, 1000, false, "sink: its ring"},
	} {
		r := c.r
		r.account(64, c.direct)
		if r.Loss != c.loss || r.GenShort != c.short || !strings.HasPrefix(r.Limit, c.limitPref) || (c.limitPref == "") != (r.Limit == "") {
			t.Errorf("%s: loss %d short %v limit %q; want %d %v %q…", c.name, r.Loss, r.GenShort, r.Limit, c.loss, c.short, c.limitPref)
		}
		if c.name == "partly unattributed" && !strings.Contains(r.Limit, "unattributed: 600 frames") {
			t.Errorf("%s: limit %q does not name the 600 frames no counter explains", c.name, r.Limit)
		}
		if want := 100 * float64(c.loss) / float64(r.Offered); r.LossPct != want {
			t.Errorf("%s: loss %% %v, want %v", c.name, r.LossPct, want)
		}
	}
}

func TestMidCountersSub(t *testing.T) {
	a := midCounters{Rx: 10, Tx: 8, TxFull: 2, Drops: 1, Errors: map[string]uint64{"/err/x/no free tx slots": 5, "/err/y": 3}}
	b := midCounters{Rx: 4, Tx: 4, Errors: map[string]uint64{"/err/y": 3}}
	d := a.sub(b)
	if d.Rx != 6 || d.Tx != 4 || d.TxFull != 2 || d.Drops != 1 || len(d.Errors) != 1 || d.Errors["/err/x/no free tx slots"] != 5 {
		t.Fatalf("sub = %+v", d)
	}
}

func TestParseProcStatCPU(t *testing.T) {
	// The command may contain spaces and parentheses; utime 250 + stime 50 ticks.
	s := "4242 (vpp_main (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 10\n"
	got, err := parseProcStatCPU(s)
	if err != nil || got != 3.0 {
		t.Fatalf("parseProcStatCPU = %v, %v; want 3 s", got, err)
	}
	if _, err := parseProcStatCPU("garbage"); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := parseProcStatCPU("1 (x) S 1 2"); err == nil {
		t.Fatal("short line accepted")
	}
}

func TestBenchNotesAndMarkdown(t *testing.T) {
	rep := &benchReport{CPUs: 2, LoadAvg: [2]float64{1.9, 2.1}, Settings: benchSettings{PDRLossPct: 0.5, Layout: "L"}, Cells: []benchCell{
		{Row: "memif-xc-64B", FrameSize: 64, Hop: hopDirect, NDR: benchFigure{PPS: 2e6, MinPPS: 2e6, MaxPPS: 2e6, FirstFail: 2.1e6}},
		{Row: "memif-xc-64B", FrameSize: 64, Hop: hopVPPSim, NDR: benchFigure{PPS: 1e6, MinPPS: 0.9e6, MaxPPS: 1.1e6, FirstFail: 1.05e6, Limit: "middle hop: x"}},
		{Row: "memif-xc-64B", FrameSize: 64, Hop: hopVPP, NDR: benchFigure{PPS: 3e6, MinPPS: 3e6, MaxPPS: 3e6}},
		{Row: "memif-bd2-64B", FrameSize: 64, Hop: hopVPPSim, NDR: benchFigure{FirstFail: 1e4}},
		{Row: "memif-xc-1500B", FrameSize: 1500, Hop: hopVPP, Skipped: "no VPP"},
	}}
	rep.Notes = benchNotes(rep)
	all := strings.Join(rep.Notes, "\n")
	if !strings.Contains(all, "NOT faster than vpp") || strings.Contains(all, "WARNING") {
		t.Errorf("notes: %s", all)
	}
	md := benchMarkdown(rep)
	for _, want := range []string{
		"| memif-xc-64B | vppsim | 1.000 [0.900–1.100] |", // figure with spread
		"| 0.33 |",                             // ÷ VPP
		"≥ 3.000",                              // VPP's ceiling passed
		"| memif-bd2-64B | vppsim | < 0.010 |", // nothing passed
		"skipped: no VPP",
		"load 1.9 → 2.1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// A loaded machine is called out first.
	rep.LoadAvg = [2]float64{7, 6}
	if n := benchNotes(rep); !strings.HasPrefix(n[0], "WARNING: load average 7.0") {
		t.Errorf("first note %q", n[0])
	}
}
