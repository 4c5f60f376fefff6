package e2e

import "testing"

func TestParseTestpmdStats(t *testing.T) {
	out := `
  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 1000           RX-dropped: 2             RX-total: 1002
  TX-packets: 998            TX-dropped: 0             TX-total: 998
  ----------------------------------------------------------------------------

  ---------------------- Forward statistics for port 1  ----------------------
  RX-packets: 7              RX-dropped: 0             RX-total: 7
  TX-packets: 1000           TX-dropped: 3             TX-total: 1003
  ----------------------------------------------------------------------------

  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 1007           RX-dropped: 2             RX-total: 1009
  TX-packets: 1998           TX-dropped: 3             TX-total: 2001
`
	got := parseTestpmdStats(out)
	want := map[int]portStats{0: {RX: 1000, TX: 998, RXDropped: 2}, 1: {RX: 7, TX: 1000, TXDropped: 3}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
