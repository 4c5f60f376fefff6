package differential

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/test/vpprun"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

// TestDifferentialVppsimVsVPP plays the scenario against a fresh FD.io VPP 25.10 and a
// fresh vppsim and requires the normalized transcripts to be equal. Differences vppsim
// keeps on purpose are in Allowlist (rows of test/vppsim/README.md); an allowance that
// no longer hides a difference fails the test too.
func TestDifferentialVppsimVsVPP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v := vpprun.StartT(t, vpprun.Config{Plugins: []string{"memif", "vhost", "af_packet"}})
	hostIf := veth(t)

	vppDir := shortDir(t, "diff-vpp-")
	vppTr, err := Run(ctx, Target{Name: "vpp", APISocket: v.APISocket, StatsSocket: v.StatsSocket, Dir: vppDir, HostIf: hostIf, RuntimeDir: v.Dir()})
	if err != nil {
		t.Fatalf("scenario on VPP: %v\n%s", err, vppTr.Text(false))
	}
	v.Stop()

	simDir := shortDir(t, "diff-sim-")
	sim, err := vppsim.Start(ctx, vppsim.Config{
		Socket:      filepath.Join(simDir, "api.sock"),
		StatsSocket: filepath.Join(simDir, "stats.sock"),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	simTr, err := Run(ctx, Target{Name: "vppsim", APISocket: sim.SocketPath(), StatsSocket: filepath.Join(simDir, "stats.sock"),
		Dir: simDir, HostIf: hostIf, RuntimeDir: "/run/vpp"})
	if err != nil {
		t.Fatalf("scenario on vppsim: %v\n%s", err, simTr.Text(false))
	}

	if os.Getenv("DIFF_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("DIFF_DUMP")+".vpp", []byte(vppTr.Text(true)), 0o644)
		_ = os.WriteFile(os.Getenv("DIFF_DUMP")+".vppsim", []byte(simTr.Text(true)), 0o644)
	}
	if d := Diff("VPP 25.10", vppTr.Text(false), "vppsim", simTr.Text(false)); d != "" {
		t.Fatalf("vppsim differs from VPP 25.10 (fix vppsim, or list the difference in test/vppsim/README.md "+
			"and Allowlist):\n%s", d)
	}
	for _, a := range Allowlist {
		if (a.When != nil && !a.When()) || a.MayMatch {
			continue
		}
		if !hidesDifference(a, vppTr, simTr) {
			t.Errorf("Allowlist entry %s (%s%s%s%s) hides no difference any more: remove it and its README row",
				a.Row, a.Field, a.Step, a.Stat, a.Text)
		}
	}
	t.Logf("VPP 25.10 and vppsim agree on %d steps, %d lines", len(vppTr.Steps), strings.Count(vppTr.Text(false), "\n"))
}

// hidesDifference tells whether an allowance masks a value that differs between the two
// transcripts (which are equal once normalized, so their lines align).
func hidesDifference(a Allowance, x, y *Transcript) bool {
	marker := "<allowed " + a.Row + ">"
	for i := range x.Steps {
		for j, l := range x.Steps[i].Lines {
			if strings.Contains(l.Norm, marker) && l.Raw != y.Steps[i].Lines[j].Raw {
				return true
			}
		}
	}
	return false
}

func shortDir(t *testing.T, prefix string) string {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// veth creates a veth pair for the af_packet steps (root and iproute2 needed); without
// it the scenario keeps only af_packet's bad-argument cases.
func veth(t *testing.T) string {
	const a, b = "diffv0", "diffv1"
	if os.Geteuid() != 0 {
		return ""
	}
	_ = exec.Command("ip", "link", "del", a).Run()
	if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", b).CombinedOutput(); err != nil {
		t.Logf("no veth for af_packet (%v: %s); af_packet steps limited to bad arguments", err, out)
		return ""
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	return a
}
