package agentctl

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// ConfigValue is one desired value read from etcd.
type ConfigValue struct {
	Key   string `json:"key"`
	Model string `json:"model,omitempty"`
	Value any    `json:"value"`
	Error string `json:"error,omitempty"`
}

func newConfigCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Aliases: []string{"cfg"},
		Short:   "Desired configuration: read it, see its transactions, resync it",
		Args:    cobra.NoArgs,
	}
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the desired values stored in etcd for the agent",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.configGet(cmd) },
	}
	var last int
	history := &cobra.Command{
		Use:   "history",
		Short: "Show the scheduler's last transactions (REST)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.configHistory(cmd, last) },
	}
	history.Flags().IntVarP(&last, "last", "n", 20, "how many transactions")
	resync := &cobra.Command{
		Use:   "resync",
		Short: "Make the agent resync VPP with etcd now, and show what it did (REST)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.configResync(cmd) },
	}
	cmd.AddCommand(get, history, resync)
	c.addLigatoConfigCommands(cmd)
	return cmd
}

func (c *cli) configGet(cmd *cobra.Command) error {
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	prefix := c.agentRoot() + models.ConfigDir
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	resp, err := cl.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return c.etcdErr("list", prefix, err)
	}
	vals := make([]ConfigValue, 0, len(resp.Kvs))
	rows := make([][]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		cv := ConfigValue{Key: key, Value: rawOrString(kv.Value)}
		if m, err := models.ModelForKey(strings.TrimPrefix(key, c.agentRoot())); err == nil {
			cv.Model = m.Name
		}
		if _, err := validate(key, kv.Value); err != nil {
			cv.Error = err.Error()
		}
		vals = append(vals, cv)
		rows = append(rows, []string{key, orDash(cv.Model), compactJSON(kv.Value), orDash(cv.Error)})
	}
	return c.render(vals, func(w io.Writer) error {
		return table(w, []string{"KEY", "MODEL", "VALUE", "ERROR"}, rows)
	})
}

func (c *cli) configHistory(cmd *cobra.Command, last int) error {
	if last < 1 {
		return fmt.Errorf("--last %d: want at least 1", last)
	}
	var hist []kvscheduler.TxnRecord
	if err := c.restCall(cmd.Context(), "GET", restapi.PathTxnHistory, url.Values{"n": {strconv.Itoa(last)}}, &hist); err != nil {
		return err
	}
	return c.render(hist, func(w io.Writer) error { return txnTable(w, hist) })
}

func txnTable(w io.Writer, hist []kvscheduler.TxnRecord) error {
	rows := make([][]string, 0, len(hist))
	for _, t := range hist {
		ops := make([]string, 0, len(t.Ops))
		for _, op := range t.Ops {
			s := string(op.Op) + " " + op.Key
			if op.Error != "" {
				s += " (error: " + op.Error + ")"
			}
			ops = append(ops, s)
		}
		errs := make([]string, 0, len(t.Errors))
		for k, e := range t.Errors {
			errs = append(errs, k+": "+e)
		}
		sort.Strings(errs)
		rows = append(rows, []string{
			strconv.FormatUint(t.Seq, 10), string(t.Kind), t.Start.Local().Format("15:04:05.000"),
			t.Duration.Round(time.Microsecond).String(), strconv.Itoa(len(t.Changes)), joinOrDash(ops), joinOrDash(errs),
		})
	}
	return table(w, []string{"SEQ", "KIND", "START", "DURATION", "CHANGES", "OPS", "ERRORS"}, rows)
}

func (c *cli) configResync(cmd *cobra.Command) error {
	var res restapi.ResyncResult
	if err := c.restCall(cmd.Context(), "POST", restapi.PathResync, nil, &res); err != nil {
		return err
	}
	return c.render(res, func(w io.Writer) error {
		if len(res.Txns) == 0 {
			_, err := fmt.Fprintln(w, "resync done: nothing to do")
			return err
		}
		fmt.Fprintln(w, "resync done:")
		return txnTable(w, res.Txns)
	})
}

