package sockfile

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "sec-sf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestRemoveIfStale: live listeners of both socket types and non-sockets
// are left alone; a socket nobody listens on is removed.
func TestRemoveIfStale(t *testing.T) {
	dir := shortDir(t)
	for _, network := range []string{"unix", "unixpacket"} {
		p := filepath.Join(dir, network+".sock")
		ln, err := net.Listen(network, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := RemoveIfStale(p); err == nil {
			t.Errorf("%s: a live listener was declared stale", network)
		}
		if c, err := net.Dial(network, p); err != nil {
			t.Errorf("%s: live listener disturbed: %v", network, err)
		} else {
			c.Close()
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
		if err := RemoveIfStale(p); err != nil {
			t.Errorf("%s: stale socket: %v", network, err)
		}
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s: stale socket still there", network)
		}
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, []byte("keep"), 0o600)
	if err := RemoveIfStale(f); err == nil {
		t.Error("a regular file was accepted as a stale socket")
	}
	if b, _ := os.ReadFile(f); string(b) != "keep" {
		t.Error("regular file damaged")
	}
	if err := RemoveIfStale(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing path: %v", err)
	}
	if err := DirExists(filepath.Join(dir, "no", "such", "x.sock")); err == nil {
		t.Error("DirExists accepted a missing directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !os.IsNotExist(err) {
		t.Error("DirExists created a directory")
	}
}
