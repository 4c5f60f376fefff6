package agentctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vppmesh/vppmesh/pkg/etcdconf"
)

// Version is agentctl's version, set at build time (-ldflags -X).
var Version = "dev"

// Defaults match Ligato agentctl's.
const (
	DefaultEtcdEndpoint = "127.0.0.1:2379"
	DefaultServiceLabel = "vpp1"
	DefaultHost         = "127.0.0.1"
	DefaultHTTPPort     = 9191
	// DefaultTxOps is etcd's default --max-txn-ops: a bigger txn is refused.
	DefaultTxOps = 128
)

// cli holds the global flags and the clients built from them. One per
// command tree, so tests can run many in one process.
type cli struct {
	endpoints []string
	label     string
	host      string
	httpPort  int
	output    string
	timeout   time.Duration
	// etcdConfig is Ligato's etcd.conf (--etcd-config, env ETCD_CONFIG):
	// endpoints, TLS and user/password for etcd.
	etcdConfig   string
	endpointsSet bool
	etcdConfEnv  string
	envEndpoints bool

	out, errOut io.Writer
	etcd        *clientv3.Client
	restAuth    restAuth // REST credentials and TLS (restauth.go)
}

// NewRootCommand builds the agentctl command tree. getenv supplies the
// environment defaults (os.Getenv in main; a map in tests).
func NewRootCommand(getenv func(string) string) *cobra.Command {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := &cli{}
	root := &cobra.Command{
		Use:           "agentctl",
		Short:         "Manage vppmesh agents: etcd config, status, resync",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			c.out, c.errOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
			switch c.output {
			case "table", "json", "yaml":
			default:
				return fmt.Errorf("--output %q: want table, json or yaml", c.output)
			}
			if c.label == "" || strings.Contains(c.label, "/") {
				return fmt.Errorf("--service-label %q: want a non-empty label without '/'", c.label)
			}
			c.endpointsSet = cmd.Flags().Changed("etcd-endpoints")
			if c.etcdConfig == "" {
				c.etcdConfig = c.etcdConfEnv
			}
			return nil
		},
		PersistentPostRun: func(*cobra.Command, []string) { c.close() },
	}
	endpoints := splitList(getenv("ETCD_ENDPOINTS"))
	if len(endpoints) == 0 {
		endpoints = []string{DefaultEtcdEndpoint}
	}
	port := DefaultHTTPPort
	if p, err := strconv.Atoi(getenv("AGENT_HTTP_PORT")); err == nil && p > 0 {
		port = p
	}
	pf := root.PersistentFlags()
	pf.StringSliceVarP(&c.endpoints, "etcd-endpoints", "e", endpoints, "etcd endpoints (env ETCD_ENDPOINTS)")
	pf.StringVar(&c.label, "service-label", orDefault(getenv("MICROSERVICE_LABEL"), DefaultServiceLabel), "agent's microservice label (env MICROSERVICE_LABEL)")
	pf.StringVarP(&c.host, "host", "H", orDefault(getenv("AGENT_HOST"), DefaultHost), "agent's host for its REST API (env AGENT_HOST)")
	pf.IntVar(&c.httpPort, "http-port", port, "agent's REST API port (env AGENT_HTTP_PORT)")
	pf.StringVarP(&c.output, "output", "o", "table", "output format: table, json or yaml")
	pf.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout for one etcd or REST request")
	pf.StringVar(&c.etcdConfig, "etcd-config", "", "Ligato etcd.conf: endpoints, TLS files, username/password (env ETCD_CONFIG)")
	c.etcdConfEnv = getenv(etcdconf.EnvVar)
	c.envEndpoints = getenv("ETCD_ENDPOINTS") != ""
	addRESTAuthFlags(pf, getenv, &c.restAuth)

	root.AddCommand(
		newKvdbCommand(c),
		newImportCommand(c),
		newConfigCommand(c),
		newValuesCommand(c),
		newDumpCommand(c),
		newStatusCommand(c),
		newVPPCommand(c),
		newStatsCommand(c),
		newMeshCommand(c),
		newModelCommand(c),
		newLogCommand(c),
		newMetricsCommand(c),
		newReportCommand(c),
		newVersionCommand(c),
		newWatchCommand(c), // watch.go
		newGraphCommand(c), // graph.go
	)
	c.addCompletions(root)          // complete.go
	root.InitDefaultCompletionCmd() // now, so that it too fails without a shell
	requireSubcommand(root)
	return root
}

// requireSubcommand makes every command that only groups others fail with
// the list of its subcommands instead of printing help and exiting 0.
func requireSubcommand(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		requireSubcommand(sub)
	}
	if cmd.Run != nil || cmd.RunE != nil || !cmd.HasSubCommands() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		names := []string{}
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		if len(args) > 0 {
			return fmt.Errorf("%s: unknown command %q (want one of: %s)", cmd.CommandPath(), args[0], strings.Join(names, ", "))
		}
		return fmt.Errorf("%s: missing command (want one of: %s; see %s --help)", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// etcdClient connects lazily: commands that only talk REST never dial etcd.
// Endpoints come from --etcd-endpoints, else ETCD_ENDPOINTS, else the
// etcd.conf (--etcd-config / ETCD_CONFIG), else the default; TLS and
// user/password come from the etcd.conf.
func (c *cli) etcdClient() (*clientv3.Client, error) {
	if c.etcd != nil {
		return c.etcd, nil
	}
	cfg := clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second}
	if c.etcdConfig != "" {
		conf, err := etcdconf.Load(c.etcdConfig)
		if err != nil {
			return nil, err
		}
		fileCfg, err := conf.ClientConfig(5 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("etcd config %s: %w", c.etcdConfig, err)
		}
		if !c.endpointsSet && !c.envEndpoints && len(conf.Endpoints) > 0 {
			c.endpoints = fileCfg.Endpoints
		}
		fileCfg.Endpoints = c.endpoints
		cfg = fileCfg
	}
	// The client's own warnings would garble a command's output; every
	// failure reaches the user as the command's error instead.
	cfg.Logger = zap.NewNop()
	cl, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", strings.Join(c.endpoints, ","), err)
	}
	c.etcd = cl
	return cl, nil
}

func (c *cli) close() {
	if c.etcd != nil {
		c.etcd.Close()
		c.etcd = nil
	}
}

// reqCtx bounds one request by --timeout.
func (c *cli) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, c.timeout)
}

// etcdErr names the endpoint when etcd cannot be reached, which is the usual
// cause and otherwise shows as a bare "context deadline exceeded".
func (c *cli) etcdErr(op, key string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: etcd %s did not answer within %s: %w", op, key, strings.Join(c.endpoints, ","), c.timeout, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}
