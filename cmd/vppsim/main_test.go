package main

import (
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	for in, want := range map[string]struct {
		msg string
		d   time.Duration
	}{
		"5ms":                {"", 5 * time.Millisecond},
		"memif_create_v2=1s": {"memif_create_v2", time.Second},
		"control_ping=250us": {"control_ping", 250 * time.Microsecond},
	} {
		msg, d, err := parseLatency(in)
		if err != nil || msg != want.msg || d != want.d {
			t.Errorf("parseLatency(%q) = %q, %v, %v", in, msg, d, err)
		}
	}
	if _, _, err := parseLatency("x=soon"); err == nil {
		t.Error("bad duration accepted")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--log-level", "loud"},
		{"--socket", t.TempDir() + "/api.sock", "--fail", "memif_create_v2:x:-2"},
		{"--socket", t.TempDir() + "/api.sock", "--latency", "forever"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}
