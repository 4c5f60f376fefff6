package vpprun

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

var seq atomic.Int64

// ShortName turns a test name into a unique instance name usable as an
// api-segment prefix ("TestFoo/bar" → "vm-TestFoo-bar-<pid>-<n>").
func ShortName(prefix, name string) string {
	s := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(name, "-")
	if len(s) > 30 {
		s = s[len(s)-30:]
	}
	return strings.Trim(prefix+"-"+s, "-") + "-" + itoa(os.Getpid()) + "-" + itoa(int(seq.Add(1)))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// StartT starts a VPP for a test, skipping it (one line) when VPP is not
// available. Dir and Name default to a short private directory and a name
// derived from the test. The instance is stopped when the test ends; a
// failed test gets VPP's log tail printed and its run directory kept.
func StartT(t testing.TB, cfg Config) *VPP {
	t.Helper()
	if ok, why := Available(); !ok {
		t.Skip(why)
	}
	if cfg.Name == "" {
		cfg.Name = ShortName("vm", t.Name())
	}
	if cfg.Dir == "" {
		// t.TempDir() paths get long; unix socket paths must stay < 108 bytes.
		d, err := os.MkdirTemp("", "vpprun-")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Dir = d
	}
	v, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.Stop()
		if t.Failed() {
			t.Logf("VPP %s kept in %s\n%s", v.Name(), v.Dir(), v.LogTail(40))
			return
		}
		_ = os.RemoveAll(v.Dir())
	})
	return v
}
