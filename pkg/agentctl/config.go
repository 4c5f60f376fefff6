package agentctl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// addLigatoConfigCommands adds Ligato's config verbs: update, delete,
// retrieve and watch.
func (c *cli) addLigatoConfigCommands(cmd *cobra.Command) {
	var (
		file, format    string
		replace, dryRun bool
		txOps           int
	)
	update := &cobra.Command{
		Use:   "update [FILE | -f FILE]",
		Short: "Put a configuration file into etcd (Ligato's vppConfig YAML/JSON, key-value YAML or KEY VALUE lines)",
		Long: `Put every value of FILE ("-" for stdin) into etcd, validated first. FILE is
Ligato's configurator YAML or JSON (vppConfig: interfaces:, bridgeDomains:,
xconnectPairs:, ...), or any format import reads. With --replace, config keys of
the agent that FILE does not hold are deleted afterwards (Ligato's full resync).
A value of a model vppmesh lacks is reported by name and the exit code is non-zero.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, name, err := c.readEntries(cmd, args, file, format)
			if err != nil {
				return err
			}
			if err := c.runImport(cmd, entries, txOps, false, dryRun); err != nil {
				return fmt.Errorf("config update %s: %w", name, err)
			}
			if !replace {
				return nil
			}
			keep := map[string]bool{}
			for _, e := range entries {
				keep[fullKey(c.label, e.Key)] = true
			}
			return c.deleteConfigExcept(cmd, keep, dryRun)
		},
	}
	uf := update.Flags()
	uf.StringVarP(&file, "file", "f", "", "the file (\"-\" for stdin), as the FILE argument")
	uf.BoolVar(&replace, "replace", false, "also delete the agent's config keys the file does not hold")
	uf.BoolVar(&dryRun, "dry-run", false, "validate only, write nothing")
	uf.StringVar(&format, "format", FormatAuto, "file format: auto, lines or yaml (JSON is YAML)")
	uf.IntVar(&txOps, "txops", DefaultTxOps, "operations per etcd transaction")

	var delFile, delFormat string
	del := &cobra.Command{
		Use:   "delete [FILE | -f FILE]",
		Short: "Delete the values a configuration file names from etcd",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, name, err := c.readEntries(cmd, args, delFile, delFormat)
			if err != nil {
				return err
			}
			return c.deleteEntries(cmd, name, entries)
		},
	}
	del.Flags().StringVarP(&delFile, "file", "f", "", "the file (\"-\" for stdin), as the FILE argument")
	del.Flags().StringVar(&delFormat, "format", FormatAuto, "file format: auto, lines or yaml (JSON is YAML)")

	retrieve := &cobra.Command{
		Use:   "retrieve",
		Short: "Show what VPP has now as Ligato's vppConfig YAML (REST)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.configRetrieve(cmd) },
	}
	var count int
	watch := &cobra.Command{
		Use:   "watch",
		Short: "Print every change of a value's state as the agent reports it (etcd), until Ctrl-C or --count changes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.configWatch(cmd, count) },
	}
	watch.Flags().IntVar(&count, "count", 0, "stop after this many changes (0: run until interrupted)")
	cmd.AddCommand(update, del, retrieve, watch)
}

func (c *cli) readEntries(cmd *cobra.Command, args []string, file, format string) ([]importEntry, string, error) {
	name, err := fileArg(args, file)
	if err != nil {
		return nil, "", err
	}
	data, err := readInput(cmd, name)
	if err != nil {
		return nil, "", err
	}
	entries, err := parseImport(data, format)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if len(entries) == 0 {
		return nil, "", fmt.Errorf("%s: no values in it", name)
	}
	return entries, name, nil
}

// deleteConfigExcept deletes the agent's config keys not in keep.
func (c *cli) deleteConfigExcept(cmd *cobra.Command, keep map[string]bool, dryRun bool) error {
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	prefix := c.agentRoot() + models.ConfigDir
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	resp, err := cl.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return c.etcdErr("list", prefix, err)
	}
	var gone []string
	for _, kv := range resp.Kvs {
		if k := string(kv.Key); !keep[k] {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		if dryRun {
			fmt.Fprintf(c.out, "would delete %s (not in the file)\n", k)
			continue
		}
		if _, err := cl.Delete(ctx, k); err != nil {
			return c.etcdErr("delete", k, err)
		}
		fmt.Fprintf(c.out, "deleted %s (not in the file)\n", k)
	}
	return nil
}

func (c *cli) deleteEntries(cmd *cobra.Command, name string, entries []importEntry) error {
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	bad, deleted, missing := 0, 0, 0
	for _, e := range entries {
		if e.Key == "" {
			bad++
			fmt.Fprintf(c.errOut, "bad entry %s: %v\n", e.Where, e.Err)
			continue
		}
		full := fullKey(c.label, e.Key)
		ctx, cancel := c.reqCtx(cmd.Context())
		resp, err := cl.Delete(ctx, full)
		cancel()
		if err != nil {
			return c.etcdErr("delete", full, err)
		}
		if resp.Deleted == 0 {
			missing++
			fmt.Fprintf(c.out, "not found %s\n", full)
			continue
		}
		deleted++
		fmt.Fprintf(c.out, "deleted %s\n", full)
	}
	if bad > 0 {
		return fmt.Errorf("config delete %s: %d of %d entries are bad (%d deleted, %d not found)", name, bad, len(entries), deleted, missing)
	}
	if deleted == 0 {
		return fmt.Errorf("config delete %s: none of its %d keys was in etcd", name, len(entries))
	}
	return nil
}

// configRetrieve renders VPP's current values (the scheduler's SB view)
// as Ligato's configurator document.
func (c *cli) configRetrieve(cmd *cobra.Command) error {
	var kvs []restapi.LigatoKVWithMetadata
	q := url.Values{"key-prefix": {models.ConfigDir}, "view": {"SB"}}
	if err := c.restCall(cmd.Context(), "GET", restapi.PathLigatoDump, q, &kvs); err != nil {
		return err
	}
	doc := map[string]map[string][]json.RawMessage{}
	for _, kv := range kvs {
		if kv.Value == nil {
			continue
		}
		group, field := "vppmeshConfig", strings.TrimSuffix(strings.TrimPrefix(kv.Key, models.ConfigDir), "/")
		for _, s := range ligatoSections {
			if strings.HasPrefix(kv.Key, s.prefix) {
				group, field = s.group, s.json
				break
			}
		}
		if group == "vppmeshConfig" {
			if m, err := models.ModelForKey(kv.Key); err == nil {
				field = m.Name
			}
		}
		if doc[group] == nil {
			doc[group] = map[string][]json.RawMessage{}
		}
		doc[group][field] = append(doc[group][field], kv.ProtoMsgDataOrNull())
	}
	if c.output == "json" {
		return c.render(doc, nil)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	y, err := yaml.JSONToYAML(b)
	if err != nil {
		return err
	}
	_, err = c.out.Write(y)
	return err
}

// statusEvent is one change of state config watch prints.
type statusEvent struct {
	Time  time.Time `json:"time"`
	Key   string    `json:"key"`
	State string    `json:"state"`
	Error string    `json:"error,omitempty"`
}

func (c *cli) configWatch(cmd *cobra.Command, count int) error {
	if count < 0 {
		return fmt.Errorf("--count %d: want 0 or more", count)
	}
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	prefix := c.agentRoot() + models.StatusDir
	ctx := cmd.Context()
	// The current states first, so that only changes are printed.
	gctx, cancel := c.reqCtx(ctx)
	resp, err := cl.Get(gctx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return c.etcdErr("list", prefix, err)
	}
	last := map[string]string{}
	for _, kv := range resp.Kvs {
		last[string(kv.Key)] = stateOf(kv.Value)
	}
	fmt.Fprintf(c.errOut, "watching %s (revision %d)\n", prefix, resp.Header.Revision)
	wch := cl.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	seen := 0
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch %s: %w", prefix, err)
		}
		for _, ev := range wr.Events {
			key := string(ev.Kv.Key)
			e := statusEvent{Time: time.Now(), Key: strings.TrimPrefix(key, prefix)}
			if ev.Type == clientv3.EventTypeDelete {
				e.State = "DELETED"
				delete(last, key)
			} else {
				var st struct {
					State string `json:"state"`
					Error string `json:"error"`
				}
				_ = json.Unmarshal(ev.Kv.Value, &st)
				e.State, e.Error = st.State, st.Error
				if last[key] == e.State+"\x00"+e.Error {
					continue // a counters refresh, not a change of state
				}
				last[key] = e.State + "\x00" + e.Error
			}
			if err := c.render(e, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s  %-10s %s %s\n", e.Time.Local().Format("15:04:05.000"), e.State, e.Key, e.Error)
				return err
			}); err != nil {
				return err
			}
			seen++
			if count > 0 && seen >= count {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil // interrupted: the normal end of a watch
	}
	return fmt.Errorf("watch %s ended: etcd closed the stream", prefix)
}

func stateOf(b []byte) string {
	var st struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &st)
	return st.State + "\x00" + st.Error
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
