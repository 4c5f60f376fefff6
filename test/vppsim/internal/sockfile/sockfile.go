// Package sockfile decides whether a socket file in the way of a listener
// may be removed: only when nothing listens on it. A path that names a live
// listener (VPP's api.sock, docker.sock, another vppsim) or anything that
// is not a socket is never touched.
package sockfile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// RemoveIfStale removes path when it is a socket whose connect is refused
// (its listener is gone). A missing path is fine. Any other case is an
// error naming why the path was left alone.
func RemoveIfStale(path string) error {
	if path == "" || path[0] == '@' {
		return nil // abstract sockets have no file
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	// ECONNREFUSED answers for every socket type when nobody listens; a live
	// listener of another type answers EPROTOTYPE, so try both types.
	for _, network := range []string{"unix", "unixpacket"} {
		c, err := net.DialTimeout(network, path, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("%s: a live server listens there; not taking it over", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			if errors.Is(err, syscall.EPROTOTYPE) {
				continue
			}
			return fmt.Errorf("%s: cannot tell whether it is stale (%v); not removing it", path, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		return nil
	}
	return fmt.Errorf("%s: a live server of another socket type listens there; not taking it over", path)
}

// DirExists checks that the directory of a socket path exists, as VPP does
// for absolute memif socket paths; nothing is created.
func DirExists(path string) error {
	if path == "" || path[0] == '@' {
		return nil
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("socket directory of %s: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory of %s is not a directory", path)
	}
	return nil
}

// umaskMu serialises this package's process-wide umask changes.
var umaskMu sync.Mutex

// Listen binds a unix socket whose file is created with at most mode from
// the start (the umask is narrowed around bind), then sets exactly mode.
// A chmod after a plain bind leaves a window in which the socket has the
// process umask's wider mode. The umask is process-wide: files other
// goroutines create meanwhile get narrower modes, never wider ones.
func Listen(ctx context.Context, network, path string, mode os.FileMode) (net.Listener, error) {
	var lc net.ListenConfig
	umaskMu.Lock()
	old := syscall.Umask(int(0o777 &^ mode.Perm()))
	ln, err := lc.Listen(ctx, network, path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, err
	}
	if path != "" && path[0] != '@' {
		if err := os.Chmod(path, mode.Perm()); err != nil {
			ln.Close()
			return nil, fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	return ln, nil
}
