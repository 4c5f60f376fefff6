package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRoot(&out, &errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errb.String(), err
}

const example = "../../docs/examples/labs/xconnect.yaml"

func TestValidate(t *testing.T) {
	out, err := runCLI(t, "validate", "--bin-dir", t.TempDir(), example)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "lab xconnect is valid: 3 node(s), 2 link(s)") {
		t.Errorf("validate said %q", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [\"a:e1\", \"b:e1\"]\n      type: veth\n"), 0o644)
	if _, err := runCLI(t, "validate", bad); err == nil || !strings.Contains(err.Error(), `no node "b"`) {
		t.Errorf("validate of a dangling endpoint: %v", err)
	}
	os.WriteFile(bad, []byte("name: x\ntopology:\n  nodes:\n    a: {kind: linux, colour: red}\n"), 0o644)
	if _, err := runCLI(t, "validate", bad); err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "colour") {
		t.Errorf("validate of an unknown key: %v", err)
	}
}

func TestGraphAndExport(t *testing.T) {
	out, err := runCLI(t, "graph", example)
	if err != nil || !strings.Contains(out, "flowchart LR") || !strings.Contains(out, `n_gen -- "memif: memif0 ⇄ memif1" --- n_vpp1`) {
		t.Errorf("graph: %v\n%s", err, out)
	}
	out, err = runCLI(t, "graph", "--format", "dot", example)
	if err != nil || !strings.HasPrefix(out, `graph "xconnect" {`) {
		t.Errorf("graph dot: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "graph", "--format", "png", example); err == nil {
		t.Error("graph --format png accepted")
	}
	if _, err := runCLI(t, "export", example); err == nil || !strings.Contains(err.Error(), "--compose or --containerlab") {
		t.Errorf("export without a format: %v", err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yaml")
	if _, err := runCLI(t, "export", "--compose", "--dir", dir, "--out", f, example); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	if !strings.Contains(string(b), "network_mode: service:vpp1") {
		t.Errorf("compose file:\n%s", b)
	}
	// The config service's import file is written beside.
	cfg, err := os.ReadFile(filepath.Join(dir, "nodes", "vpp1", "config.txt"))
	if err != nil || !strings.HasPrefix(string(cfg), "config/vppmesh/v1/xconnect/memif1-memif2 {") {
		t.Errorf("config file: %v %q", err, cfg)
	}
	out, err = runCLI(t, "export", "--containerlab", example)
	if err != nil || !strings.Contains(out, "kind: linux") {
		t.Errorf("containerlab: %v\n%s", err, out)
	}
}

func TestExecUsage(t *testing.T) {
	if _, err := runCLI(t, "exec", "xconnect", "vpp1", "ls"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("exec without --: %v", err)
	}
	if _, err := runCLI(t, "status", "--dir", t.TempDir(), "nolab"); err == nil || !strings.Contains(err.Error(), "is it up?") {
		t.Errorf("status of no lab: %v", err)
	}
}

// TestMeshGraphAndExport: the mesh lab (no links; CNFs wired by the mesh)
// validates, draws its CNFs' edges to the vpp node, and exports.
func TestMeshGraphAndExport(t *testing.T) {
	const mesh = "../../docs/examples/labs/mesh.yaml"
	if out, err := runCLI(t, "validate", mesh); err != nil || !strings.Contains(out, "lab mesh is valid: 7 node(s), 0 link(s), 1 network service(s)") {
		t.Errorf("validate: %v\n%s", err, out)
	}
	out, err := runCLI(t, "graph", mesh)
	if err != nil || !strings.Contains(out, `n_c_gold -. "mesh client fw {tier=gold}" .- n_vpp1`) || strings.Count(out, " .- n_vpp1") != 6 {
		t.Errorf("graph: %v\n%s", err, out)
	}
	out, err = runCLI(t, "graph", "--format", "dot", mesh)
	if err != nil || !strings.Contains(out, `"ep-std2" -- "vpp1" [label="mesh endpoint fw {tier=std,zone=b}", style=dotted];`) {
		t.Errorf("graph dot: %v\n%s", err, out)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yaml")
	if _, err := runCLI(t, "export", "--compose", "--dir", dir, "--out", f, mesh); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	if strings.Count(string(b), "network_mode: service:vpp1") != 8 { // agent, config, six CNFs
		t.Errorf("compose file:\n%s", b)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "nodes", "vpp1", "config.txt"))
	if err != nil || !strings.HasPrefix(string(cfg), "/vppmesh/v1/service/fw {") {
		t.Errorf("config file (the service for the config service to put): %v %q", err, cfg)
	}
	out, err = runCLI(t, "export", "--containerlab", mesh)
	if err != nil || strings.Count(out, "network-mode: container:vpp1") != 8 {
		t.Errorf("containerlab: %v\n%s", err, out)
	}
}
