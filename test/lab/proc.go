package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcSpec describes one process to run.
type ProcSpec struct {
	Name      string     // unique in the Lab (a suffix is added if taken); names the log files
	Namespace *Namespace // nil runs in the host namespace
	Path      string     // the program
	Args      []string
	Env       []string // added to the test's environment
	// Stdin keeps a pipe open on the process's stdin (dpdk-testpmd exits on EOF);
	// CloseStdin ends it.
	Stdin bool
}

// Proc is a running (or finished) process of a Lab.
type Proc struct {
	Name   string
	ns     *Namespace
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *logBuffer
	stderr *logBuffer
	done   chan struct{}
	err    error // exit status, set before done closes
}

// Start runs spec's program, in its namespace when the Lab uses them. Its
// stdout and stderr are kept in memory (the last few MiB) and written to
// <Dir>/logs/<name>.{stdout,stderr}. The process gets SIGKILL if the test
// binary dies, so nothing outlives a crashed test.
func (l *Lab) Start(ctx context.Context, spec ProcSpec) (*Proc, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("lab closed")
	}
	name := spec.Name
	if n := l.procNames[name]; n > 0 {
		name = fmt.Sprintf("%s.%d", name, n)
	}
	l.procNames[spec.Name]++
	l.mu.Unlock()

	argv := append([]string{spec.Path}, spec.Args...)
	if !spec.Namespace.InHost() {
		// ip netns exec execs the program after setns: the pid we get is the program's.
		argv = append([]string{l.ipPath, "netns", "exec", spec.Namespace.Name}, argv...)
	}
	logDir := filepath.Join(l.dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	outF, err := os.Create(filepath.Join(logDir, name+".stdout"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	errF, err := os.Create(filepath.Join(logDir, name+".stderr"))
	if err != nil {
		outF.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, ns: spec.Namespace, done: make(chan struct{}),
		stdout: &logBuffer{file: outF, max: 4 << 20}, stderr: &logBuffer{file: errF, max: 4 << 20}}
	// Not CommandContext: the Lab, not a context, decides when a process stops,
	// so that Close can stop it gracefully and collect its summary.
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), spec.Env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if spec.Stdin {
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			outF.Close()
			errF.Close()
			return nil, fmt.Errorf("start %s: stdin: %w", name, err)
		}
	}
	if err := p.cmd.Start(); err != nil {
		outF.Close()
		errF.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, spec.Path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		outF.Close()
		errF.Close()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	l.log.Info("process started", "lab", l.name, "proc", name, "pid", p.Pid(), "netns", p.where())
	return p, nil
}

func (p *Proc) where() string {
	if p.ns.InHost() {
		return "host"
	}
	return p.ns.Name
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is the exit status (nil for success or while running).
func (p *Proc) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Wait blocks until the process exits or ctx ends.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.Name, p.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for %s: %w", p.Name, ctx.Err())
	}
}

// Signal sends sig (no-op once exited).
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the exit (a crash, for reconnect tests).
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to end (SIGTERM, or closing stdin when it reads it)
// and waits for it until ctx ends, then kills it.
func (p *Proc) Stop(ctx context.Context) error {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("%s ignored SIGTERM: killed: %w", p.Name, ctx.Err())
	}
}

func (p *Proc) stopGrace(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = p.Stop(ctx)
}

// WriteStdin writes s to the process's stdin pipe (ProcSpec.Stdin).
func (p *Proc) WriteStdin(s string) error {
	if p.stdin == nil {
		return fmt.Errorf("%s: no stdin pipe", p.Name)
	}
	if _, err := io.WriteString(p.stdin, s); err != nil {
		return fmt.Errorf("write stdin of %s: %w", p.Name, err)
	}
	return nil
}

// CloseStdin closes the stdin pipe: EOF, which ends dpdk-testpmd cleanly.
func (p *Proc) CloseStdin() error {
	if p.stdin == nil {
		return fmt.Errorf("%s: no stdin pipe", p.Name)
	}
	return p.stdin.Close()
}

// Stdout is what the process wrote to stdout (the last few MiB).
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr is what the process wrote to stderr (the last few MiB).
func (p *Proc) Stderr() string { return p.stderr.String() }

// LastJSON decodes the last stdout line that starts with '{' into v: the
// summary line of vppmesh-cnf and similar tools.
func (p *Proc) LastJSON(v any) error {
	lines := strings.Split(strings.TrimSpace(p.Stdout()), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if strings.HasPrefix(line, "{") {
			if err := json.Unmarshal([]byte(line), v); err != nil {
				return fmt.Errorf("%s: summary line %q: %w", p.Name, line, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: no JSON line on stdout", p.Name)
}

// logBuffer keeps the tail of a stream in memory and all of it in a file.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	max  int
	file *os.File
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = b.file.Write(p) // a full disk must not kill the process under test
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
