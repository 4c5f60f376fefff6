package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the agent when asked, so that the
// exit code of a real process is checked.
func TestMain(m *testing.M) {
	if os.Getenv("VPPMESH_AGENT_TEST_AS_MAIN") == "1" {
		os.Args = append([]string{"vppmesh-agent"}, strings.Fields(os.Getenv("VPPMESH_AGENT_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runAgent(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VPPMESH_AGENT_TEST_AS_MAIN=1", "VPPMESH_AGENT_TEST_ARGS="+strings.Join(args, " "))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// A bad or missing Ligato config file is exit 2 with a message naming it.
func TestBadConfigFileExits2(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "etcd.conf")
	code, out := runAgent(t, []string{"ETCD_CONFIG=" + missing})
	if code != 2 || !strings.Contains(out, missing) {
		t.Fatalf("ETCD_CONFIG missing: exit %d, output %q", code, out)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("endpoints: {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = runAgent(t, nil, "-etcd-config", bad)
	if code != 2 || !strings.Contains(out, bad) {
		t.Fatalf("--etcd-config invalid: exit %d, output %q", code, out)
	}
	code, out = runAgent(t, nil, "--no-such-flag")
	if code != 2 {
		t.Fatalf("unknown flag: exit %d, output %q", code, out)
	}
}
