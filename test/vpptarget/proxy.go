package vpptarget

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SlowProxy is a unix-socket proxy in front of a VPP API socket that
// delays everything VPP sends back: a VPP that answers slowly (busy main
// thread, loaded host), for either implementation.
type SlowProxy struct {
	// Path is the socket to give the agent instead of the VPP socket.
	Path     string
	upstream string
	delay    atomic.Int64
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	chunks   atomic.Int64
}

// NewSlowProxy listens on a socket in dir and forwards each connection to
// upstream; every chunk from upstream waits delay first. Closed when t ends.
func NewSlowProxy(t testing.TB, dir, upstream string, delay time.Duration) *SlowProxy {
	t.Helper()
	p := &SlowProxy{Path: filepath.Join(dir, "slow-api.sock"), upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.delay.Store(int64(delay))
	_ = os.Remove(p.Path)
	ln, err := net.Listen("unix", p.Path)
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// SetDelay changes the delay for chunks read from now on.
func (p *SlowProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Chunks is how many chunks were delayed so far (proof traffic went through).
func (p *SlowProxy) Chunks() int64 { return p.chunks.Load() }

func (p *SlowProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *SlowProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("unix", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, true) || !p.track(u, true) {
			c.Close()
			u.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(u, c, false) // client → VPP as is
		go p.pipe(c, u, true)  // VPP → client delayed
	}
}

func (p *SlowProxy) pipe(dst, src net.Conn, slow bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.track(dst, false)
		p.track(src, false)
	}()
	buf := make([]byte, 64*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if slow {
				p.chunks.Add(1)
				time.Sleep(time.Duration(p.delay.Load()))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: the other direction ends too
		}
	}
}

// Close stops listening and cuts every proxied connection.
func (p *SlowProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
