package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// NetnsMode says whether a Lab puts processes into network namespaces.
type NetnsMode int

const (
	// NetnsAuto uses namespaces when running as root with `ip` available and
	// otherwise runs the same processes in the host namespace, saying why.
	NetnsAuto NetnsMode = iota
	// NetnsOff never creates namespaces.
	NetnsOff
	// NetnsRequired makes New fail when namespaces cannot be used.
	NetnsRequired
)

// Options configure a Lab.
type Options struct {
	// Name goes into namespace names (vppmesh-<name>-<pid>-<n>); sanitized and shortened.
	Name string
	// Dir holds sockets and logs; empty creates a temporary one that Close removes.
	Dir string
	// Netns chooses namespace use (default NetnsAuto).
	Netns NetnsMode
	// StopGrace is how long Close waits after SIGTERM before SIGKILL (default 5s).
	StopGrace time.Duration
	// Logger receives one line per lifecycle event (default: discard).
	Logger *slog.Logger
}

// Lab owns namespaces, processes and a directory; Close releases all of them.
type Lab struct {
	name      string
	dir       string
	ownDir    bool
	netns     bool
	reason    string
	grace     time.Duration
	log       *slog.Logger
	ipPath    string
	mu        sync.Mutex
	closed    bool
	nsSeq     int
	spaces    []*Namespace
	procs     []*Proc
	procNames map[string]int
}

// Namespace is a network namespace of a Lab. When the Lab runs without
// namespaces, a Namespace is a label only and processes run in the host's.
type Namespace struct {
	Name  string // the netns name, or "" in the host namespace
	Label string // the name the caller gave
}

// InHost reports whether processes of ns run in the host namespace.
func (ns *Namespace) InHost() bool { return ns == nil || ns.Name == "" }

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// New prepares a Lab. It checks namespace support once, so that every test
// says the same thing about it.
func New(ctx context.Context, opts Options) (*Lab, error) {
	l := &Lab{name: sanitize(opts.Name), dir: opts.Dir, grace: opts.StopGrace, log: opts.Logger, procNames: map[string]int{}}
	if l.grace <= 0 {
		l.grace = 5 * time.Second
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if l.dir == "" {
		// Unix socket paths are limited to 108 bytes: keep the directory short.
		d, err := os.MkdirTemp("", "vppmesh-lab-")
		if err != nil {
			return nil, fmt.Errorf("lab directory: %w", err)
		}
		l.dir, l.ownDir = d, true
	} else if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab directory %s: %w", l.dir, err)
	}
	switch opts.Netns {
	case NetnsOff:
		l.reason = "network namespaces turned off"
	default:
		ok, reason := l.probeNetns(ctx)
		l.netns, l.reason = ok, reason
		if ok {
			l.removeStale(ctx)
		}
		if !ok && opts.Netns == NetnsRequired {
			l.removeDir()
			return nil, fmt.Errorf("lab %s: %s", l.name, reason)
		}
	}
	l.log.Info("lab ready", "lab", l.name, "dir", l.dir, "netns", l.netns, "reason", l.reason)
	return l, nil
}

var labNetns = regexp.MustCompile(`^vppmesh-[a-z0-9-]+-(\d+)-\d+$`)

// removeStale deletes namespaces of earlier labs whose process is gone (a test
// binary killed by a timeout runs no cleanup).
func (l *Lab) removeStale(ctx context.Context) {
	out, err := exec.CommandContext(ctx, l.ipPath, "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := labNetns.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // its lab may still be running
		}
		if exec.CommandContext(ctx, l.ipPath, "netns", "del", f[0]).Run() == nil {
			l.log.Info("stale namespace deleted", "lab", l.name, "netns", f[0])
		}
	}
}

func sanitize(name string) string {
	n := unsafeName.ReplaceAllString(strings.ToLower(name), "-")
	n = strings.Trim(n, "-")
	if n == "" {
		n = "lab"
	}
	// /run/netns entries are file names; short names also keep `ip netns list` readable.
	if len(n) > 40 {
		n = strings.TrimRight(n[:40], "-")
	}
	return n
}

