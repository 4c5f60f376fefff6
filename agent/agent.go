package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.fd.io/govpp/binapi/vlib"

	"github.com/vppmesh/vppmesh/plugins/govppmux"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/mesh"
	meshrender "github.com/vppmesh/vppmesh/plugins/mesh/render"
	"github.com/vppmesh/vppmesh/plugins/metrics"
	"github.com/vppmesh/vppmesh/plugins/orchestrator"
	"github.com/vppmesh/vppmesh/plugins/restapi"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifplugin"
	"github.com/vppmesh/vppmesh/plugins/vpp/ifstats"
	"github.com/vppmesh/vppmesh/plugins/vpp/l2plugin"
	"github.com/vppmesh/vppmesh/plugins/vpp/l3plugin"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
)

// Agent is one running vppmesh agent. Start brings the plugins up in
// dependency order; Close takes them down in reverse.
type Agent struct {
	opts Options
	log  *slog.Logger

	etcd  *orchestrator.Embedded // nil with external endpoints
	cli   *clientv3.Client
	mux   *govppmux.Mux
	sched *kvscheduler.Scheduler
	ifp   *ifplugin.Plugin
	orch  *orchestrator.Orchestrator
	mesh  *mesh.Controller
	rest  *restapi.Server
	stats *ifstats.Collector
	ctrs  *counters

	firstResync atomic.Bool
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	closeOnce   sync.Once
}

// New builds an agent; nothing runs until Start.
func New(opts Options, log *slog.Logger) *Agent {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{opts: opts, log: log}
}

// Start starts every plugin and returns once the REST API listens. VPP and
// the first resync come up in the background; /readyz tells when.
func (a *Agent) Start(ctx context.Context) (err error) {
	ctx, a.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	o := a.opts

	// etcd: embedded unless endpoints were given.
	endpoints := o.EtcdEndpoints
	if len(endpoints) == 0 {
		a.etcd, err = orchestrator.StartEmbedded(ctx, orchestrator.EmbeddedConfig{
			DataDir:   o.DataDir,
			ClientURL: o.EtcdListen,
			PeerURL:   o.EtcdPeer,
			Logger:    a.log,
		})
		if err != nil {
			return fmt.Errorf("embedded etcd: %w", err)
		}
		endpoints = a.etcd.Endpoints()
	}
	a.cli, err = a.etcdClient(ctx, endpoints)
	if err != nil {
		return fmt.Errorf("etcd %v: %w", endpoints, err)
	}

	// VPP connection and the descriptors rendering into it.
	a.mux = govppmux.New(govppmux.Options{
		Socket:         o.VPPSocket,
		HealthInterval: o.HealthInterval,
		Logger:         a.log,
	})
	a.sched = kvscheduler.New(kvscheduler.Options{Logger: a.log, Parallelism: o.Parallelism})
	sockPol, err := o.Security.socketPolicy()
	if err != nil {
		return fmt.Errorf("socket dirs: %w", err)
	}
	restSec, err := o.Security.restSecurity()
	if err != nil {
		return err
	}
	a.ifp = ifplugin.New(ifplugin.Options{Conn: a.mux.Conn(), MaxMemifs: o.MaxMemifs, Logger: a.log, SocketPolicy: sockPol})
	l2p := l2plugin.New(l2plugin.Options{Conn: a.mux.Conn(), IfIndex: a.ifp, Logger: a.log})
	l3p := l3plugin.New(l3plugin.Options{Conn: a.mux.Conn(), IfIndex: a.ifp, Logger: a.log})
	if err := a.ifp.Register(a.sched); err != nil {
		return err
	}
	if err := l3p.Register(a.sched); err != nil {
		return err
	}
	if err := l2p.Register(a.sched); err != nil {
		return err
	}
	if err := xconnect.NewWith(xconnect.Options{SocketPolicy: sockPol}).Register(a.sched); err != nil {
		return err
	}
	if err := meshrender.Register(a.sched); err != nil {
		return err
	}
	a.mux.AddMessages(a.ifp.Messages()...)
	a.mux.AddMessages(l2p.Messages()...)
	a.mux.AddMessages(l3p.Messages()...)
	a.mux.AddMessages(&vlib.CliInband{}, &vlib.CliInbandReply{})

	// The mesh controller's values ride along the orchestrator's full
	// resyncs (WrapScheduler), so a resync never removes a mesh connection.
	rxMode, err := mesh.ParseRxMode(o.MeshRxMode)
	if err != nil {
		return err
	}
	a.mesh, err = mesh.New(mesh.Options{Client: a.cli, Label: o.Label, Scheduler: a.sched, Logger: a.log, LinkGrace: o.MeshLinkGrace,
		LeasePoll: o.MeshLeasePoll, RxMode: rxMode})
	if err != nil {
		return err
	}
	a.orch, err = orchestrator.New(orchestrator.Options{
		Client:           a.cli,
		Label:            o.Label,
		Scheduler:        a.mesh.WrapScheduler(a.sched),
		Logger:           a.log,
		MaxValueBytes:    o.Security.MaxValueBytes,
		MaxKeysPerPrefix: o.Security.MaxKeysPerPrefix,
	})
	if err != nil {
		return err
	}
	a.ifp.WatchState(a.mesh.OnInterfaceState)
	a.ctrs = newCounters(a, o.CountersPublishInterval)
	a.ifp.WatchState(a.ctrs.onState)
	a.stats = ifstats.New(ifstats.Options{
		Socket:   o.VPPStatsSocket,
		Interval: o.StatsInterval,
		Names:    a.ifp,
		Logger:   a.log,
		OnUpdate: a.ctrs.onUpdate,
	})

	m := metrics.New(metrics.Options{
		Scheduler:     a.sched,
		VPPCalls:      a.mux.Calls,
		VPPConnected:  a.mux.Connected,
		Orchestrator:  func() metrics.OrchestratorStats { return metrics.OrchestratorStats(a.orch.Stats()) },
		Interfaces:    a.ctrs.metricsInterfaces,
		CrossConnects: a.ctrs.metricsCrossConnects,
		GoRuntime:     true,
	})
	m.Registry().MustRegister(mesh.NewMetrics(a.mesh).Collectors()...)
	a.rest, err = restapi.New(restapi.Options{
		Addr:         o.HTTPAddr,
		Scheduler:    a.sched,
		Resync:       a.resync,
		Ready:        a.Ready,
		VPPConnected: a.mux.Connected,
		VPPCLI:       a.vppCLI,
		Counters:     a.ctrs.report,
		Version:      Version,
		Metrics:      m.Handler(),
		Mesh:         a.mesh.Handler(),
		Logger:       a.log,
		LogLevels:    a.logLevels,
		SetLogLevel:  a.setLogLevel,
		RecentLogs:   a.recentLogs(),
		Security:     restSec,
	})
	if err != nil {
		return err
	}
	if err := a.rest.Start(ctx); err != nil {
		return fmt.Errorf("REST on %s: %w", o.HTTPAddr, err)
	}

	// Subscribe before connecting so that the first Connected is seen.
	events := a.mux.Events()
	stateEvents := a.mux.Events()
	if err := a.mux.Start(ctx); err != nil {
		return err
	}
	a.wg.Add(4)
	go func() {
		defer a.wg.Done()
		if err := a.mesh.Run(ctx); err != nil {
			a.log.Error("mesh controller stopped", "error", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		a.ifp.RunStateWatch(ctx, stateEvents)
	}()
	go func() {
		defer a.wg.Done()
		a.stats.Run(ctx)
	}()
	go func() {
		defer a.wg.Done()
		a.followVPP(ctx, events)
	}()
	a.log.Info("agent started", "version", Version, "label", o.Label, "etcd", endpoints,
		"embedded_etcd", a.etcd != nil, "vpp_socket", o.VPPSocket, "http", a.rest.Addr())
	return nil
}

// followVPP starts the orchestrator on the first VPP connection, and runs a
// downstream resync at every later one: a VPP that restarted has lost
// everything, and a resync recreates only what is missing.
func (a *Agent) followVPP(ctx context.Context, events <-chan govppmux.Event) {
	started := false
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind != govppmux.EventConnected {
				a.log.Warn("VPP disconnected", "error", ev.Err)
				continue
			}
			if !started {
				started = true
				a.wg.Add(1)
				go func() {
					defer a.wg.Done()
					if err := a.orch.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
						a.log.Error("orchestrator stopped", "error", err)
					}
				}()
				continue
			}
			rec, err := a.sched.Commit(ctx, kvscheduler.Txn{
				Kind:        kvscheduler.TxnDownstreamResync,
				Description: "VPP reconnected",
			})
			if err != nil {
				a.log.Error("resync after VPP reconnect", "error", err)
				continue
			}
			a.log.Info("resynced after VPP reconnect", "seq", rec.Seq, "ops", len(rec.Ops), "errors", len(rec.Errors))
			// Interface states seen while the resync raced with VPP's
			// events are replaced by what VPP reports once it is done.
			a.ifp.RefreshStates()
		}
	}
}

