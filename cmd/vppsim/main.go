package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vppsim:", err)
		os.Exit(1)
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string) error {
	fs := flag.NewFlagSet("vppsim", flag.ContinueOnError)
	socket := fs.String("socket", "/run/vpp/api.sock", "binary API unix socket (created mode 0660, parent dir created)")
	control := fs.String("control", "", `fault/inspection HTTP endpoint: "unix:/path" or "host:port" (off when empty)`)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	version := fs.String("version", "", "version string reported by show_version")
	stats := fs.String("stats-socket", "/run/vpp/stats.sock", `stats segment socket read by govpp's statsclient (off when empty)`)
	noPackets := fs.Bool("no-packets", false, "control plane only: open no memif or vhost-user sockets")
	var latency, fail listFlag
	fs.Var(&latency, "latency", `added latency, "DURATION" for every message or "MSG=DURATION" (repeatable)`)
	fs.Var(&fail, "fail", `fail the first N calls of a message: "MSG:N:RETVAL" (repeatable)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	type failSpec struct {
		msg    string
		n      int
		retval int32
	}
	type latencySpec struct {
		msg string
		d   time.Duration
	}
	// Every flag is checked before anything is created.
	var lats []latencySpec
	for _, l := range latency {
		msg, d, err := parseLatency(l)
		if err != nil {
			return err
		}
		lats = append(lats, latencySpec{msg, d})
	}
	var fails []failSpec
	for _, f := range fail {
		parts := strings.Split(f, ":")
		if len(parts) != 3 {
			return fmt.Errorf("--fail %q: want MSG:N:RETVAL", f)
		}
		n, err1 := strconv.Atoi(parts[1])
		rv, err2 := strconv.ParseInt(parts[2], 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("--fail %q: %w", f, err)
		}
		fails = append(fails, failSpec{parts[0], n, int32(rv)})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := vppsim.Config{Socket: *socket, Logger: log, Version: *version, StatsSocket: *stats}
	if *noPackets {
		cfg.Drivers = vppsim.NoDrivers
	}
	sim, err := vppsim.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer sim.Close()
	for _, l := range lats {
		sim.SetLatency(l.msg, l.d)
	}
	for _, f := range fails {
		sim.FailNext(f.msg, f.n, f.retval)
	}
	if *control != "" {
		if _, err := sim.ServeControl(ctx, *control); err != nil {
			return err
		}
	}
	<-ctx.Done()
	log.Info("vppsim shutting down")
	return nil
}

func parseLatency(s string) (string, time.Duration, error) {
	msg, dur, ok := strings.Cut(s, "=")
	if !ok {
		msg, dur = "", s
	}
	d, err := time.ParseDuration(dur)
	if err != nil {
		return "", 0, fmt.Errorf("--latency %q: %w", s, err)
	}
	return msg, d, nil
}
