package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vppmesh/vppmesh/test/cnf"
)

// runMesh runs the network service mesh modes: endpoint (register under a
// lease, reflect on one memif per assigned connection) and client (request
// a service, send and count reflections across heals).
func runMesh(args []string, stdout, stderr io.Writer) error {
	cfg, err := cnf.ParseMeshArgs(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cnf.ServeMesh(ctx, cfg, stdout)
}
