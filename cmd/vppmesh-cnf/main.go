package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vppmesh/vppmesh/test/cnf"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vppmesh-cnf:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && cnf.IsMeshMode(args[0]) {
		return runMesh(args, stdout, stderr)
	}
	cfg, err := cnf.ParseArgs(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	dump := make(chan struct{}, 1)
	go func() {
		for range usr1 {
			select {
			case dump <- struct{}{}:
			default: // a dump is already queued
			}
		}
	}()
	return cnf.Serve(ctx, cfg, dump, stdout, stderr)
}
