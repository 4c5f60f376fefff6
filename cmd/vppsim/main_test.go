package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.fd.io/govpp/adapter/statsclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/core"
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

func TestRunServesStatsSegmentAndStopsOnSIGTERM(t *testing.T) {
	dir, err := os.MkdirTemp("", "vsc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	stats := filepath.Join(dir, "stats.sock")
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"--socket", filepath.Join(dir, "api.sock"), "--stats-socket", stats, "--log-level", "error"})
	}()
	deadline := time.Now().Add(5 * time.Second)
	var st api.InterfaceStats
	for {
		sc, err := core.ConnectStats(statsclient.NewStatsClient(stats))
		if err == nil {
			err = sc.GetInterfaceStats(&st)
			sc.Disconnect()
		}
		if err == nil && len(st.Interfaces) > 0 && st.Interfaces[0].InterfaceName == "local0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats segment not served: %v %+v", err, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop on SIGTERM")
	}
	if _, err := os.Stat(stats); err == nil {
		t.Error("stats socket left behind")
	}
}
