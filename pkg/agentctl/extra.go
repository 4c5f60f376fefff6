package agentctl

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// ModelInfo is one model as `agentctl model` lists it.
type ModelInfo struct {
	Name      string `json:"name"`
	KeyPrefix string `json:"key_prefix"`
	ProtoName string `json:"proto_name"`
}

func modelInfos() []ModelInfo {
	var out []ModelInfo
	for _, m := range models.Models() {
		out = append(out, ModelInfo{Name: m.Name, KeyPrefix: m.KeyPrefix, ProtoName: string(proto.MessageName(m.New()))})
	}
	return out
}

func newModelCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "model",
		Aliases: []string{"models"},
		Short:   "List the models (Ligato's names) this agentctl and agent know",
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every model: name, key prefix, protobuf message",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos := modelInfos()
			rows := make([][]string, 0, len(infos))
			for _, m := range infos {
				rows = append(rows, []string{m.Name, m.KeyPrefix, m.ProtoName})
			}
			return c.render(infos, func(w io.Writer) error { return table(w, []string{"MODEL", "KEY PREFIX", "PROTO MESSAGE"}, rows) })
		},
	}
	inspect := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Show one model (a Ligato model vppmesh lacks is named as not supported)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, isModel, err := resolveModel(args[0])
			if err != nil {
				return err
			}
			if !isModel || args[0] == "all" {
				return fmt.Errorf("unknown model %q (supported: %s)", args[0], supportedNames())
			}
			for _, m := range modelInfos() {
				if m.KeyPrefix == p {
					return c.render(m, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "model:        %s\nkey prefix:   %s\nproto:        %s\n", m.Name, m.KeyPrefix, m.ProtoName)
						return err
					})
				}
			}
			return fmt.Errorf("model %q not found", args[0])
		},
	}
	cmd.AddCommand(list, inspect)
	// `agentctl models` (Ligato's habit) lists them.
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cmd.CalledAs() == "models" && len(args) == 0 {
			return list.RunE(list, nil)
		}
		if len(args) > 0 {
			return fmt.Errorf("%s: unknown command %q (want one of: list, inspect)", cmd.CommandPath(), args[0])
		}
		return fmt.Errorf("%s: missing command (want one of: list, inspect)", cmd.CommandPath())
	}
	cmd.Args = cobra.ArbitraryArgs
	return cmd
}

func newLogCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "List and change the agent's log levels (REST)",
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the agent's loggers and their levels",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ls []restapi.LigatoLogger
			if err := c.restCall(cmd.Context(), "GET", restapi.PathLogList, nil, &ls); err != nil {
				return err
			}
			rows := make([][]string, 0, len(ls))
			for _, l := range ls {
				rows = append(rows, []string{l.Logger, l.Level})
			}
			return c.render(ls, func(w io.Writer) error { return table(w, []string{"LOGGER", "LEVEL"}, rows) })
		},
	}
	set := &cobra.Command{
		Use:   "set LOGGER LEVEL",
		Short: "Change a logger's level (debug, info, warn, error)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var l restapi.LigatoLogger
			path := "/log/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1])
			if err := c.restCall(cmd.Context(), "PUT", path, nil, &l); err != nil {
				return err
			}
			return c.render(l, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "logger %s: level %s\n", l.Logger, l.Level)
				return err
			})
		},
	}
	var n int
	recent := &cobra.Command{
		Use:   "recent",
		Short: "Show the agent's last log lines (vppmesh's /log/recent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return fmt.Errorf("-n %d: want at least 1", n)
			}
			var lines []json.RawMessage
			if err := c.restCall(cmd.Context(), "GET", restapi.PathLogRecent, url.Values{"n": {strconv.Itoa(n)}}, &lines); err != nil {
				return err
			}
			if len(lines) == 0 {
				return errors.New("log recent: the agent has no log lines")
			}
			return c.render(lines, func(w io.Writer) error {
				for _, l := range lines {
					if _, err := fmt.Fprintf(w, "%s\n", l); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	recent.Flags().IntVarP(&n, "lines", "n", 50, "how many lines")
	cmd.AddCommand(list, set, recent)
	return cmd
}

// MetricLine is one Prometheus sample `agentctl metrics` prints.
type MetricLine struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

func newMetricsCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "metrics [PREFIX]",
		Short: "Show the agent's Prometheus metrics, optionally those whose name starts with PREFIX (REST)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := c.restRaw(cmd.Context(), "GET", restapi.PathMetrics, nil)
			if err != nil {
				return err
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			var lines []MetricLine
			var rows [][]string
			sc := bufio.NewScanner(bytes.NewReader(body))
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				line := sc.Text()
				if line == "" || strings.HasPrefix(line, "#") || !strings.HasPrefix(line, prefix) {
					continue
				}
				i := strings.LastIndexByte(line, ' ')
				if i < 0 {
					continue
				}
				v, err := strconv.ParseFloat(line[i+1:], 64)
				if err != nil {
					continue
				}
				lines = append(lines, MetricLine{Name: line[:i], Value: v})
				rows = append(rows, []string{line[:i], line[i+1:]})
			}
			if len(lines) == 0 {
				return fmt.Errorf("metrics: no metric named %s*", prefix)
			}
			return c.render(lines, func(w io.Writer) error { return table(w, []string{"METRIC", "VALUE"}, rows) })
		},
	}
}

func newVersionCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show agentctl's version and, when reachable, the agent's (REST)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type versions struct {
				Agentctl string                 `json:"agentctl"`
				Go       string                 `json:"go"`
				Agent    *restapi.LigatoVersion `json:"agent,omitempty"`
				AgentErr string                 `json:"agent_error,omitempty"`
			}
			v := versions{Agentctl: Version, Go: runtime.Version()}
			var av restapi.LigatoVersion
			if err := c.restCall(cmd.Context(), "GET", restapi.PathInfoVer, nil, &av); err != nil {
				v.AgentErr = err.Error()
			} else {
				v.Agent = &av
			}
			return c.render(v, func(w io.Writer) error {
				fmt.Fprintf(w, "agentctl: %s (%s)\n", v.Agentctl, v.Go)
				if v.Agent != nil {
					_, err := fmt.Fprintf(w, "agent:    %s %s (%s)\n", v.Agent.App, v.Agent.Version, v.Agent.GoVersion)
					return err
				}
				_, err := fmt.Fprintf(w, "agent:    unreachable: %s\n", v.AgentErr)
				return err
			})
		},
	}
}

// reportSection is one file of a report and where its content comes from.
type reportSection struct {
	file string
	get  func() ([]byte, error)
}

func newReportCommand(c *cli) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write a tar.gz for bug reports: versions, status, values, dumps, history, config, counters, logs, VPP's view",
		Long: `Collect the agent's state into agentctl-report-<label>-<time>.tar.gz in --dir.
Each section is one file; a section that cannot be read is listed with its
error in errors.txt. agent-log.json holds the agent's last 2000 log lines (what
it keeps in memory); older ones are in its stderr (journalctl, kubectl logs).
The exit code is non-zero when the agent could not be reached at all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.report(cmd, dir) },
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write the report into")
	return cmd
}

func (c *cli) report(cmd *cobra.Command, dir string) error {
	ctx := cmd.Context()
	rest := func(method, path string, q url.Values) func() ([]byte, error) {
		return func() ([]byte, error) { return c.restRaw(ctx, method, path, q) }
	}
	cliOut := func(command string) func() ([]byte, error) {
		return func() ([]byte, error) {
			var out restapi.VPPCommandJSON
			if err := c.restCall(ctx, "POST", restapi.PathVPPCLI, url.Values{"command": {command}}, &out); err != nil {
				return nil, err
			}
			return []byte(out.Output), nil
		}
	}
	sections := []reportSection{
		{"agentctl-version.json", func() ([]byte, error) {
			return json.MarshalIndent(map[string]string{"agentctl": Version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH}, "", "  ")
		}},
		{"agent-version.json", rest("GET", restapi.PathInfoVer, nil)},
		{"status.json", rest("GET", restapi.PathStatus, nil)},
		{"readiness.json", rest("GET", restapi.PathReadiness, nil)},
		{"values.json", rest("GET", restapi.PathValues, nil)},
		{"scheduler-status.json", rest("GET", restapi.PathSchedulerStatus, nil)},
		{"dump-vpp.json", rest("GET", restapi.PathVPPDump, nil)},
		{"dump-nb.json", rest("GET", restapi.PathLigatoDump, url.Values{"key-prefix": {models.ConfigDir}, "view": {"NB"}})},
		{"txn-history.json", rest("GET", restapi.PathTxnHistory, url.Values{"n": {"200"}})},
		{"counters.json", rest("GET", restapi.PathVPPCounters, nil)},
		{"log-levels.json", rest("GET", restapi.PathLogList, nil)},
		{"agent-log.json", rest("GET", restapi.PathLogRecent, url.Values{"n": {"2000"}})},
		{"metrics.txt", rest("GET", restapi.PathMetrics, nil)},
		{"vpp-version.txt", cliOut("show version verbose")},
		{"vpp-interfaces.txt", cliOut("show interface")},
		{"vpp-mode.txt", cliOut("show mode")},
		{"vpp-errors.txt", cliOut("show errors")},
		{"etcd-config.json", func() ([]byte, error) { return c.etcdDump(ctx) }},
	}
	now := time.Now()
	name := filepath.Join(dir, fmt.Sprintf("agentctl-report-%s-%s.tar.gz", c.label, now.UTC().Format("20060102-150405")))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	add := func(file string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: "report/" + file, Mode: 0o600, Size: int64(len(data)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	var errs []string
	okAgent := false
	for _, s := range sections {
		data, err := s.get()
		if err != nil {
			errs = append(errs, s.file+": "+err.Error())
			continue
		}
		if s.file == "status.json" {
			okAgent = true
		}
		if strings.HasSuffix(s.file, ".json") {
			data = redactJSON(data)
		}
		if err := add(s.file, data); err != nil {
			f.Close()
			return fmt.Errorf("report %s: %w", name, err)
		}
	}
	errText := "no errors\n"
	if len(errs) > 0 {
		errText = strings.Join(errs, "\n") + "\n"
	}
	if err := add("errors.txt", []byte(errText)); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", name, err)
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", name, err)
	}
	if err := gz.Close(); err != nil {
		f.Close()
		return fmt.Errorf("report %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report %s: %w", name, err)
	}
	for _, e := range errs {
		fmt.Fprintf(c.errOut, "report: section %s\n", e)
	}
	fmt.Fprintf(c.out, "report written to %s (%d sections, %d failed)\n", name, len(sections)-len(errs), len(errs))
	if !okAgent {
		return fmt.Errorf("report: the agent at %s:%d could not be reached; %s holds only what could be read", c.host, c.httpPort, name)
	}
	return nil
}

// etcdDump reads the agent's config keys for the report.
func (c *cli) etcdDump(ctx context.Context) ([]byte, error) {
	cl, err := c.etcdClient()
	if err != nil {
		return nil, err
	}
	prefix := c.agentRoot() + models.ConfigDir
	rctx, cancel := c.reqCtx(ctx)
	defer cancel()
	resp, err := cl.Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, c.etcdErr("list", prefix, err)
	}
	kvs := make([]KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs = append(kvs, KV{Key: string(kv.Key), Value: rawOrString(kv.Value), ModRevision: kv.ModRevision})
	}
	return json.MarshalIndent(kvs, "", "  ")
}

// secretFields are value fields a report must not carry: memif secrets,
// IPsec and WireGuard keys, passwords.
var secretFields = map[string]bool{"secret": true, "password": true, "crypto_key": true, "cryptoKey": true,
	"integ_key": true, "integKey": true, "private_key": true, "privateKey": true, "preshared_key": true, "presharedKey": true}

// redactJSON replaces the values of secret fields anywhere in a JSON
// document, including JSON held in string values (etcd values).
func redactJSON(data []byte) []byte {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return data
	}
	out, err := json.MarshalIndent(redactValue(v), "", "  ")
	if err != nil {
		return data
	}
	return out
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if secretFields[k] {
				x[k] = "(redacted)"
				continue
			}
			x[k] = redactValue(e)
		}
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
	}
	return v
}