func newValuesCommand(c *cli) *cobra.Command {
	var state, descriptor, prefix string
	cmd := &cobra.Command{
		Use:   "values [MODEL | PREFIX]",
		Short: "Show the state of every value the agent knows, of one model (vpp.interfaces, all, ...) or key prefix (REST)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if len(args) == 1 {
				p, isModel, err := resolveModel(args[0])
				if err != nil {
					return err
				}
				prefix = args[0]
				if isModel {
					prefix = p
					if args[0] == "all" {
						prefix = ""
					}
				}
			}
			if prefix != "" {
				q.Set("prefix", prefix)
			}
			if state != "" {
				q.Set("state", strings.ToUpper(state))
			}
			if descriptor != "" {
				q.Set("descriptor", descriptor)
			}
			var vals []restapi.ValueJSON
			if err := c.restCall(cmd.Context(), "GET", restapi.PathValues, q, &vals); err != nil {
				return err
			}
			now := time.Now()
			rows := make([][]string, 0, len(vals))
			for _, v := range vals {
				details := string(v.State)
				if len(v.Missing) > 0 {
					details += " (waiting for " + strings.Join(v.Missing, ",") + ")"
				}
				rows = append(rows, []string{v.Key, details, orDash(v.Error), ago(v.LastChange, now)})
			}
			return c.render(vals, func(w io.Writer) error {
				return table(w, []string{"KEY", "STATE", "ERROR", "LAST CHANGE"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only values in this state (e.g. FAILED, PENDING)")
	cmd.Flags().StringVar(&descriptor, "descriptor", "", "only values of this descriptor")
	return cmd
}

func newDumpCommand(c *cli) *cobra.Command {
	var descriptor, view, origin, format string
	cmd := &cobra.Command{
		Use:   "dump [MODEL | DESCRIPTOR]...",
		Short: "Show values as VPP has them now (view SB), as etcd asks (NB) or as the agent believes (cached) (REST)",
		Long: `Show values of some models (Ligato's names: vpp.interfaces, vpp.l2.bridge-domain,
vpp.l2.xconnect, ..., or all) or descriptors (vpp-interface, ...); none means all.
--view SB (default) asks VPP now; NB shows the desired values; cached shows what the
agent believes is applied.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if descriptor != "" {
				args = append(args, descriptor)
			}
			switch strings.ToLower(format) {
			case "":
			case "json", "yaml":
				c.output = strings.ToLower(format)
			default:
				return fmt.Errorf("--format %q: want json or yaml (or use -o)", format)
			}
			wantOrigin := ""
			switch strings.ToUpper(origin) {
			case "":
			case "NB", "SB":
				wantOrigin = "FROM_" + strings.ToUpper(origin)
			default:
				return fmt.Errorf("--origin %q: want NB or SB", origin)
			}
			type filter struct{ prefix, descriptor string }
			var filters []filter
			for _, a := range args {
				p, isModel, err := resolveModel(a)
				if err != nil {
					return err
				}
				if isModel {
					filters = append(filters, filter{prefix: p})
				} else {
					filters = append(filters, filter{descriptor: a})
				}
			}
			if len(filters) == 0 {
				filters = []filter{{prefix: ""}}
			}
			var vals []restapi.DumpJSON
			switch strings.ToLower(view) {
			case "sb", "":
				var all []restapi.DumpJSON
				if err := c.restCall(cmd.Context(), "GET", restapi.PathVPPDump, nil, &all); err != nil {
					return err
				}
				for _, v := range all {
					for _, f := range filters {
						if (f.descriptor == "" || v.Descriptor == f.descriptor) && strings.HasPrefix(v.Key, f.prefix) {
							vals = append(vals, v)
							break
						}
					}
				}
			case "nb", "cached":
				v := "NB"
				if strings.ToLower(view) == "cached" {
					v = "cached"
				}
				seen := map[string]bool{}
				for _, f := range filters {
					q := url.Values{"view": {v}}
					if f.descriptor != "" {
						q.Set("descriptor", f.descriptor)
					} else {
						q.Set("key-prefix", f.prefix)
						if f.prefix == "" {
							q.Set("key-prefix", models.ConfigDir)
						}
					}
					var kvs []restapi.LigatoKVWithMetadata
					if err := c.restCall(cmd.Context(), "GET", restapi.PathLigatoDump, q, &kvs); err != nil {
						return err
					}
					for _, kv := range kvs {
						if seen[kv.Key] {
							continue
						}
						seen[kv.Key] = true
						origin := "FROM_NB"
						if kv.Origin == 2 {
							origin = "FROM_SB"
						}
						vals = append(vals, restapi.DumpJSON{Key: kv.Key, Origin: origin, Value: kv.ProtoMsgDataOrNull(), Metadata: kv.Metadata})
					}
				}
			default:
				return fmt.Errorf("--view %q: want SB, NB or cached", view)
			}
			kept := []restapi.DumpJSON{}
			for _, v := range vals {
				if wantOrigin == "" || v.Origin == wantOrigin {
					kept = append(kept, v)
				}
			}
			vals = kept
			rows := make([][]string, 0, len(vals))
			for _, v := range vals {
				rows = append(rows, []string{v.Key, orDash(v.Descriptor), v.Origin, compactJSON(v.Value), compactJSON(v.Metadata)})
			}
			return c.render(vals, func(w io.Writer) error {
				return table(w, []string{"KEY", "DESCRIPTOR", "ORIGIN", "VALUE", "METADATA"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&descriptor, "descriptor", "", "only values of this descriptor")
	cmd.Flags().StringVar(&view, "view", "SB", "SB (VPP now), NB (desired) or cached (believed applied)")
	cmd.Flags().StringVar(&origin, "origin", "", "only values of this origin: NB (created by the agent) or SB (found in VPP)")
	cmd.Flags().StringVarP(&format, "format", "f", "", "json or yaml (Ligato's spelling of -o)")
	return cmd
}

func newStatusCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the agent's version, readiness, VPP connection and value counts (REST)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st restapi.AgentStatus
			if err := c.restCall(cmd.Context(), "GET", restapi.PathStatus, nil, &st); err != nil {
				return err
			}
			return c.render(st, func(w io.Writer) error {
				vpp := "unknown"
				if st.VPPConnected != nil {
					vpp = strconv.FormatBool(*st.VPPConnected)
				}
				fmt.Fprintf(w, "agent:          %s:%d (label %s)\n", c.host, c.httpPort, c.label)
				fmt.Fprintf(w, "version:        %s\n", orDash(st.Version))
				fmt.Fprintf(w, "ready:          %t\n", st.Ready)
				fmt.Fprintf(w, "vpp connected:  %s\n", vpp)
				fmt.Fprintf(w, "values:         %d\n", st.Values)
				states := make([]string, 0, len(st.ValuesByState))
				for s := range st.ValuesByState {
					states = append(states, s)
				}
				sort.Strings(states)
				rows := make([][]string, 0, len(states))
				for _, s := range states {
					rows = append(rows, []string{s, strconv.Itoa(st.ValuesByState[s])})
				}
				fmt.Fprintln(w)
				return table(w, []string{"STATE", "VALUES"}, rows)
			})
		},
	}
}
