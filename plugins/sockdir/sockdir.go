// Package sockdir is the socket-directory policy: the memif and
// vhost-user socket files an etcd value may name must lie in one of the
// directories the operator allowed (--socket-dir). VPP runs as root and
// creates, binds and (for memif masters) replaces the file it is given, so
// an unrestricted path lets whoever writes etcd put a socket over any file.
package sockdir

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Default directories: VPP's run directory (its api.sock and the default
// memif.sock live there) and the directory vppmesh documents for memif and
// vhost-user sockets shared with CNFs and VMs.
var Default = []string{"/run/vpp", "/run/vppmesh/sockets"}

// Policy lists the allowed directories. The zero Policy allows any
// absolute, clean path (in-process embedders and tests); the agent always
// sets Dirs.
type Policy struct {
	Dirs []string
}

// New checks and cleans dirs: each must be absolute.
func New(dirs []string) (Policy, error) {
	var p Policy
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			return Policy{}, fmt.Errorf("socket dir %q: not an absolute path", d)
		}
		p.Dirs = append(p.Dirs, filepath.Clean(d))
	}
	return p, nil
}

// Check returns nil when path is acceptable: absolute, already clean (no
// "..", "//" or trailing "/"), and strictly inside one of the allowed
// directories. what names the field in the error ("memif socket_filename").
func (p Policy) Check(what, path string) error {
	switch {
	case path == "":
		return fmt.Errorf("%s is empty", what)
	case !filepath.IsAbs(path):
		return fmt.Errorf("%s %q: must be an absolute path", what, path)
	case filepath.Clean(path) != path:
		return fmt.Errorf("%s %q: must be a clean path (no .., // or trailing /); did you mean %q?", what, path, filepath.Clean(path))
	case strings.ContainsRune(path, 0):
		return fmt.Errorf("%s %q: contains a NUL byte", what, path)
	}
	if len(p.Dirs) == 0 {
		return nil
	}
	for _, d := range p.Dirs {
		if d == "/" || strings.HasPrefix(path, d+"/") {
			return nil
		}
	}
	return fmt.Errorf("%s %q: outside the allowed socket directories %v (agent --socket-dir)", what, path, p.Dirs)
}
