// Command vppmesh-agent renders the cross-connects stored in etcd into VPP and
// keeps VPP equal to etcd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vppmesh/vppmesh/agent"
)

func main() {
	opts, err := agent.ParseFlags("vppmesh-agent", os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vppmesh-agent:", err)
		os.Exit(2)
	}
	// The last lines also stay in memory for /log/recent and agentctl report.
	opts.LogRing = agent.NewLogRing(2000)
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(os.Stderr, opts.LogRing), &slog.HandlerOptions{Level: opts.LogLevelVar}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	agent.RouteGovppLogs(log, opts.LogLevel)
	a := agent.New(opts, log)
	if err := a.Start(ctx); err != nil {
		log.Error("agent failed to start", "error", err)
		os.Exit(1)
	}
	<-ctx.Done()
	a.Close()
}
