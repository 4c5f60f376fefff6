package restapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// DefaultAddr keeps the API on loopback unless the operator asks otherwise:
// it can trigger resyncs and shows the whole configuration.
const DefaultAddr = "127.0.0.1:9191"

// Scheduler is the part of the kvscheduler the API reads;
// *kvscheduler.Scheduler implements it.
type Scheduler interface {
	Status() []kvscheduler.ValueStatus
	StatusOf(key string) (kvscheduler.ValueStatus, bool)
	History(n int) []kvscheduler.TxnRecord
	// Retrieve lists what VPP has now, without changing anything.
	Retrieve(ctx context.Context) ([]kvscheduler.RetrievedValue, error)
}

// Options configure the server. Scheduler is required; every func is
// optional and the endpoints that need a missing one answer 501.
type Options struct {
	// Addr is the listen address (DefaultAddr when empty).
	Addr      string
	Scheduler Scheduler
	// VPPCLI runs one VPP CLI command (cli_inband) and returns its output;
	// nil leaves POST /vpp/command unwired.
	VPPCLI func(ctx context.Context, command string) (string, error)
	// Counters returns the packet counters (any JSON-encodable report);
	// nil leaves GET /vpp/counters unwired.
	Counters func() any
	// Resync runs a full resync and returns when it is done.
	Resync func(ctx context.Context) error
	// Ready reports whether the agent is ready to serve (connected to VPP
	// and etcd, first resync done).
	Ready func() bool
	// VPPConnected reports the VPP connection state for /status.
	VPPConnected func() bool
	Version      string
	// Metrics serves /metrics (the metrics plugin's Handler).
	Metrics http.Handler
	// Mesh serves /mesh/ (the mesh controller's Handler); nil leaves it
	// unwired.
	Mesh   http.Handler
	Logger *slog.Logger
	// ResyncTimeout bounds one resync request (default 2 minutes).
	ResyncTimeout time.Duration
	// LogLevels lists the agent's loggers and their levels, and
	// SetLogLevel changes one (Ligato's /log/list and /log/{logger}/{level});
	// nil leaves them unwired.
	LogLevels   func() map[string]string
	SetLogLevel func(logger, level string) error
	// RecentLogs returns up to n of the agent's last log lines (JSON
	// records), oldest first, for GET /log/recent; nil leaves it unwired.
	RecentLogs func(n int) [][]byte
	// Security: credentials, TLS, timeouts, /vpp/command switch
	// (security.go). The zero value already refuses cross-site requests.
	Security Security
}

// Server is the REST API server.
type Server struct {
	opts    Options
	log     *slog.Logger
	handler http.Handler

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener
	done     chan struct{}
	resyncMu sync.Mutex // one resync at a time: they would only queue in the scheduler anyway
	probe    probeClock
}

// New builds a server; Start makes it listen.
func New(opts Options) (*Server, error) {
	if opts.Scheduler == nil {
		return nil, errors.New("restapi: Options.Scheduler is required")
	}
	opts.harden() // security.go
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.ResyncTimeout <= 0 {
		opts.ResyncTimeout = 2 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: opts, log: log.With("plugin", "restapi")}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the API's handler, for embedding or tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Addr and serves in the background until Close or until
// ctx is cancelled. A listen error is returned at once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("restapi: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("restapi: listen on %s: %w", s.opts.Addr, err)
	}
	sec := s.opts.Security
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       orDuration(sec.ReadTimeout, 30*time.Second),
		WriteTimeout:      orDuration(sec.WriteTimeout, s.opts.ResyncTimeout+30*time.Second),
		IdleTimeout:       orDuration(sec.IdleTimeout, 2*time.Minute),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		TLSConfig:         sec.TLS,
	}
	if sec.TLS != nil {
		ln = tls.NewListener(ln, sec.TLS)
	}
	s.srv, s.ln, s.done = srv, ln, make(chan struct{})
	done := s.done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("rest api stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-done:
		}
	}()
	s.log.Info("rest api listening", "addr", ln.Addr().String(), "tls", sec.TLS != nil, "auth", sec.authRequired())
	s.warnIfExposed(ln.Addr()) // security.go
	return nil
}

// Addr returns the address the server listens on (useful with port 0), or
// "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the server, letting requests in flight finish for a few
// seconds. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	<-done
	if err != nil {
		return fmt.Errorf("restapi: shutdown: %w", err)
	}
	return nil
}
