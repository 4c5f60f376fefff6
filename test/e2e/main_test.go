package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binDir holds the binaries under test: built once per `go test` run so the
// package is self-contained, or taken from E2E_BIN_DIR (e.g. ./bin after
// `make build`) to skip the build.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if d := os.Getenv("E2E_BIN_DIR"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 2
		}
		binDir = abs
		return m.Run()
	}
	d, err := os.MkdirTemp("", "vppmesh-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	defer os.RemoveAll(d)
	cmd := exec.Command("go", "build", "-o", d+"/", "./cmd/vppmesh-agent", "./cmd/vppsim", "./cmd/vppmesh-cnf", "./cmd/agentctl")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building binaries: %v\n%s", err, out)
		return 2
	}
	binDir = d
	return m.Run()
}

func bin(name string) string { return filepath.Join(binDir, name) }
