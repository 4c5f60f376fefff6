package vhostuser

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func secDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sec-vh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestServerNeverRemovesLiveSocket: the vhost-user server used to remove
// whatever socket was at its path.
func TestServerNeverRemovesLiveSocket(t *testing.T) {
	path := filepath.Join(secDir(t), "api.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if p, err := Open(context.Background(), Config{SocketPath: path}); err == nil {
		p.Close()
		t.Fatal("vhost-user server replaced a live socket")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live listener is gone: %v", err)
	}
	c.Close()
}

// getFeatures sends VHOST_USER_GET_FEATURES and waits for the reply: the
// port is serving.
func getFeatures(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	var req [12]byte
	binary.LittleEndian.PutUint32(req[0:], 1) // GET_FEATURES
	binary.LittleEndian.PutUint32(req[4:], 1) // version 1
	if _, err := c.Write(req[:]); err != nil {
		return err
	}
	var rep [20]byte
	_, err = io.ReadFull(c, rep[:])
	return err
}

// exhaustFDs opens /dev/null until the process is at its RLIMIT_NOFILE,
// which is lowered for the test; release undoes both.
func exhaustFDs(t *testing.T) (freeOne, release func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 256
	if lim.Cur > old.Cur {
		lim.Cur = old.Cur
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	var files []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Skip("no descriptor could be opened")
	}
	freeOne = func() {
		files[len(files)-1].Close()
		files = files[:len(files)-1]
	}
	return freeOne, func() {
		for _, f := range files {
			f.Close()
		}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	}
}

// TestAcceptSurvivesEMFILE: with the process out of descriptors, accept
// fails with EMFILE; the port must keep listening and serve once
// descriptors are free again (it used to stop accepting for good).
func TestAcceptSurvivesEMFILE(t *testing.T) {
	path := filepath.Join(secDir(t), "vh.sock")
	p, err := Open(context.Background(), Config{SocketPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	freeOne, release := exhaustFDs(t)
	// Free exactly one descriptor for the client; the server's accept
	// then has none and fails with EMFILE.
	freeOne()
	c, derr := net.Dial("unix", path)
	time.Sleep(200 * time.Millisecond) // let accept hit EMFILE a few times
	release()
	if derr != nil {
		t.Fatalf("dial with one free descriptor: %v", derr)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := getFeatures(path)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port no longer serves after EMFILE: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
