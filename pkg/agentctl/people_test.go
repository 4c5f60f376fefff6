package agentctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runTo runs agentctl with stdout on out (a pty in the terminal test).
func (l *liveAgent) runTo(out io.Writer, args ...string) (string, error) {
	root := NewRootCommand(func(k string) string { return l.env[k] })
	var errb bytes.Buffer
	root.SetOut(out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"--timeout", "10s"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return errb.String(), err
}

func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

const loopJSON = `{"name":"%s","type":"SOFTWARE_LOOPBACK","enabled":true}`

func xcLines(rx, tx string) string {
	return fmt.Sprintf("config/vpp/l2/v2/xconnect/%[1]s {\"receive_interface\":\"%[1]s\",\"transmit_interface\":\"%[2]s\"}\n", rx, tx)
}

// openPty returns a pty's master and slave ends.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// --wait, watch, graph and completion against one running agent.
func TestPeopleVerbs(t *testing.T) {
	l := startLiveAgent(t)

	t.Run("put-wait-configured", func(t *testing.T) {
		out, errOut, err := l.run("", "kvdb", "put", "--wait", "vpp/v2/interfaces/wl1", fmt.Sprintf(loopJSON, "wl1"))
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") || l.state("config/vpp/v2/interfaces/wl1") != "CONFIGURED" {
			t.Fatalf("put --wait: %v\n%s%s", err, out, errOut)
		}
		// The same value again changes nothing in the agent: its status answers at once.
		start := time.Now()
		out, _, err = l.run("", "kvdb", "put", "--wait", "vpp/v2/interfaces/wl1", fmt.Sprintf(loopJSON, "wl1"))
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") || time.Since(start) > 5*time.Second {
			t.Fatalf("unchanged put --wait: %v %s", err, out)
		}
		// -o json: the put's document only, no progress or summary.
		out, _, err = l.run("", "-o", "json", "kvdb", "put", "--wait", "vpp/v2/interfaces/wl1", fmt.Sprintf(loopJSON, "wl1"))
		if err != nil || strings.Contains(out, "CONFIGURED") || !strings.HasPrefix(strings.TrimSpace(out), "{") || !strings.HasSuffix(strings.TrimSpace(out), "}") {
			t.Fatalf("-o json put --wait: %v %q", err, out)
		}
	})

	t.Run("put-wait-invalid", func(t *testing.T) {
		// The agent's interface descriptor refuses the address: INVALID, exit 1, named.
		_, _, err := l.run("", "kvdb", "put", "--wait", "vpp/v2/interfaces/wbad", `{"name":"wbad","type":"SOFTWARE_LOOPBACK","ip_addresses":["not-an-ip"]}`)
		if exitCode(err) != ExitFailed || !strings.Contains(err.Error(), "config/vpp/v2/interfaces/wbad: INVALID") || !strings.Contains(err.Error(), "not-an-ip") {
			t.Fatalf("invalid value: exit %d, %v", exitCode(err), err)
		}
		_, _, err = l.run("", "kvdb", "put", "--wait", "/elsewhere/x", "1", "--force")
		if err == nil || !strings.Contains(err.Error(), "not a config key") {
			t.Fatalf("non-config key: %v", err)
		}
	})

	t.Run("import-wait-timeout", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "xc.txt")
		os.WriteFile(f, []byte(xcLines("wt1", "wt2")+"config/vpp/v2/interfaces/wt1 "+fmt.Sprintf(loopJSON, "wt1")+"\n"), 0o600)
		start := time.Now()
		_, _, err := l.run("", "import", "--wait", "--timeout", "1500ms", f)
		if exitCode(err) != ExitTimeout || !strings.Contains(err.Error(), "config/vpp/l2/v2/xconnect/wt1: PENDING, waits on config/vpp/v2/interfaces/wt2") ||
			strings.Contains(err.Error(), "interfaces/wt1:") {
			t.Fatalf("pending import: exit %d, %v", exitCode(err), err)
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Fatalf("returned after %s, before --timeout", d)
		}
	})

	t.Run("config-update-wait-progress-pty", func(t *testing.T) {
		master, slave := openPty(t)
		var mu sync.Mutex
		var screen bytes.Buffer
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				mu.Lock()
				screen.Write(buf[:n])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		f := filepath.Join(t.TempDir(), "cfg.yaml")
		os.WriteFile(f, []byte("vppConfig:\n  xconnectPairs:\n    - {receiveInterface: wp1, transmitInterface: wp2}\n    - {receiveInterface: wp2, transmitInterface: wp1}\n"+
			"  interfaces:\n    - {name: wp1, type: SOFTWARE_LOOPBACK, enabled: true}\n"), 0o600)
		// wp2 arrives 1.5 s later: until then the xconnects wait on it.
		go func() {
			time.Sleep(1500 * time.Millisecond)
			l.etcd.Put(context.Background(), "/vnf-agent/vpp1/config/vpp/v2/interfaces/wp2", fmt.Sprintf(loopJSON, "wp2"))
		}()
		errOut, err := l.runTo(slave, "config", "update", "--wait", f)
		if err != nil {
			t.Fatalf("config update --wait: %v %s", err, errOut)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		got := screen.String()
		mu.Unlock()
		// The progress line was drawn in place (carriage return, erase line)
		// with the counts by state, and cleared before the summary.
		if !strings.Contains(got, "\r\x1b[Kwait: 1/3 (1 CONFIGURED, 2 PENDING)") || !strings.Contains(got, "ETA") ||
			!strings.Contains(got, "all 3 keys CONFIGURED") {
			t.Fatalf("terminal output: %q", got)
		}
		// Not a terminal: plain lines, no carriage returns.
		var plain bytes.Buffer
		go func() {
			time.Sleep(1500 * time.Millisecond)
			l.etcd.Put(context.Background(), "/vnf-agent/vpp1/config/vpp/v2/interfaces/wq2", fmt.Sprintf(loopJSON, "wq2"))
		}()
		os.WriteFile(f, []byte(xcLines("wq1", "wq2")+"config/vpp/v2/interfaces/wq1 "+fmt.Sprintf(loopJSON, "wq1")+"\n"), 0o600)
		if _, err := l.runTo(&plain, "import", "--wait", f); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(plain.String(), "\r") || !strings.Contains(plain.String(), "wait: 1/2 (1 CONFIGURED, 1 PENDING)") {
			t.Fatalf("plain output: %q", plain.String())
		}
	})
}
