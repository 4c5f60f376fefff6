package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Default URLs of the embedded etcd: the client URL is etcd's usual one so
// that a user's plain `etcdctl put` reaches the agent without flags.
const (
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
)

// EmbeddedConfig configures the in-process etcd server.
type EmbeddedConfig struct {
	// DataDir keeps etcd's WAL and snapshots; reuse it across restarts to
	// keep the desired state. Required.
	DataDir string
	// ClientURL is where clients connect (default DefaultClientURL).
	ClientURL string
	// PeerURL is the raft peer URL (default DefaultPeerURL); nobody else
	// joins, but etcd needs one.
	PeerURL string
	// Name of the member (default "vppmesh").
	Name string
	// StartTimeout bounds waiting for the server to be ready (default 30s).
	StartTimeout time.Duration
	// Logger receives etcd's warnings and errors; nil discards them.
	Logger *slog.Logger
}

// Embedded is a running in-process etcd server.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// StartEmbedded starts an etcd server and waits until it serves clients.
func StartEmbedded(ctx context.Context, c EmbeddedConfig) (*Embedded, error) {
	if c.DataDir == "" {
		return nil, errors.New("embedded etcd: DataDir is required")
	}
	if c.ClientURL == "" {
		c.ClientURL = DefaultClientURL
	}
	if c.PeerURL == "" {
		c.PeerURL = DefaultPeerURL
	}
	if c.Name == "" {
		c.Name = "vppmesh"
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	curl, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL %q: %w", c.ClientURL, err)
	}
	purl, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL %q: %w", c.PeerURL, err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: data dir: %w", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.DataDir
	cfg.ListenClientUrls = []url.URL{*curl}
	cfg.AdvertiseClientUrls = []url.URL{*curl}
	cfg.ListenPeerUrls = []url.URL{*purl}
	cfg.AdvertisePeerUrls = []url.URL{*purl}
	cfg.InitialCluster = c.Name + "=" + purl.String()
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(c.Logger))
	// NewConfig leaves this zero, which makes etcd log every request as
	// "slow"; use the value etcd's own flag defaults to.
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: start in %s: %w", c.DataDir, err)
	}
	timer := time.NewTimer(c.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("embedded etcd: not ready after %s", c.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", ctx.Err())
	}
	if c.Logger != nil {
		c.Logger.Info("embedded etcd started", "client_url", c.ClientURL, "data_dir", c.DataDir)
	}
	return &Embedded{etcd: e, endpoints: []string{curl.Host}}, nil
}

// Endpoints returns the client endpoints (host:port) for NewClient.
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Close stops the server; the data stays in DataDir.
// Close is idempotent.
func (e *Embedded) Close() { e.closeOnce.Do(e.etcd.Close) }

// NewClient connects to etcd endpoints (embedded or an external cluster)
// and checks that the cluster answers within dialTimeout. ctx bounds only
// that check, not the client's life. The client's warnings go to
// slog.Default().
func NewClient(ctx context.Context, endpoints []string, dialTimeout time.Duration) (*clientv3.Client, error) {
	return NewClientConfig(ctx, clientv3.Config{Endpoints: endpoints, DialTimeout: dialTimeout})
}

// NewClientConfig is NewClient for an external cluster that needs more than
// endpoints: TLS (with a client certificate) and user/password, as Ligato's
// etcd.conf gives them. Logger and keepalive are set here.
func NewClientConfig(ctx context.Context, cfg clientv3.Config) (*clientv3.Client, error) {
	endpoints := cfg.Endpoints
	if len(endpoints) == 0 {
		return nil, errors.New("etcd client: no endpoints")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cfg.Logger = newZapLogger(slog.Default())
	// Keepalive makes a dead server visible to the connection state
	// (and so to the orchestrator's resync trigger) without traffic.
	cfg.DialKeepAliveTime = 5 * time.Second
	cfg.DialKeepAliveTimeout = 3 * time.Second
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Status(sctx, endpoints[0]); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %v not reachable: %w", endpoints, err)
	}
	return cli, nil
}
