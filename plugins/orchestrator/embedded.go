package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
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

	// TLS serves clients over TLS (ClientURL scheme https or unixs) and,
	// with TLS.TrustedCAFile set, requires a client certificate signed by
	// that CA. Nil serves plain http or unix.
	TLS *EmbeddedTLS
	// MaxRequestBytes caps one client request (default etcd's 1.5 MiB).
	MaxRequestBytes uint
}

// EmbeddedTLS are the server side TLS files of the embedded etcd.
type EmbeddedTLS struct {
	CertFile, KeyFile string
	// TrustedCAFile, when set, turns on client-certificate authentication:
	// only clients with a certificate signed by this CA get in.
	TrustedCAFile string
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
	if purl.Scheme != "http" && purl.Scheme != "https" {
		// etcd listens for peers on u.Host only: a unix path would be lost.
		return nil, fmt.Errorf("embedded etcd: peer URL %q: want http:// or https:// (keep it on loopback)", c.PeerURL)
	}
	if err := EnsurePrivateDir(c.DataDir); err != nil {
		return nil, fmt.Errorf("embedded etcd: data dir: %w", err)
	}
	if err := checkClientURL(curl, c.TLS); err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL %q: %w", c.ClientURL, err)
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
	hardenEmbedded(cfg, curl, purl, c)

	e, err := startEtcd(cfg, curl)
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
	return &Embedded{etcd: e, endpoints: []string{clientEndpoint(curl)}}, nil
}

// Endpoints returns the client endpoints for NewClient: host:port for
// http, https://host:port for https, unix:///path for a unix socket.
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
	// Sized to the value cap (caps.go), not etcd's 2 GiB default.
	if cfg.MaxCallRecvMsgSize == 0 {
		cfg.MaxCallRecvMsgSize = DefaultClientRecvLimit
	}
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

// noOrigin is the only CORS origin the embedded etcd allows. It cannot be
// the origin of any page (.invalid never resolves), and a non-empty list
// turns etcd's default "*" off, so browsers get no CORS headers at all.
const noOrigin = "https://cors-disabled.invalid"

// hardenEmbedded replaces etcd's embed defaults that suit a cluster service
// but not a local control plane: any web page on the host could otherwise
// read and write keys through the JSON gateway (CORS "*", any Host header).
// vppmesh speaks gRPC only, so the gateway is off; CORS is closed; and the
// Host header must name the listen address, which stops DNS rebinding.
func hardenEmbedded(cfg *embed.Config, curl, purl *url.URL, c EmbeddedConfig) {
	cfg.EnableGRPCGateway = false
	cfg.CORS = map[string]struct{}{noOrigin: {}}
	cfg.HostWhitelist = map[string]struct{}{}
	for _, u := range []*url.URL{curl, purl} {
		h := u.Hostname()
		if h == "" {
			continue
		}
		cfg.HostWhitelist[h] = struct{}{}
		if ip := net.ParseIP(h); (ip != nil && ip.IsLoopback()) || h == "localhost" {
			// Loopback's own names; a rebinding page sends its own name.
			for _, n := range []string{"localhost", "127.0.0.1", "::1"} {
				cfg.HostWhitelist[n] = struct{}{}
			}
		}
	}
	if len(cfg.HostWhitelist) == 0 {
		// unix sockets only: a name no Host header can carry by accident.
		cfg.HostWhitelist["localhost.invalid"] = struct{}{}
	}
	if curl.Scheme == "unix" || curl.Scheme == "unixs" {
		// etcd wants host:port here; the advertised URL only names the
		// member in the cluster's member list, nobody dials it.
		cfg.AdvertiseClientUrls = []url.URL{{Scheme: curl.Scheme, Host: "localhost:0"}}
	}
	if c.MaxRequestBytes > 0 {
		cfg.MaxRequestBytes = c.MaxRequestBytes
	}
	if c.TLS != nil {
		cfg.ClientTLSInfo.CertFile = c.TLS.CertFile
		cfg.ClientTLSInfo.KeyFile = c.TLS.KeyFile
		if c.TLS.TrustedCAFile != "" {
			cfg.ClientTLSInfo.TrustedCAFile = c.TLS.TrustedCAFile
			cfg.ClientTLSInfo.ClientCertAuth = true
		}
	}
}

// checkClientURL accepts http, https, unix and unixs client URLs; TLS
// schemes need the TLS files and plain ones must not be given any (etcd
// would silently ignore them).
func checkClientURL(u *url.URL, t *EmbeddedTLS) error {
	secure := false
	switch u.Scheme {
	case "http":
	case "https", "unixs":
		secure = true
	case "unix":
	default:
		return fmt.Errorf("scheme %q: want http, https, unix or unixs", u.Scheme)
	}
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		if u.Host != "" || !filepath.IsAbs(u.Path) || filepath.Clean(u.Path) != u.Path {
			return errors.New("a unix socket URL must be unix:///absolute/clean/path")
		}
	}
	switch {
	case secure && (t == nil || t.CertFile == "" || t.KeyFile == ""):
		return errors.New("a TLS scheme needs a certificate and key")
	case !secure && t != nil:
		return errors.New("TLS files given for a plain scheme: use https:// or unixs://")
	}
	return nil
}

// clientEndpoint is the clientv3 endpoint for a listen URL.
func clientEndpoint(u *url.URL) string {
	switch u.Scheme {
	case "unix", "unixs":
		return u.Scheme + "://" + u.Path
	case "https":
		return "https://" + u.Host
	}
	return u.Host
}

// umaskMu serialises the process-wide umask changes of this package.
var umaskMu sync.Mutex

// startEtcd starts etcd. Unix socket listeners (client or peer) are
// created under umask 0077 (owner only from the first instant, no chmod
// window) and then set to 0600. A socket file left by a crashed agent is
// removed only when nothing answers on it: a live listener is never taken
// over.
func startEtcd(cfg *embed.Config, urls ...*url.URL) (*embed.Etcd, error) {
	var socks []string
	for _, u := range urls {
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			socks = append(socks, u.Path)
		}
	}
	if len(socks) == 0 {
		return embed.StartEtcd(cfg)
	}
	for _, p := range socks {
		if err := RemoveStaleSocket(p); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("socket directory: %w", err)
		}
	}
	umaskMu.Lock()
	old := syscall.Umask(0o077)
	e, err := embed.StartEtcd(cfg)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, err
	}
	for _, p := range socks {
		if err := os.Chmod(p, 0o600); err != nil {
			e.Close()
			return nil, fmt.Errorf("socket %s: %w", p, err)
		}
	}
	return e, nil
}

// RemoveStaleSocket removes path if it is a unix socket nobody listens on
// (connecting is refused). It refuses to touch anything else: a live
// socket, a regular file, a directory. A missing path is fine.
func RemoveStaleSocket(path string) error {
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
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%s: a live server listens there; not taking it over", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: cannot tell whether it is stale (%v); not removing it", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// EnsurePrivateDir creates dir (mode 0700) or checks an existing one: it
// must be a real directory (not a symlink) owned by this user, and its mode
// is tightened to 0700 if it is wider.
func EnsurePrivateDir(dir string) error {
	if dir == "" {
		return errors.New("empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d)", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%s: set mode 0700: %w", dir, err)
		}
	}
	return nil
}
