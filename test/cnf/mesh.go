package cnf

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// The network service mesh modes of vppmesh-cnf:
//
//	endpoint  registers a NetworkServiceEndpoint under an etcd lease, opens one memif
//	          (slave, on its socket) per connection the agents assign to it, and reflects
//	          every frame back;
//	client    requests a network service (a Connection), sends sequenced frames on its
//	          memif and counts the reflections: loss, and the outages a heal causes.
const (
	ModeEndpoint Mode = "endpoint"
	ModeClient   Mode = "client"
)

// IsMeshMode tells whether a command-line mode is one of the mesh modes.
func IsMeshMode(m string) bool { return m == string(ModeEndpoint) || m == string(ModeClient) }

// MeshConfig is a mesh CNF process.
type MeshConfig struct {
	Mode     Mode
	Etcd     []string
	Name     string // endpoint name, or connection id
	Services []string
	Labels   map[string]string
	Node     string
	Socket   string
	MemifID  uint32 // client: its memif id on its socket
	TTL      time.Duration
	// Client traffic.
	Rate     float64
	Size     int
	Duration time.Duration
	// OutageAfter: no reflection for this long while sending counts as an outage.
	OutageAfter time.Duration
	// Hang: at exit, keep the lease and the memifs open but stop forwarding
	// (an endpoint that hangs without closing its sockets).
	StatsFile     string
	StatsInterval time.Duration
	Logger        *slog.Logger
}

// MeshSummary is the mesh CNF's JSON summary (last stdout line and stats file).
type MeshSummary struct {
	Mode string `json:"mode"`
	Name string `json:"name"`
	// Client.
	Sent      uint64   `json:"sent,omitempty"`
	Received  uint64   `json:"received,omitempty"`
	Lost      uint64   `json:"lost"`
	Outages   []Outage `json:"outages,omitempty"`
	Endpoint  string   `json:"endpoint,omitempty"` // the last endpoint seen in the status
	Endpoints []string `json:"endpoints,omitempty"`
	// Endpoint: frames reflected per connection.
	Connections map[string]uint64 `json:"connections,omitempty"`
}

// Outage is a stretch without reflections while sending.
type Outage struct {
	AtS       float64 `json:"at_s"`
	DurationS float64 `json:"duration_s"`
}

// ParseMeshArgs parses `vppmesh-cnf endpoint|client [flags]`.
func ParseMeshArgs(args []string, out io.Writer) (MeshConfig, error) {
	var cfg MeshConfig
	if len(args) == 0 || !IsMeshMode(args[0]) {
		return cfg, errors.New("want mode endpoint or client")
	}
	cfg.Mode = Mode(args[0])
	fs := flag.NewFlagSet("vppmesh-cnf "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	etcd := fs.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	fs.StringVar(&cfg.Name, "name", "", "endpoint: its name; client: the connection id")
	svc := fs.String("service", "", "network service(s): endpoint: comma-separated list it serves; client: the one it requests")
	labels := fs.String("labels", "", "labels k=v,k=v")
	fs.StringVar(&cfg.Node, "node", "vpp1", "agent label of this node")
	fs.StringVar(&cfg.Socket, "socket", "", "memif socket VPP listens on for this CNF (required)")
	id := fs.Uint("id", 0, "client: memif id on its socket")
	fs.DurationVar(&cfg.TTL, "ttl", 5*time.Second, "endpoint: lease TTL of the registration; client: of the connection (0: no lease)")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "client: frames per second")
	fs.IntVar(&cfg.Size, "size", MinFrameSize, "client: frame size")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run this long (0: until interrupted)")
	fs.DurationVar(&cfg.OutageAfter, "outage-after", 50*time.Millisecond, "client: no reflection for this long counts as an outage")
	fs.StringVar(&cfg.StatsFile, "stats-file", "", "rewrite this file with the JSON summary periodically and at exit")
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", 200*time.Millisecond, "stats file period")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args[1:]); err != nil {
		return cfg, err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: lvl}))
	cfg.Etcd = strings.Split(*etcd, ",")
	cfg.MemifID = uint32(*id)
	for _, s := range strings.Split(*svc, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Services = append(cfg.Services, s)
		}
	}
	cfg.Labels = map[string]string{}
	for _, kv := range strings.Split(*labels, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("--labels: %q is not k=v", kv)
		}
		cfg.Labels[k] = v
	}
	switch {
	case cfg.Name == "":
		return cfg, errors.New("--name is required")
	case cfg.Socket == "":
		return cfg, errors.New("--socket is required")
	case len(cfg.Services) == 0:
		return cfg, errors.New("--service is required")
	case cfg.Mode == ModeClient && len(cfg.Services) != 1:
		return cfg, errors.New("client: --service names one service")
	case cfg.Mode == ModeEndpoint && cfg.TTL < time.Second:
		return cfg, errors.New("endpoint: --ttl must be at least 1s")
	case cfg.Rate <= 0 || cfg.Rate > 1e6:
		return cfg, errors.New("--rate must be in (0, 1e6]")
	}
	return cfg, nil
}

