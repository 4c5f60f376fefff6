package memif

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestMasterNeverTakesOverLiveSocket is the attack of issue 14: a memif
// master pointed at a live stream socket (api.sock, docker.sock) used to
// delete it and bind its own.
func TestMasterNeverTakesOverLiveSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "sec-memif-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "docker.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if s, err := Listen(path, nil); err == nil {
		s.Close()
		t.Fatal("memif master took over a live stream socket")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live listener is gone: %v", err)
	}
	c.Close()
	// A live memif master (seqpacket) is not taken over either.
	other := filepath.Join(dir, "memif.sock")
	first, err := Listen(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if s, err := Listen(other, nil); err == nil {
		s.Close()
		t.Fatal("a second master took over a live memif socket")
	}
	// A stale memif socket (listener gone, file left) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: stale, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s, err := Listen(stale, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s.Close()
}
