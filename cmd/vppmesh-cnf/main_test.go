package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// summary holds the keys the demo and the e2e tests rely on.
type summary struct {
	Mode       string  `json:"mode"`
	Sent       uint64  `json:"sent"`
	Received   uint64  `json:"received"`
	Lost       uint64  `json:"lost"`
	Reordered  uint64  `json:"reordered"`
	Duplicates uint64  `json:"duplicates"`
	Bytes      uint64  `json:"bytes"`
	PPS        float64 `json:"pps"`
	DurationS  float64 `json:"duration_s"`
}

func buildCNF(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vppmesh-cnf")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

func start(t *testing.T, ctx context.Context, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.CommandContext(ctx, bin, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *proc) wait(t *testing.T) summary {
	t.Helper()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("%v: %v\nstderr:\n%s", p.cmd.Args, err, p.stderr.String())
	}
	var s summary
	if err := json.Unmarshal(p.stdout.Bytes(), &s); err != nil {
		t.Fatalf("%v: summary %q: %v", p.cmd.Args, p.stdout.String(), err)
	}
	return s
}

// TestProcesses builds the command and runs a generator (memif master) and a sink (slave)
// as two processes over a socket in a temp dir, then a sink stopped by SIGUSR1 (dump) and
// SIGINT (clean stop with summary).
func TestProcesses(t *testing.T) {
	bin := buildCNF(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "memif.sock")
	const count = 50000

	t.Run("gen-master-sink-slave", func(t *testing.T) {
		// The sink reads the secret from a file: it must not show in
		// /proc/<pid>/cmdline, which every local user can read. The gen
		// passes it as a flag, so a wrong file content would fail the link.
		secretFile := filepath.Join(dir, "secret")
		if err := os.WriteFile(secretFile, []byte("topsecret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		sink := start(t, ctx, bin, "sink", "--socket", sock, "--id", "3", "--secret-file", secretFile,
			"--count", "50000", "--log-level", "debug", "--retry", "20ms")
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", sink.cmd.Process.Pid)); err != nil {
			t.Fatal(err)
		} else if bytes.Contains(cmdline, []byte("topsecret")) {
			t.Fatalf("the secret is in the sink's /proc cmdline: %q", cmdline)
		}
		gen := start(t, ctx, bin, "gen", "--role", "master", "--socket", sock, "--id", "3", "--secret", "topsecret",
			"--count", "50000", "--size", "1500", "--buffer-size", "1024", "--progress", "--log-level", "debug")
		g, s := gen.wait(t), sink.wait(t)
		if g.Mode != "gen" || s.Mode != "sink" || g.Sent != count || s.Received != g.Sent || s.Bytes != g.Bytes || g.Bytes != count*1500 {
			t.Fatalf("gen %+v\nsink %+v", g, s)
		}
		if s.Lost != 0 || s.Reordered != 0 || s.Duplicates != 0 || g.PPS <= 0 || s.DurationS <= 0 {
			t.Fatalf("sink verdict %+v", s)
		}
		if !strings.Contains(gen.stderr.String(), "gen: sent=50000") {
			t.Fatalf("no final progress line in gen stderr:\n%s", gen.stderr.String())
		}
		for _, p := range []*proc{gen, sink} {
			if strings.Contains(p.stderr.String(), "topsecret") {
				t.Fatalf("%v logged the memif secret", p.cmd.Args)
			}
		}
		t.Logf("1500-byte frames, two processes: gen %.0f pps, sink %.0f pps", g.PPS, s.PPS)
	})

	t.Run("signals", func(t *testing.T) {
		stats := filepath.Join(dir, "stats.json")
		sink := start(t, ctx, bin, "sink", "--role", "master", "--socket", sock, "--id", "4",
			"--stats-file", stats, "--stats-interval", "1h", "--log-level", "warn")
		gen := start(t, ctx, bin, "gen", "--socket", sock, "--id", "4", "--count", "1000", "--retry", "20ms", "--log-level", "warn")
		if g := gen.wait(t); g.Sent != 1000 {
			t.Fatalf("gen %+v", g)
		}
		// The generator lingered until the sink could drain; ask for the counters.
		var got summary
		for got.Received != 1000 {
			if err := sink.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			b, err := os.ReadFile(stats)
			if err == nil {
				_ = json.Unmarshal(b, &got)
			}
			if ctx.Err() != nil {
				t.Fatalf("stats file never showed 1000 frames: %+v", got)
			}
		}
		if err := sink.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if s := sink.wait(t); s.Received != 1000 || s.Lost != 0 {
			t.Fatalf("sink after SIGINT %+v", s)
		}
		if _, err := os.Stat(sock); err == nil {
			t.Fatal("master socket left behind after a clean stop")
		}
	})
}

func TestRunUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(nil, &out, &errb); err == nil {
		t.Fatal("no mode accepted")
	}
	if err := run([]string{"gen", "--size", "10"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "size") {
		t.Fatalf("bad size: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("stdout written on a usage error: %q", out.String())
	}
}
