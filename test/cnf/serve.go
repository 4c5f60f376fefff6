package cnf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// Serve runs a whole CNF process: it creates the memif in the configured role, runs the
// traffic until the mode's work is done or ctx ends (SIGINT/SIGTERM in the command), and
// writes the final Summary as one JSON line to stdout. A value on dump (SIGUSR1) writes
// the current counters to the stats file, or as a JSON line to stderr without one.
func Serve(ctx context.Context, cfg Config, dump <-chan struct{}, stdout, stderr io.Writer) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
		cfg.Logger = log
	}
	cfg.Memif.Logger = log
	runner, err := NewRunner(cfg.Options)
	if err != nil {
		return err
	}
	iface, closeIface, err := openInterface(cfg)
	if err != nil {
		return err
	}
	defer closeIface()
	if err := iface.Connect(); err != nil {
		return fmt.Errorf("memif %d on %s: connect: %w", cfg.Memif.ID, cfg.Socket, err)
	}
	// The secret is deliberately absent from this line.
	log.Info("cnf started", "mode", string(cfg.Mode), "socket", cfg.Socket, "id", cfg.Memif.ID,
		"role", cfg.Role.String(), "memif_mode", cfg.Memif.Mode.String(), "queues", cfg.Memif.NumS2M,
		"ring_size", 1<<cfg.Memif.Log2RingSize, "buffer_size", cfg.Memif.BufferSize,
		"rate", cfg.Rate, "size", cfg.Size, "count", cfg.Count, "duration", cfg.Duration.String())

	repCtx, stopRep := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); report(repCtx, cfg, runner, dump, stderr, log) }()

	sum, runErr := runner.Run(ctx, iface)
	stopRep()
	wg.Wait()
	if cfg.Progress {
		writeProgress(stderr, &sum, 0, true)
	}
	if cfg.StatsFile != "" {
		if err := writeStatsFile(cfg.StatsFile, &sum); err != nil {
			log.Warn("cnf stats file", "path", cfg.StatsFile, "err", err)
		}
	}
	b, err := json.Marshal(&sum)
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return runErr
}

// openInterface creates the memif in the configured role; the returned func releases it
// (and a master's socket).
func openInterface(cfg Config) (*memif.Interface, func(), error) {
	if cfg.Role == memif.RoleSlave {
		i, err := memif.NewSlave(cfg.Socket, cfg.Memif)
		if err != nil {
			return nil, nil, fmt.Errorf("memif slave %d on %s: %w", cfg.Memif.ID, cfg.Socket, err)
		}
		return i, func() { _ = i.Close() }, nil
	}
	if dir := filepath.Dir(cfg.Socket); cfg.Socket != "" && cfg.Socket[0] != '@' {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("memif socket directory %s: %w", dir, err)
		}
	}
	s, err := memif.Listen(cfg.Socket, cfg.Memif.Logger)
	if err != nil {
		return nil, nil, fmt.Errorf("memif listen %s: %w", cfg.Socket, err)
	}
	i, err := memif.NewMaster(s, cfg.Memif)
	if err != nil {
		_ = s.Close()
		return nil, nil, fmt.Errorf("memif master %d on %s: %w", cfg.Memif.ID, cfg.Socket, err)
	}
	return i, func() { _ = i.Close(); _ = s.Close() }, nil
}

// report drives the progress line, the periodic stats file and SIGUSR1 dumps until ctx
// ends.
func report(ctx context.Context, cfg Config, r *Runner, dump <-chan struct{}, stderr io.Writer, log *slog.Logger) {
	var progress, stats <-chan time.Time
	if cfg.Progress {
		t := time.NewTicker(cfg.ProgressInterval)
		defer t.Stop()
		progress = t.C
	}
	if cfg.StatsFile != "" {
		t := time.NewTicker(cfg.StatsInterval)
		defer t.Stop()
		stats = t.C
	}
	var lastFrames uint64
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-progress:
			s := r.Snapshot()
			frames := s.Received
			if cfg.Mode == ModeGen {
				frames = s.Sent
			}
			rate := float64(frames-lastFrames) / now.Sub(lastAt).Seconds()
			lastFrames, lastAt = frames, now
			writeProgress(stderr, &s, rate, false)
		case <-stats:
			s := r.Snapshot()
			if err := writeStatsFile(cfg.StatsFile, &s); err != nil {
				log.Warn("cnf stats file", "path", cfg.StatsFile, "err", err)
			}
		case <-dump:
			s := r.Snapshot()
			if cfg.StatsFile != "" {
				if err := writeStatsFile(cfg.StatsFile, &s); err != nil {
					log.Warn("cnf stats file", "path", cfg.StatsFile, "err", err)
				}
				continue
			}
			if b, err := json.Marshal(&s); err == nil {
				fmt.Fprintf(stderr, "%s\n", b)
			}
		}
	}
}

// writeProgress draws the live line (carriage return, no newline) or, when final, the
// last state followed by a newline.
func writeProgress(w io.Writer, s *Summary, rate float64, final bool) {
	if final {
		fmt.Fprintf(w, "\r%s: sent=%d received=%d lost=%d reordered=%d dup=%d pps=%.0f      \n",
			s.Mode, s.Sent, s.Received, s.Lost, s.Reordered, s.Duplicates, s.PPS)
		return
	}
	fmt.Fprintf(w, "\r%s: sent=%d received=%d lost=%d pps=%.0f      ", s.Mode, s.Sent, s.Received, s.Lost, rate)
}

// writeStatsFile replaces path atomically, so a reader never sees half a document.
func writeStatsFile(path string, s *Summary) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cnf-stats-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", tmp.Name(), errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}
