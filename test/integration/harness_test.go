package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/agent"
	"github.com/vppmesh/vppmesh/test/vpptarget"
)

const label = "vpp1"

func root(k string) string { return "/vnf-agent/" + label + "/" + k }

// env is one test's world: a VPP (vppsim or FD.io VPP, see vpptarget) and
// an agent with its embedded etcd.
type env struct {
	t     *testing.T
	dir   string
	vpp   *vpptarget.Target
	agent *agent.Agent
	opts  agent.Options
	etcd  *clientv3.Client
	log   *slog.Logger // the agent's logger; nil: logger(t)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func logger(t *testing.T) *slog.Logger {
	switch os.Getenv("VPPMESH_TEST_LOG") {
	case "":
	case "info": // the events without the per-message lines (timelines of a bench)
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	default:
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

var (
	govppLogs sync.Once
	// govppSink receives govpp's logs. govpp keeps its loggers in package
	// globals that its goroutines read, so they are set once per process
	// (at debug, filtered by the sink's handler) and a test that wants
	// them switches the sink instead.
	govppSink = &switchHandler{}
)

// switchHandler forwards to a handler that can be replaced at any time.
type switchHandler struct{ cur atomic.Pointer[slog.Handler] }

func (s *switchHandler) get() slog.Handler  { return *s.cur.Load() }
func (s *switchHandler) set(h slog.Handler) { s.cur.Store(&h) }
func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.get().Enabled(ctx, l)
}
func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.get().Handle(ctx, r)
}
func (s *switchHandler) WithAttrs(a []slog.Attr) slog.Handler { return s.get().WithAttrs(a) }
func (s *switchHandler) WithGroup(n string) slog.Handler      { return s.get().WithGroup(n) }

func routeGovpp(t *testing.T) {
	govppLogs.Do(func() {
		govppSink.set(logger(t).Handler())
		agent.RouteGovppLogs(slog.New(govppSink), slog.LevelDebug)
	})
}

// forEach runs body once per VPP implementation (VPP_IMPL; see vpptarget),
// each with a fresh VPP and agent.
func forEach(t *testing.T, body func(t *testing.T, e *env)) {
	vpptarget.ForEach(t, vpptarget.Options{Logger: logger(t)},
		func(t *testing.T, tg *vpptarget.Target) { body(t, newEnv(t, tg)) })
}

// newEnv starts an agent on tg; mods adjust the agent's options first.
func newEnv(t *testing.T, tg *vpptarget.Target, mods ...func(*agent.Options)) *env {
	t.Helper()
	routeGovpp(t)
	dir := t.TempDir()
	e := &env{t: t, dir: dir, vpp: tg}
	e.opts = agent.Options{
		Label:                   label,
		MeshRxMode:              os.Getenv("VPPMESH_TEST_MESH_RX_MODE"),
		VPPSocket:               tg.APISocket,
		EtcdListen:              fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		EtcdPeer:                fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		HTTPAddr:                "127.0.0.1:0",
		DataDir:                 filepath.Join(dir, "etcd"),
		HealthInterval:          200 * time.Millisecond,
		VPPStatsSocket:          tg.StatsSocket,
		StatsInterval:           100 * time.Millisecond,
		CountersPublishInterval: 200 * time.Millisecond,
	}
	for _, m := range mods {
		m(&e.opts)
	}
	e.startAgent()
	return e
}

func (e *env) startAgent() {
	e.t.Helper()
	log := e.log
	if log == nil {
		log = logger(e.t)
	}
	e.agent = agent.New(e.opts, log)
	if err := e.agent.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.stopAgent)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{strings.TrimPrefix(e.opts.EtcdListen, "http://")}, DialTimeout: 5 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.etcd = cli
	e.eventually("agent ready", e.agent.Ready)
}

func (e *env) stopAgent() {
	if e.etcd != nil {
		e.etcd.Close()
		e.etcd = nil
	}
	if e.agent != nil {
		e.agent.Close()
		e.agent = nil
	}
}

// eventually polls cond until it holds or 10 s pass: the agent is
// asynchronous by design (etcd watch → scheduler → VPP).
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) put(key, val string) {
	e.t.Helper()
	if _, err := e.etcd.Put(context.Background(), root(key), val); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) del(key string) {
	e.t.Helper()
	if _, err := e.etcd.Delete(context.Background(), root(key)); err != nil {
		e.t.Fatal(err)
	}
}

// status reads the agent's status key for a config key from etcd.
func (e *env) status(configKey string) (st struct {
	State string `json:"state"`
	Error string `json:"error"`
}, ok bool) {
	resp, err := e.etcd.Get(context.Background(), root("status/"+strings.TrimPrefix(configKey, "config/")))
	if err != nil || len(resp.Kvs) == 0 {
		return st, false
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		e.t.Fatalf("status of %s: %v", configKey, err)
	}
	return st, true
}

func (e *env) waitState(configKey, state string) {
	e.t.Helper()
	e.eventually(configKey+" "+state, func() bool {
		st, ok := e.status(configKey)
		return ok && st.State == state
	})
}

// vppIf finds an interface in VPP by the tag the agent stores in it, through
// a govpp dump (the same on vppsim and FD.io VPP).
func (e *env) vppIf(tag string) (vpptarget.Interface, bool) {
	e.t.Helper()
	i, ok, err := e.vpp.InterfaceByTag(context.Background(), tag)
	if err != nil {
		e.t.Fatalf("dump interfaces: %v", err)
	}
	return i, ok
}

// vppIfs is VPP's interface table.
func (e *env) vppIfs() []vpptarget.Interface {
	e.t.Helper()
	ifs, err := e.vpp.Interfaces(context.Background())
	if err != nil {
		e.t.Fatalf("dump interfaces: %v", err)
	}
	return ifs
}

func memif(name string, id int, sock string) string {
	return fmt.Sprintf(`{"name":%q,"type":"MEMIF","enabled":true,"memif":{"master":true,"id":%d,"socket_filename":%q}}`, name, id, sock)
}

// writeCalls sums the VPP calls that change state: everything but dumps,
// pings, event subscriptions and version queries.
func writeCalls(counts map[string]uint64) (n uint64, names []string) {
	for name, c := range counts {
		if strings.HasSuffix(name, "_dump") || strings.HasPrefix(name, "control_ping") ||
			strings.HasPrefix(name, "want_") || strings.HasPrefix(name, "show_") ||
			strings.HasPrefix(name, "sockclnt_") || strings.HasPrefix(name, "memclnt_") ||
			strings.HasPrefix(name, "get_") || strings.HasPrefix(name, "cli_inband") {
			continue
		}
		n += c
		names = append(names, fmt.Sprintf("%s=%d", name, c))
	}
	return n, names
}