func (l *Lab) probeNetns(ctx context.Context) (bool, string) {
	if os.Geteuid() != 0 {
		return false, fmt.Sprintf("needs root for network namespaces (running as uid %d): processes run in the host namespace", os.Geteuid())
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return false, "needs the `ip` command (Debian package iproute2) for network namespaces: processes run in the host namespace"
	}
	l.ipPath = ip
	// A root user may still lack CAP_SYS_ADMIN (an unprivileged container): try once.
	probe := fmt.Sprintf("vppmesh-probe-%d", os.Getpid())
	if out, err := exec.CommandContext(ctx, ip, "netns", "add", probe).CombinedOutput(); err != nil {
		return false, fmt.Sprintf("cannot create network namespaces (%v: %s): processes run in the host namespace", err, strings.TrimSpace(string(out)))
	}
	_ = exec.Command(ip, "netns", "del", probe).Run()
	return true, "network namespaces in use"
}

// Dir is the shared directory for sockets and logs (reachable from every
// namespace: memif and vhost-user sockets are filesystem paths).
func (l *Lab) Dir() string { return l.dir }

// Path joins name to Dir.
func (l *Lab) Path(name string) string { return filepath.Join(l.dir, name) }

// Netns reports whether namespaces are used and, in words, why or why not.
func (l *Lab) Netns() (bool, string) { return l.netns, l.reason }

// AddNamespace creates namespace vppmesh-<lab>-<pid>-<n> with loopback up. A
// stale namespace of that name (a killed earlier run) is replaced.
func (l *Lab) AddNamespace(ctx context.Context, label string) (*Namespace, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("lab closed")
	}
	n := l.nsSeq
	l.nsSeq++
	l.mu.Unlock()
	if !l.netns {
		return &Namespace{Label: label}, nil
	}
	// The pid keeps concurrent runs of the same test (two checkouts, a CI
	// retry) from taking each other's namespaces; a namespace left with this
	// name belonged to a dead process whose pid was reused, so it is replaced.
	name := fmt.Sprintf("vppmesh-%s-%d-%d", l.name, os.Getpid(), n)
	_ = exec.CommandContext(ctx, l.ipPath, "netns", "del", name).Run()
	if out, err := exec.CommandContext(ctx, l.ipPath, "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	ns := &Namespace{Name: name, Label: label}
	l.mu.Lock()
	l.spaces = append(l.spaces, ns)
	l.mu.Unlock()
	if out, err := exec.CommandContext(ctx, l.ipPath, "netns", "exec", name, l.ipPath, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("loopback up in %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	l.log.Info("namespace added", "lab", l.name, "netns", name, "label", label)
	return ns, nil
}

// Close stops every process (SIGTERM, then SIGKILL after the grace period),
// deletes the namespaces and, if the Lab created it, the directory. It runs
// every step even when one fails and returns the errors joined.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, spaces := l.procs, l.spaces
	l.mu.Unlock()

	var errs []error
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stopGrace(l.grace)
		}()
	}
	wg.Wait()
	for _, ns := range spaces {
		if out, err := exec.Command(l.ipPath, "netns", "del", ns.Name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", ns.Name, err, strings.TrimSpace(string(out))))
			continue
		}
		l.log.Info("namespace deleted", "lab", l.name, "netns", ns.Name)
	}
	if err := l.removeDir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (l *Lab) removeDir() error {
	if !l.ownDir {
		return nil
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("remove lab directory %s: %w", l.dir, err)
	}
	return nil
}

// Procs returns the processes started so far, in start order.
func (l *Lab) Procs() []*Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Proc(nil), l.procs...)
}

// LogTails writes the last max bytes of every process's stderr and stdout to
// w: what a failing test prints to explain itself.
func (l *Lab) LogTails(w io.Writer, max int) {
	for _, p := range l.Procs() {
		fmt.Fprintf(w, "--- %s (%s) exit=%v\n", p.Name, p.where(), p.ExitErr())
		if s := tail(p.Stderr(), max); s != "" {
			fmt.Fprintf(w, "stderr:\n%s\n", s)
		}
		if s := tail(p.Stdout(), max); s != "" {
			fmt.Fprintf(w, "stdout:\n%s\n", s)
		}
	}
}

func tail(s string, max int) string {
	if max > 0 && len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}