// ServeMesh runs a mesh CNF until ctx ends (or --duration), then prints the summary.
func ServeMesh(ctx context.Context, cfg MeshConfig, stdout io.Writer) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Etcd, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd %v: %w", cfg.Etcd, err)
	}
	defer cli.Close()
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var s meshState
	s.sum = MeshSummary{Mode: string(cfg.Mode), Name: cfg.Name}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if cfg.StatsFile != "" {
		wg.Go(func() {
			t := time.NewTicker(cfg.StatsInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					_ = writeJSONFile(cfg.StatsFile, s.snapshot())
				}
			}
		})
	}
	if cfg.Mode == ModeEndpoint {
		err = runEndpoint(ctx, cli, cfg, &s)
	} else {
		err = runClient(ctx, cli, cfg, &s)
	}
	close(stop)
	wg.Wait()
	final := s.snapshot()
	if cfg.StatsFile != "" {
		_ = writeJSONFile(cfg.StatsFile, final)
	}
	b, _ := json.Marshal(final)
	fmt.Fprintln(stdout, string(b))
	return err
}

type meshState struct {
	mu  sync.Mutex
	sum MeshSummary
}

func (s *meshState) snapshot() MeshSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sum
	out.Outages = append([]Outage(nil), s.sum.Outages...)
	out.Endpoints = append([]string(nil), s.sum.Endpoints...)
	if s.sum.Connections != nil {
		out.Connections = map[string]uint64{}
		for k, v := range s.sum.Connections {
			out.Connections[k] = v
		}
	}
	return out
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// putLeased writes key under a lease kept alive until the returned func is
// called (then the lease is revoked so the key goes at once). When the lease
// is lost (etcd unreachable past the TTL), the key is written again under a
// new lease, so a CNF outlives an etcd outage.
func putLeased(ctx context.Context, cli *clientv3.Client, key string, data []byte, ttl time.Duration, log *slog.Logger) (func(), error) {
	if ttl <= 0 {
		if _, err := cli.Put(ctx, key, string(data)); err != nil {
			return nil, err
		}
		return func() {}, nil
	}
	grant := func(ctx context.Context) (clientv3.LeaseID, <-chan *clientv3.LeaseKeepAliveResponse, error) {
		l, err := cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
		if err != nil {
			return 0, nil, err
		}
		if _, err := cli.Put(ctx, key, string(data), clientv3.WithLease(l.ID)); err != nil {
			return 0, nil, err
		}
		ka, err := cli.KeepAlive(ctx, l.ID)
		return l.ID, ka, err
	}
	kctx, cancel := context.WithCancel(context.Background())
	id, ka, err := grant(kctx)
	if err != nil {
		cancel()
		return nil, err
	}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for range ka {
			}
			if kctx.Err() != nil {
				return
			}
			log.Warn("lease lost, registering again", "key", key)
			for kctx.Err() == nil {
				nid, nka, err := grant(kctx)
				if err == nil {
					mu.Lock()
					id, ka = nid, nka
					mu.Unlock()
					break
				}
				select {
				case <-kctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		mu.Lock()
		last := id
		mu.Unlock()
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		if _, err := cli.Revoke(rctx, last); err != nil {
			log.Warn("lease revoke failed; the key goes at its TTL", "key", key, "error", err)
		}
	}, nil
}

// runEndpoint registers and serves connections until ctx ends.
func runEndpoint(ctx context.Context, cli *clientv3.Client, cfg MeshConfig, s *meshState) error {
	log := cfg.Logger
	ep := &vppmeshv1.NetworkServiceEndpoint{Name: cfg.Name, NetworkServices: cfg.Services, Labels: cfg.Labels, Node: cfg.Node,
		Link: &vppmeshv1.NetworkServiceEndpoint_Memif{Memif: &ifmodel.MemifLink{SocketFilename: cfg.Socket}}}
	data, err := models.Marshal(ep)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.sum.Connections = map[string]uint64{}
	s.mu.Unlock()

	type served struct {
		id     uint32
		cancel context.CancelFunc
		done   chan struct{}
	}
	conns := map[string]*served{}
	var mu sync.Mutex
	stopConn := func(id string) {
		mu.Lock()
		c := conns[id]
		delete(conns, id)
		mu.Unlock()
		if c != nil {
			c.cancel()
			<-c.done
			log.Info("connection left", "connection", id)
		}
	}
	startConn := func(id string, memifID uint32) {
		mu.Lock()
		if c, ok := conns[id]; ok && c.id == memifID {
			mu.Unlock()
			return
		}
		mu.Unlock()
		stopConn(id)
		cctx, cancel := context.WithCancel(ctx)
		c := &served{id: memifID, cancel: cancel, done: make(chan struct{})}
		mu.Lock()
		conns[id] = c
		mu.Unlock()
		go func() {
			defer close(c.done)
			iface, err := memif.NewSlave(cfg.Socket, memif.Config{ID: memifID, Name: "ep-" + id, RetryInterval: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, Logger: log})
			if err == nil {
				err = iface.Connect()
			}
			if err != nil {
				log.Error("memif failed", "connection", id, "memif_id", memifID, "error", err)
				return
			}
			defer iface.Close()
			r, err := NewRunner(Options{Mode: ModeReflect, SwapMACs: true, Logger: log})
			if err != nil {
				log.Error("reflector failed", "error", err)
				return
			}
			log.Info("serving connection", "connection", id, "memif_id", memifID)
			done := make(chan struct{})
			go func() {
				t := time.NewTicker(100 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						n := r.Snapshot().Received
						s.mu.Lock()
						s.sum.Connections[id] = n
						s.mu.Unlock()
					}
				}
			}()
			sum, _ := r.Run(cctx, iface)
			close(done)
			s.mu.Lock()
			s.sum.Connections[id] = sum.Received
			s.mu.Unlock()
		}()
	}
	defer func() {
		mu.Lock()
		ids := make([]string, 0, len(conns))
		for id := range conns {
			ids = append(ids, id)
		}
		mu.Unlock()
		for _, id := range ids {
			stopConn(id)
		}
	}()

	unregister, err := putLeased(ctx, cli, models.MeshKey(models.MeshEndpoint, cfg.Name), data, cfg.TTL, log)
	if err != nil {
		return fmt.Errorf("register endpoint %s: %w", cfg.Name, err)
	}
	defer unregister()
	log.Info("endpoint registered", "name", cfg.Name, "services", cfg.Services, "ttl", cfg.TTL)

	// Follow the statuses that name this endpoint.
	apply := func(key string, value []byte, del bool) {
		_, id, ok := models.ParseMeshKey(key)
		if !ok {
			return
		}
		if del {
			stopConn(id)
			return
		}
		_, v, err := models.UnmarshalMesh(key, value)
		if err != nil {
			return
		}
		st := v.(*vppmeshv1.ConnectionStatus)
		m := st.GetEndpointLink().GetMemif()
		if st.GetEndpoint() != cfg.Name || m == nil || m.GetSocketFilename() != cfg.Socket {
			stopConn(id)
			return
		}
		startConn(id, m.GetId())
	}
	for ctx.Err() == nil {
		resp, err := cli.Get(ctx, models.MeshStatusPrefix, clientv3.WithPrefix())
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		seen := map[string]bool{}
		for _, kv := range resp.Kvs {
			apply(string(kv.Key), kv.Value, false)
			_, id, _ := models.ParseMeshKey(string(kv.Key))
			seen[id] = true
		}
		mu.Lock()
		var gone []string
		for id := range conns {
			if !seen[id] {
				gone = append(gone, id)
			}
		}
		mu.Unlock()
		for _, id := range gone {
			stopConn(id)
		}
		wch := cli.Watch(clientv3.WithRequireLeader(ctx), models.MeshStatusPrefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				apply(string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete)
			}
		}
	}
	return nil
}

