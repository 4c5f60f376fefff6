package e2e

import (
	"fmt"
	"strings"
	"testing"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/statsclient"
)

// statsReader reads a middle hop's own counters from its stats segment (VPP's,
// or vppsim's in the same format): interface counters summed over every
// interface and thread, and VPP's error counters.
type statsReader struct {
	c   *statsclient.StatsClient
	sim bool // vppsim counts a full egress ring in /if/drops as well as /if/tx-error
}

func newStatsReader(socket string, sim bool) (*statsReader, error) {
	c := statsclient.NewStatsClient(socket)
	if err := c.Connect(); err != nil {
		return nil, fmt.Errorf("stats segment %s: %w", socket, err)
	}
	return &statsReader{c: c, sim: sim}, nil
}

func (r *statsReader) close() { _ = r.c.Disconnect() }

func (r *statsReader) mustRead(t *testing.T) midCounters {
	t.Helper()
	m, err := r.read()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// txFullError says whether a VPP error counter counts frames an egress ring
// had no room for. VPP 25.10 names them /err/memif1/2-tx/no_free_slots (memif:
// the frames are freed, not counted in /if/drops) and
// /err/VirtualEthernet0/0/0-tx/tx packet drops (no available descriptors)
// (vhost-user: the frames go to error-drop, so /if/drops counts them too).
func txFullError(name string) (full, inDrops bool) {
	switch {
	case strings.Contains(name, "no_free_slots") || strings.Contains(name, "no free tx slots"):
		return true, false
	case strings.Contains(name, "no available descriptors"):
		return true, true
	}
	return false, false
}

func (r *statsReader) read() (midCounters, error) {
	entries, err := r.c.DumpStats("/if/", "/err/")
	if err != nil {
		return midCounters{}, err
	}
	return sumStats(entries, r.sim), nil
}

// sumStats folds stat entries into midCounters.
func sumStats(entries []adapter.StatEntry, sim bool) midCounters {
	var m midCounters
	var txErr, drops, fullInDrops uint64
	for _, e := range entries {
		name := string(e.Name)
		var v, pkts uint64
		switch d := e.Data.(type) {
		case adapter.SimpleCounterStat:
			for _, th := range d {
				for _, c := range th {
					v += uint64(c)
				}
			}
		case adapter.CombinedCounterStat:
			for _, th := range d {
				for _, c := range th {
					pkts += c.Packets()
				}
			}
		case adapter.ErrorStat:
			for _, c := range d {
				v += uint64(c)
			}
		}
		switch {
		case name == "/if/rx":
			m.Rx += pkts
		case name == "/if/tx":
			m.Tx += pkts
		case name == "/if/tx-error":
			txErr += v
		case name == "/if/drops":
			drops += v
		case name == "/if/rx-miss" || name == "/if/rx-no-buf" || name == "/if/rx-error":
			m.Drops += v
		case strings.HasPrefix(name, "/err/") && v != 0:
			if m.Errors == nil {
				m.Errors = map[string]uint64{}
			}
			m.Errors[name] += v
			if full, inDrops := txFullError(name); full {
				m.TxFull += v
				if inDrops {
					fullInDrops += v
				}
			}
		}
	}
	m.TxFull += txErr
	// Frames counted as a full egress ring are not counted again as drops.
	if sim {
		fullInDrops += txErr
	}
	drops -= min(drops, fullInDrops)
	m.Drops += drops
	return m
}

func TestSumStats(t *testing.T) {
	entries := []adapter.StatEntry{
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/if/rx")}, Data: adapter.CombinedCounterStat{{{10, 640}, {5, 320}}, {{1, 64}}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/if/tx")}, Data: adapter.CombinedCounterStat{{{4, 256}, {9, 576}}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/if/tx-error")}, Data: adapter.SimpleCounterStat{{0, 2}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/if/drops")}, Data: adapter.SimpleCounterStat{{1, 2}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/if/rx-miss")}, Data: adapter.SimpleCounterStat{{0, 1}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/err/memif1/2-tx/no_free_slots")}, Data: adapter.SimpleCounterStat{{3}, {4}}},
		{StatIdentifier: adapter.StatIdentifier{Name: []byte("/err/l2-output/L2 output packets")}, Data: adapter.ErrorStat{7}},
	}
	vpp := sumStats(entries, false)
	if vpp.Rx != 16 || vpp.Tx != 13 || vpp.TxFull != 2+7 || vpp.Drops != 3+1 || len(vpp.Errors) != 2 {
		t.Errorf("VPP: %+v", vpp)
	}
	// vhost-user's full rings are in /if/drops too: counted once, as full.
	vh := sumStats(append(entries, adapter.StatEntry{StatIdentifier: adapter.StatIdentifier{
		Name: []byte("/err/VirtualEthernet0/0/0-tx/tx packet drops (no available descriptors)")}, Data: adapter.SimpleCounterStat{{2}}}), false)
	if vh.TxFull != 2+7+2 || vh.Drops != 1+1 {
		t.Errorf("VPP with vhost: %+v", vh)
	}
	// vppsim's /if/drops already holds its tx-error frames: not counted twice.
	sim := sumStats(entries, true)
	if sim.TxFull != 9 || sim.Drops != 1+1 {
		t.Errorf("vppsim: %+v", sim)
	}
}
