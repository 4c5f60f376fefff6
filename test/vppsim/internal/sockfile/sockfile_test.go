package sockfile

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
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

// TestListenModeFromTheStart: with a permissive process umask (0), the
// socket is still created owner-only and the umask is restored after.
func TestListenModeFromTheStart(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	p := filepath.Join(shortDir(t), "api.sock")
	// Watch the directory while binding: the first mode any stat sees
	// must already be the final one.
	seen := make(chan os.FileMode, 1)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				close(seen)
				return
			default:
			}
			if fi, err := os.Lstat(p); err == nil {
				seen <- fi.Mode().Perm()
				close(seen)
				return
			}
		}
	}()
	ln, err := Listen(context.Background(), "unix", p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	close(stop)
	if m, ok := <-seen; ok && m&0o077 != 0 {
		t.Fatalf("socket was visible with mode %v before its chmod", m)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if now := syscall.Umask(0); now != 0 {
		t.Fatalf("umask %o left behind, want 0", now)
	}
}