// runClient requests the service and measures the reflected traffic.
func runClient(ctx context.Context, cli *clientv3.Client, cfg MeshConfig, s *meshState) error {
	log := cfg.Logger
	conn := &vppmeshv1.Connection{Id: cfg.Name, NetworkService: cfg.Services[0], Labels: cfg.Labels, Node: cfg.Node,
		Link: &vppmeshv1.Connection_Memif{Memif: &ifmodel.MemifLink{SocketFilename: cfg.Socket, Id: cfg.MemifID}}}
	data, err := models.Marshal(conn)
	if err != nil {
		return err
	}
	key := models.MeshKey(models.MeshConnection, cfg.Name)
	closeConn, err := putLeased(ctx, cli, key, data, cfg.TTL, log)
	if err != nil {
		return fmt.Errorf("request %s: %w", cfg.Services[0], err)
	}
	defer func() {
		closeConn()
		if cfg.TTL <= 0 {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, _ = cli.Delete(dctx, key)
		}
	}()
	// Follow the status: which endpoints served, and the first UP (the
	// client sends from then on, so frames sent before the path exists do
	// not count as loss).
	firstUp := make(chan struct{})
	var upOnce sync.Once
	onStatus := func(key string, value []byte) {
		_, v, err := models.UnmarshalMesh(key, value)
		if err != nil {
			return
		}
		st := v.(*vppmeshv1.ConnectionStatus)
		ep := st.GetEndpoint()
		s.mu.Lock()
		if ep != "" && ep != s.sum.Endpoint {
			s.sum.Endpoints = append(s.sum.Endpoints, ep)
		}
		s.sum.Endpoint = ep
		s.mu.Unlock()
		if st.GetState() == vppmeshv1.ConnectionStatus_UP {
			upOnce.Do(func() { close(firstUp) })
		}
	}
	statusKey := models.MeshKey(models.MeshStatus, cfg.Name)
	if resp, err := cli.Get(ctx, statusKey); err == nil {
		for _, kv := range resp.Kvs {
			onStatus(string(kv.Key), kv.Value)
		}
		go func() {
			for wr := range cli.Watch(ctx, statusKey, clientv3.WithRev(resp.Header.Revision+1)) {
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypePut {
						onStatus(string(ev.Kv.Key), ev.Kv.Value)
					}
				}
			}
		}()
	}

	iface, err := memif.NewSlave(cfg.Socket, memif.Config{ID: cfg.MemifID, Name: "client-" + cfg.Name, RetryInterval: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, Logger: log})
	if err != nil {
		return err
	}
	if err := iface.Connect(); err != nil {
		return err
	}
	defer iface.Close()
	log.Info("connection requested", "connection", cfg.Name, "service", cfg.Services[0])

	tmpl, err := buildTemplate(cfg.Size, false, [6]byte{0x02, 0xfe, 0, 0, 0, 1}, [6]byte{0x02, 0xfe, 0, 0, 0, 2}, 1)
	if err != nil {
		return err
	}
	select {
	case <-firstUp:
	case <-ctx.Done():
		return nil // ended before the connection came up
	}
	if err := iface.WaitUp(ctx); err != nil {
		return nil
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	var seq uint64
	next := time.Now()
	lastRx := time.Now()
	var outageAt time.Time
	received := map[uint64]bool{}
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	frame := make([]byte, len(tmpl))
	sending := true
	var stoppedAt time.Time
	for {
		now := time.Now()
		if sending && ctx.Err() != nil {
			sending, stoppedAt = false, now
		}
		// Late reflections still count: drain until 500ms pass without one
		// (at most 5s), so that frames in flight are not counted as lost.
		if !sending && (now.Sub(lastRx) > 500*time.Millisecond && now.Sub(stoppedAt) > 500*time.Millisecond || now.Sub(stoppedAt) > 5*time.Second) {
			break
		}
		if sending && !now.Before(next) && iface.IsUp() {
			if txq := iface.TxQueues(); len(txq) > 0 {
				copy(frame, tmpl)
				stampSeq(frame, false, seq)
				if n, err := txq[0].TxBurst([][]byte{frame}); err == nil && n == 1 {
					seq++
					s.mu.Lock()
					s.sum.Sent = seq
					s.mu.Unlock()
				}
			}
			next = next.Add(interval)
			if now.Sub(next) > 100*time.Millisecond {
				next = now // do not burst to catch up after a stall
			}
		}
		got := 0
		if rxq := iface.RxQueues(); len(rxq) > 0 && iface.IsUp() {
			n, _ := rxq[0].RxBurst(bufs)
			for _, f := range bufs[:n] {
				if _, sq, ok := parseFrame(f, false); ok && sq < seq && !received[sq] {
					received[sq] = true
					got++
				}
			}
		}
		if got > 0 {
			if !outageAt.IsZero() {
				s.mu.Lock()
				s.sum.Outages = append(s.sum.Outages, Outage{AtS: outageAt.Sub(start).Seconds(), DurationS: now.Sub(lastRx).Seconds()})
				s.mu.Unlock()
				log.Info("traffic resumed", "outage", now.Sub(lastRx).Round(time.Millisecond))
				outageAt = time.Time{}
			}
			lastRx = now
			s.mu.Lock()
			s.sum.Received = uint64(len(received))
			s.sum.Lost = s.sum.Sent - s.sum.Received
			s.mu.Unlock()
		} else if sending && outageAt.IsZero() && seq > 0 && now.Sub(lastRx) > cfg.OutageAfter {
			outageAt = lastRx
		}
		if got == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	s.mu.Lock()
	s.sum.Received = uint64(len(received))
	s.sum.Lost = s.sum.Sent - s.sum.Received
	s.mu.Unlock()
	return nil
}
