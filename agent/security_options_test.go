package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vppmesh/vppmesh/plugins/sockdir"
)

func TestSecurityFlags(t *testing.T) {
	o, err := ParseFlags("test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Security.SocketDirs, sockdir.Default) {
		t.Fatalf("default socket dirs %v, want %v", o.Security.SocketDirs, sockdir.Default)
	}
	o, err = ParseFlags("test", []string{"--socket-dir", "/srv/a", "--socket-dir", "/srv/b", "--http-disable-vpp-command"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Security.SocketDirs, []string{"/srv/a", "/srv/b"}) || !o.Security.HTTPDisableVPPCommand {
		t.Fatalf("flags: %+v", o.Security)
	}
	for _, args := range [][]string{
		{"--socket-dir", "relative/dir"},
		{"--http-tls-cert", "/x.crt"},
		{"--http-client-ca", "/ca.crt"},
	} {
		if _, err := ParseFlags("test", args); err == nil {
			t.Errorf("%s: accepted", strings.Join(args, " "))
		}
	}
}

func TestTokenFileMustBePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(p, []byte("t0k\n"), 0o644)
	os.Chmod(p, 0o644)
	s := SecurityOptions{HTTPTokenFile: p}
	if _, err := s.restSecurity(); err == nil {
		t.Fatal("a world-readable token file was accepted")
	}
	os.Chmod(p, 0o600)
	sec, err := s.restSecurity()
	if err != nil || sec.BearerToken != "t0k" {
		t.Fatalf("token %q, %v", sec.BearerToken, err)
	}
}

// TestNoPredictableDataDir: without HOME and XDG_STATE_HOME a non-root
// agent has no default data dir (never a fixed /tmp path) and says so.
func TestNoPredictableDataDir(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("XDG_STATE_HOME", "")
	if d := defaultDataDir(1000); d != "" {
		t.Fatalf("defaultDataDir %q, want none", d)
	}
	if os.Geteuid() == 0 {
		return // root's default is /var/lib/vppmesh; the rest needs a user
	}
	if _, err := ParseFlags("test", []string{"--etcd-endpoints="}); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("ParseFlags without a data dir: %v", err)
	}
}
