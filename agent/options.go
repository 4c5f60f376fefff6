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
	// Parallelism bounds the scheduler's concurrent VPP operations.
	Parallelism int
	// MeshLinkGrace is how long a mesh endpoint link that was up may stay
	// down before its connection moves to another endpoint.
	MeshLinkGrace time.Duration
	// HealthInterval is how often the VPP connection is probed.
	HealthInterval time.Duration
	// MaxMemifs caps the memifs the agent lets VPP hold (0: no cap); see
	// DefaultMaxMemifs and the README's "Running against FD.io VPP".
	MaxMemifs int
}

// DefaultMaxMemifs is --vpp-max-memifs' default: FD.io VPP 25.10 with its
// default 32 MiB stats segment aborts creating its 6,150th memif (measured
// with scripts/vpp-memif-limit.sh), so the agent stops short of it.
const DefaultMaxMemifs = 6000

// DefaultDataDir is /var/lib/vppmesh for root, else under XDG_STATE_HOME.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/vppmesh"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "vppmesh")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "vppmesh")
	}
	return filepath.Join(os.TempDir(), "vppmesh")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// ParseFlags reads Options from command-line flags, with Ligato's
// environment variables as defaults.
func ParseFlags(name string, args []string) (Options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var o Options
	var endpoints, level string
	fs.StringVar(&o.Label, "label", envOr("MICROSERVICE_LABEL", "vpp1"), "microservice label (env MICROSERVICE_LABEL)")
	fs.StringVar(&o.VPPSocket, "vpp-socket", envOr("VPP_API_SOCKET", "/run/vpp/api.sock"), "VPP binary API socket (env VPP_API_SOCKET)")
	fs.StringVar(&o.VPPStatsSocket, "vpp-stats-socket", envOr("VPP_STATS_SOCKET", "/run/vpp/stats.sock"), "VPP stats segment socket (env VPP_STATS_SOCKET)")
	fs.DurationVar(&o.StatsInterval, "stats-interval", time.Second, "how often VPP's counters are read")
	fs.DurationVar(&o.CountersPublishInterval, "counters-publish-interval", 5*time.Second, "how often counters are written to etcd status keys")
	fs.StringVar(&endpoints, "etcd-endpoints", os.Getenv("ETCD_ENDPOINTS"), "comma-separated etcd endpoints; empty runs an embedded etcd (env ETCD_ENDPOINTS)")
	fs.StringVar(&o.EtcdListen, "etcd-listen", "http://127.0.0.1:2379", "client URL of the embedded etcd")
	fs.StringVar(&o.EtcdPeer, "etcd-peer", "http://127.0.0.1:2380", "peer URL of the embedded etcd")
	fs.StringVar(&o.HTTPAddr, "http", envOr("VPPMESH_HTTP", "127.0.0.1:9191"), "REST, health and metrics address")
	fs.StringVar(&o.DataDir, "data-dir", DefaultDataDir(), "directory for the embedded etcd's data")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.HealthInterval, "vpp-health-interval", time.Second, "VPP health-check period")
	fs.DurationVar(&o.MeshLinkGrace, "mesh-link-grace", 500*time.Millisecond, "network service mesh: an endpoint link down this long moves its connection to another endpoint")
	fs.IntVar(&o.MaxMemifs, "vpp-max-memifs", DefaultMaxMemifs, "most memifs to create in VPP; more wait with a FAILED status until one is removed (0: no cap; raise with VPP's statseg size and main heap, see README)")
	fs.IntVar(&o.Parallelism, "parallelism", envInt("VPPMESH_PARALLELISM", 256), "independent VPP operations in flight at once (env VPPMESH_PARALLELISM)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.EtcdEndpoints = append(o.EtcdEndpoints, e)
		}
	}
	if err := o.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return o, fmt.Errorf("--log-level: %w", err)
	}
	if o.MaxMemifs < 0 {
		return o, fmt.Errorf("--vpp-max-memifs %d: must be 0 (no cap) or more", o.MaxMemifs)
	}
	if o.Label == "" || strings.Contains(o.Label, "/") {
		return o, fmt.Errorf("--label %q: must be non-empty and contain no '/'", o.Label)
	}
	return o, nil
}
