package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMakeOutCreatesNestedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := makeOut(dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("%s not a directory after makeOut: %v", dir, err)
	}
	// An existing directory is fine.
	if err := makeOut(dir); err != nil {
		t.Fatal(err)
	}
}

func TestRunFailsEarlyWhenOutCannotBeCreated(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory under a regular file cannot be made: run must say so
	// before it starts any benchmark (no binaries exist under --bin here).
	err := run([]string{"--out", filepath.Join(file, "sub"), "--bin", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "--out") {
		t.Fatalf("run = %v, want an --out error", err)
	}
}
