package agent

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vppmesh/vppmesh/pkg/etcdconf"
)

// Version is set at build time (-ldflags -X).
var Version = "dev"

// Options configure the agent process.
type Options struct {
	Label     string // microservice label: keys live under /vnf-agent/<label>/
	VPPSocket string // VPP binary API socket
	// VPPStatsSocket is VPP's stats segment socket; counters are read
	// every StatsInterval and written to etcd status every
	// CountersPublishInterval.
	VPPStatsSocket          string
	StatsInterval           time.Duration
	CountersPublishInterval time.Duration
	EtcdEndpoints           []string // external etcd; empty runs an embedded etcd
	EtcdListen              string   // client URL of the embedded etcd
	EtcdPeer                string   // peer URL of the embedded etcd
	HTTPAddr                string   // REST, health and metrics
	DataDir                 string   // embedded etcd data, survives restarts
	LogLevel                slog.Level
	// LogLevelVar, when set, is the level of the agent's log handler; REST
	// (Ligato's /log/{logger}/{level}) changes it at run time.
	LogLevelVar *slog.LevelVar
	// LogRing, when set, holds the agent's last log lines for REST
	// (/log/recent) and agentctl report.
	LogRing *LogRing
	// Parallelism bounds the scheduler's concurrent VPP operations.
	Parallelism int
	// MeshLinkGrace is how long a mesh endpoint link that was up may stay
	// down before its connection moves to another endpoint.
	MeshLinkGrace time.Duration
	// MeshRxMode is the rx mode of the interfaces the mesh renders:
	// default (VPP's, polling; also ""), polling, interrupt or adaptive.
	MeshRxMode string
	// MeshLeasePoll is how often the leases of the mesh endpoints in use
	// are asked for their time to live near their end, so that an endpoint
	// whose lease ran out counts as gone before etcd deletes its key
	// (negative: wait for etcd).
	MeshLeasePoll time.Duration
	// HealthInterval is how often the VPP connection is probed.
	HealthInterval time.Duration
	// MaxMemifs caps the memifs the agent lets VPP hold (0: no cap); see
	// DefaultMaxMemifs and the README's "Running against FD.io VPP".
	MaxMemifs int
	// Etcd is Ligato's etcd.conf when one was given (ETCD_CONFIG,
	// --etcd-config or --config-dir): TLS, user/password and dial timeout
	// of the external etcd. EtcdEndpoints is already resolved.
	Etcd           *etcdconf.Config
	EtcdConfigFile string
	// ConfigFiles lists the Ligato configuration files that were read.
	ConfigFiles []string
	// Security: socket directories, REST credentials and TLS
	// (security_options.go).
	Security SecurityOptions
}

// DefaultMaxMemifs is --vpp-max-memifs' default: FD.io VPP 25.10 with its
// default 32 MiB stats segment aborts creating its 6,150th memif (measured
// with scripts/vpp-memif-limit.sh), so the agent stops short of it.
const DefaultMaxMemifs = 6000

// DefaultDataDir is /var/lib/vppmesh for root, else under XDG_STATE_HOME
// or ~/.local/state. Without either it is "" and the agent asks for
// --data-dir: a fixed directory under /tmp could be created first by
// another user.
func DefaultDataDir() string { return defaultDataDir(os.Geteuid()) }

func defaultDataDir(euid int) string {
	if euid == 0 {
		return "/var/lib/vppmesh"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "vppmesh")
	}
	if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "vppmesh")
	}
	return ""
}

// ParseFlags reads Options from command-line flags, Ligato's environment
// variables and Ligato's configuration files, in this order of precedence:
// flag > environment > file > default. Ligato's flag spellings
// (-microservice-label, -etcd-config, -config-dir, ...) are accepted beside
// vppmesh's, with one dash or two. A configuration file that is named but
// cannot be read or parsed is an error: it is never silently ignored.
func ParseFlags(name string, args []string) (Options, error) {
	return parseFlags(name, args, os.Getenv)
}

