// Command vppmesh-bench measures the vppmesh agent at scale (see test/bench and
// `make bench`) and writes results.json and results.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vppmesh/vppmesh/test/bench"
	"github.com/vppmesh/vppmesh/test/vpprun"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vppmesh-bench:", err)
		}
		os.Exit(1)
	}
}

// makeOut creates the results directory (and its parents) if missing.
func makeOut(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("vppmesh-bench", flag.ContinueOnError)
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") != "", "CI smoke: N=100, one run, short churn (env BENCH_QUICK)")
	binDir := fs.String("bin", "bin", "directory with vppmesh-agent, agentctl and vppsim")
	out := fs.String("out", "test/bench", "directory for results.json and results.md (results-quick.* with --quick)")
	sizes := fs.String("sizes", "100,1000,10000", "comma-separated numbers of cross-connects")
	runs := fs.Int("runs", 5, "runs per size")
	lat := fs.Int("latency-puts", 100, "single puts per run in the latency scenario")
	churn := fs.Duration("churn", 10*time.Second, "churn phase per run")
	sockets := fs.Int("sockets", 4, "memif socket files the cross-connects spread over")
	vppSock := fs.String("vpp-socket", os.Getenv("VPP_SOCKET"), "use this running VPP instead of starting vppsim and FD.io VPP (env VPP_SOCKET)")
	implDef := "vppsim"
	if ok, _ := vpprun.Available(); ok {
		implDef = "vppsim,vpp"
	}
	impls := fs.String("impl", envOr("BENCH_IMPL", implDef), "VPP implementations, each measured in its own column: vppsim, vpp (FD.io VPP started per run; default when found) (env BENCH_IMPL)")
	vppSizes := fs.String("vpp-sizes", "100,1000", "sizes measured on FD.io VPP (VPP 25.10 does not survive 10,000 cross-connects: see README)")
	only := fs.String("only", "", "comma-separated scenarios to run (default all): "+strings.Join(bench.Scenarios, ","))
	agentArgs := fs.String("agent-args", "", "extra vppmesh-agent flags, space-separated (experiments, e.g. \"--counters-publish-interval 1h\")")
	work := fs.String("work", "", "scratch directory (default: a new temporary one, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := bench.Config{BinDir: *binDir, VPPSocket: *vppSock, Runs: *runs, Latency: *lat, Churn: *churn, Sockets: *sockets,
		AgentArgs: strings.Fields(*agentArgs),
		Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	var err error
	if cfg.Sizes, err = parseSizes("--sizes", *sizes); err != nil {
		return err
	}
	if cfg.VPPSizes, err = parseSizes("--vpp-sizes", *vppSizes); err != nil {
		return err
	}
	for _, f := range strings.Split(*impls, ",") {
		switch f = strings.TrimSpace(f); f {
		case "vppsim", "vpp":
			cfg.Impls = append(cfg.Impls, f)
		case "":
		default:
			return fmt.Errorf("--impl: unknown implementation %q (vppsim, vpp)", f)
		}
	}
	if slices.Contains(cfg.Impls, "vpp") && *vppSock == "" {
		if ok, why := vpprun.Available(); !ok {
			return fmt.Errorf("--impl vpp: %s", why)
		}
	} else if *vppSock == "" {
		fmt.Fprintln(os.Stderr, "vppmesh-bench: measuring vppsim only ("+vpprun.HowToGet+")")
	}
	for _, f := range strings.Split(*only, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(bench.Scenarios, f) {
			return fmt.Errorf("--only: unknown scenario %q (known: %s)", f, strings.Join(bench.Scenarios, ","))
		}
		cfg.Only = append(cfg.Only, f)
	}
	if *quick {
		cfg.Sizes, cfg.VPPSizes, cfg.Runs, cfg.Latency, cfg.Churn = []int{100}, []int{100}, 1, 20, 2*time.Second
	}
	if cfg.Runs < 1 || cfg.Latency < 1 || cfg.Sockets < 1 {
		return errors.New("--runs, --latency-puts and --sockets must be at least 1")
	}
	// The results directory is made now, so a path that cannot be created
	// fails before the long run instead of after it.
	if err := makeOut(*out); err != nil {
		return err
	}
	cfg.WorkDir = *work
	if cfg.WorkDir == "" {
		d, err := os.MkdirTemp("", "vppmesh-bench-")
		if err != nil {
			return err
		}
		cfg.WorkDir = d
	}
	keep := *work != ""
	defer func() {
		if !keep {
			os.RemoveAll(cfg.WorkDir)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := bench.Run(ctx, cfg)
	rep.Quick = *quick
	// The smoke writes beside, not over, the published full results.
	base := "results"
	if *quick {
		base = "results-quick"
	}
	if err := rep.WriteJSON(filepath.Join(*out, base+".json")); err != nil {
		return err
	}
	md := rep.Markdown()
	if err := os.WriteFile(filepath.Join(*out, base+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	if len(rep.Problems) > 0 {
		keep = true
		fmt.Fprintf(os.Stderr, "vppmesh-bench: logs and data kept in %s\n", cfg.WorkDir)
		return fmt.Errorf("%d problem(s) make the figures unusable; see results.md", len(rep.Problems))
	}
	return nil
}

func parseSizes(flagName, v string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s %q: %q is not a positive number", flagName, v, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