// resync re-reads etcd and reconciles VPP with it (REST and agentctl).
func (a *Agent) resync(ctx context.Context) error {
	if !a.mux.Connected() {
		return govppmux.ErrNotConnected
	}
	return a.orch.Resync(ctx)
}

// vppCLI runs one VPP CLI command through cli_inband.
func (a *Agent) vppCLI(ctx context.Context, command string) (string, error) {
	reply, err := vlib.NewServiceClient(a.mux.Conn()).CliInband(ctx, &vlib.CliInband{Cmd: command})
	if err != nil {
		// VPP answers a command it cannot parse with retval -1 and the
		// parse error ("unknown input `…'") as the reply text: that text
		// is what the user needs, not "Unspecified Error".
		if reply != nil && strings.TrimSpace(reply.Reply) != "" {
			return "", fmt.Errorf("vpp cli %q: %s", command, strings.TrimSpace(reply.Reply))
		}
		return "", err
	}
	return reply.Reply, nil
}

// Ready reports whether etcd and VPP are connected and the first resync is
// done.
func (a *Agent) Ready() bool {
	return a.orch != nil && a.mux.Connected() && a.orch.Ready()
}

// HTTPAddr is the address the REST API listens on.
func (a *Agent) HTTPAddr() string { return a.rest.Addr() }

// Scheduler exposes the scheduler, for in-process tests.
func (a *Agent) Scheduler() *kvscheduler.Scheduler { return a.sched }

// Close stops everything Start started, in reverse order.
func (a *Agent) Close() {
	a.closeOnce.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		if a.rest != nil {
			_ = a.rest.Close()
		}
		if a.mux != nil {
			a.mux.Close()
		}
		a.wg.Wait()
		if a.sched != nil {
			a.sched.Close()
		}
		if a.cli != nil {
			_ = a.cli.Close()
		}
		if a.etcd != nil {
			a.etcd.Close()
		}
		a.log.Info("agent stopped")
	})
}