func parseFlags(name string, args []string, getenv func(string) string) (Options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var o Options
	var (
		label, ligatoLabel, vppSocket, statsSocket, endpoints, httpAddr, level string
		etcdConfig, configDir, govppConfig, httpConfig, logsConfig             string
		parallelism                                                            int
	)
	fs.StringVar(&label, "label", "", "microservice label (env MICROSERVICE_LABEL; default vpp1)")
	fs.StringVar(&ligatoLabel, "microservice-label", "", "Ligato's spelling of --label")
	fs.StringVar(&vppSocket, "vpp-socket", "", "VPP binary API socket (env VPP_API_SOCKET; govpp.conf binapi-socket-path; default /run/vpp/api.sock)")
	fs.StringVar(&statsSocket, "vpp-stats-socket", "", "VPP stats segment socket (env VPP_STATS_SOCKET; govpp.conf stats-socket-path; default /run/vpp/stats.sock)")
	fs.DurationVar(&o.StatsInterval, "stats-interval", time.Second, "how often VPP's counters are read")
	fs.DurationVar(&o.CountersPublishInterval, "counters-publish-interval", 5*time.Second, "how often counters are written to etcd status keys")
	fs.StringVar(&endpoints, "etcd-endpoints", "", "comma-separated etcd endpoints (env ETCD_ENDPOINTS; etcd.conf endpoints); none runs an embedded etcd")
	fs.StringVar(&etcdConfig, "etcd-config", "", "Ligato etcd.conf: endpoints, dial-timeout, TLS files, username/password (env ETCD_CONFIG)")
	fs.StringVar(&configDir, "config-dir", "", "directory of Ligato config files (etcd.conf, govpp.conf, http.conf, logs.conf) (env CONFIG_DIR)")
	fs.StringVar(&govppConfig, "govpp-config", "", "Ligato govpp.conf: binapi-socket-path, stats-socket-path (env GOVPP_CONFIG or GOVPPMUX_CONFIG)")
	fs.StringVar(&httpConfig, "http-config", "", "Ligato http.conf: endpoint (env HTTP_CONFIG)")
	fs.StringVar(&logsConfig, "logs-config", "", "Ligato logs.conf: default-level (env LOGS_CONFIG)")
	fs.StringVar(&o.EtcdListen, "etcd-listen", "http://127.0.0.1:2379", "client URL of the embedded etcd")
	fs.StringVar(&o.EtcdPeer, "etcd-peer", "http://127.0.0.1:2380", "peer URL of the embedded etcd")
	fs.StringVar(&httpAddr, "http", "", "REST, health and metrics address (env VPPMESH_HTTP; http.conf endpoint; default 127.0.0.1:9191)")
	fs.StringVar(&o.DataDir, "data-dir", DefaultDataDir(), "directory for the embedded etcd's data")
	fs.StringVar(&level, "log-level", "", "debug, info, warn or error (env VPPMESH_LOG_LEVEL; logs.conf default-level; default info)")
	fs.DurationVar(&o.HealthInterval, "vpp-health-interval", time.Second, "VPP health-check period")
	fs.DurationVar(&o.MeshLinkGrace, "mesh-link-grace", 500*time.Millisecond, "network service mesh: an endpoint link down this long moves its connection to another endpoint")
	fs.StringVar(&o.MeshRxMode, "mesh-rx-mode", "default", "network service mesh: rx mode of the memif and vhost-user interfaces it creates in VPP (default: VPP's, polling; or polling, interrupt, adaptive); see docs/mesh.md before changing it")
	fs.DurationVar(&o.MeshLeasePoll, "mesh-lease-poll", 100*time.Millisecond, "network service mesh: how often an endpoint lease with a second or less left is checked, so that its connections move as soon as it runs out (negative: when etcd deletes the endpoint)")
	fs.IntVar(&o.MaxMemifs, "vpp-max-memifs", DefaultMaxMemifs, "most memifs to create in VPP; more wait with a FAILED status until one is removed (0: no cap; raise with VPP's statseg size and main heap, see README)")
	fs.IntVar(&parallelism, "parallelism", 0, "independent VPP operations in flight at once (env VPPMESH_PARALLELISM; default 256)")
	addSecurityFlags(fs, &o.Security)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["label"] && set["microservice-label"] && label != ligatoLabel {
		return o, fmt.Errorf("--label %q and --microservice-label %q disagree", label, ligatoLabel)
	}
	if set["microservice-label"] {
		label, set["label"] = ligatoLabel, true
	}

	// Files: an explicit flag or environment variable names one; otherwise
	// --config-dir supplies the Ligato file names that exist in it.
	if !set["config-dir"] {
		configDir = getenv("CONFIG_DIR")
	}
	pick := func(flagName, flagVal, env, base string) string {
		if set[flagName] {
			return flagVal
		}
		for _, e := range strings.Split(env, "|") { // Ligato's name first, then an alias
			if v := getenv(e); v != "" {
				return v
			}
		}
		if configDir != "" {
			p := filepath.Join(configDir, base)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		return ""
	}
	files, err := loadFiles(configDir, pick, etcdConfig, govppConfig, httpConfig, logsConfig)
	if err != nil {
		return o, err
	}
	o.ConfigFiles = files.used
	o.EtcdConfigFile = files.etcdPath
	o.Etcd = files.etcd

	layer := func(flagName, flagVal, env, file, def string) string {
		if set[flagName] {
			return flagVal
		}
		if v := getenv(env); v != "" {
			return v
		}
		if file != "" {
			return file
		}
		return def
	}
	o.Label = layer("label", label, "MICROSERVICE_LABEL", "", "vpp1")
	o.VPPSocket = layer("vpp-socket", vppSocket, "VPP_API_SOCKET", files.govpp.BinapiSocketPath, "/run/vpp/api.sock")
	o.VPPStatsSocket = layer("vpp-stats-socket", statsSocket, "VPP_STATS_SOCKET", files.govpp.StatsSocketPath, "/run/vpp/stats.sock")
	o.HTTPAddr = layer("http", httpAddr, "VPPMESH_HTTP", files.http.Endpoint, "127.0.0.1:9191")
	level = layer("log-level", level, "VPPMESH_LOG_LEVEL", files.logs.DefaultLevel, "info")

	// Endpoints: an explicitly empty --etcd-endpoints means the embedded
	// etcd even with ETCD_ENDPOINTS or an etcd.conf around.
	var fileEndpoints string
	if o.Etcd != nil {
		fileEndpoints = strings.Join(o.Etcd.Endpoints, ",")
		if fileEndpoints == "" {
			fileEndpoints = etcdconf.DefaultEndpoint // Ligato's default when the file names none
		}
	}
	for _, e := range strings.Split(layer("etcd-endpoints", endpoints, "ETCD_ENDPOINTS", fileEndpoints, ""), ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.EtcdEndpoints = append(o.EtcdEndpoints, e)
		}
	}

	o.Parallelism = 256
	if set["parallelism"] {
		o.Parallelism = parallelism
	} else if v, err := strconv.Atoi(getenv("VPPMESH_PARALLELISM")); err == nil && v > 0 {
		o.Parallelism = v
	}
	if o.Parallelism < 1 {
		return o, fmt.Errorf("--parallelism %d: want at least 1", o.Parallelism)
	}
	if err := o.LogLevel.UnmarshalText([]byte(ligatoLevel(level))); err != nil {
		return o, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	if err := o.Security.check(); err != nil {
		return o, err
	}
	if o.DataDir == "" && len(o.EtcdEndpoints) == 0 {
		return o, fmt.Errorf("--data-dir: no default (no HOME or XDG_STATE_HOME); give one for the embedded etcd")
	}
	if o.MaxMemifs < 0 {
		return o, fmt.Errorf("--vpp-max-memifs %d: must be 0 (no cap) or more", o.MaxMemifs)
	}
	if o.Label == "" || strings.Contains(o.Label, "/") {
		return o, fmt.Errorf("--label %q: must be non-empty and contain no '/'", o.Label)
	}
	o.LogLevelVar = new(slog.LevelVar)
	o.LogLevelVar.Set(o.LogLevel)
	return o, nil
}

// ligatoLevel maps Ligato's (logrus) level names onto slog's.
func ligatoLevel(l string) string {
	switch strings.ToLower(strings.TrimSpace(l)) {
	case "warning":
		return "warn"
	case "trace":
		return "debug"
	case "fatal", "panic":
		return "error"
	}
	return l
}
