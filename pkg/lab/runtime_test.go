package lab

import (
	"context"
	"strings"
	"testing"
)

func TestTestpmdCounters(t *testing.T) {
	log := `Port statistics ====================================
  ######################## NIC statistics for port 0  ########################
  RX-packets: 5          RX-missed: 0          RX-bytes:  320
  TX-packets: 4          TX-errors: 0          TX-bytes:  256
[2J[1;1H
Port statistics ====================================
  ######################## NIC statistics for port 0  ########################
  RX-packets: 1000       RX-missed: 0          RX-bytes:  64000
  RX-errors: 0
  TX-packets: 998        TX-errors: 0          TX-bytes:  63872
`
	rx, tx, ok := testpmdCounters(log)
	if !ok || rx != 1000 || tx != 998 {
		t.Errorf("counters %d/%d %v: want the last block's 1000 received, 998 sent", rx, tx, ok)
	}
	if _, _, ok := testpmdCounters("Configuring Port 0\n"); ok {
		t.Error("counters found in a log without statistics")
	}
}

func TestRedact(t *testing.T) {
	got := strings.Join(redact([]string{"run", "--secret", "hunter2", "--secret=abc", "--id", "1"}), " ")
	if strings.Contains(got, "hunter2") || strings.Contains(got, "abc") || !strings.Contains(got, "--id 1") {
		t.Errorf("redacted %q", got)
	}
	// The error of a failing command carries the redacted line.
	_, err := run(context.Background(), "false", "--secret", "hunter2")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("run error %v leaks the secret", err)
	}
}

func TestLabPrefixesDoNotOverlap(t *testing.T) {
	// Lab "a" with node "b-c" and lab "a-b" with node "c" must not share names.
	if nsName("a", "b-c") == nsName("a-b", "c") {
		t.Fatal("namespace names collide")
	}
	if strings.HasPrefix(nsName("a-b", "c"), labPrefix("a")) {
		t.Errorf("lab a's prefix %q claims lab a-b's namespace %q", labPrefix("a"), nsName("a-b", "c"))
	}
}
