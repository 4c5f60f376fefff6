package agentctl

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV is one etcd entry as -o json/yaml shows it.
type KV struct {
	Key         string `json:"key"`
	Value       any    `json:"value,omitempty"`
	ModRevision int64  `json:"mod_revision,omitempty"`
}

func newKvdbCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "kvdb",
		Aliases: []string{"kv"},
		Short:   "Read and write agent data in etcd",
		Args:    cobra.NoArgs,
	}
	var force, wait bool
	put := &cobra.Command{
		Use:     "put KEY VALUE",
		Aliases: []string{"p"},
		Short:   "Put a value into etcd, validated against its model",
		Long: `Put a value into etcd. KEY is full (/vnf-agent/vpp1/config/vpp/v2/interfaces/memif1)
or relative to the agent's root (config/vpp/v2/interfaces/memif1, or vpp/v2/interfaces/memif1).
VALUE "-" reads the value from stdin. The value is checked against the key's model
and stored as canonical protobuf JSON; --force stores it unchecked, as given.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.kvPut(cmd, args[0], args[1], force, wait)
		},
	}
	put.Flags().BoolVar(&force, "force", false, "store the value without validating it")
	waitFlag(put, &wait)

	get := &cobra.Command{
		Use:     "get KEY",
		Aliases: []string{"g"},
		Short:   "Get a value from etcd",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return c.kvGet(cmd, args[0]) },
	}
	var keysOnly bool
	list := &cobra.Command{
		Use:     "list [PREFIX]",
		Aliases: []string{"l", "ls"},
		Short:   "List entries under a prefix (default: the agent's root)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return c.kvList(cmd, prefix, keysOnly)
		},
	}
	list.Flags().BoolVar(&keysOnly, "keys-only", false, "list only the keys")
	del := &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"d", "delete"},
		Short:   "Delete a key from etcd",
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return c.kvDel(cmd, args[0]) },
	}
	cmd.AddCommand(put, get, list, del)
	return cmd
}

func (c *cli) kvPut(cmd *cobra.Command, key, value string, force, wait bool) error {
	full := fullKey(c.label, key)
	if wait {
		if _, err := statusKeyOf(full); err != nil {
			return err
		}
	}
	if value == "-" {
		b, err := readInput(cmd, "-")
		if err != nil {
			return err
		}
		value = string(b)
	}
	data := []byte(strings.TrimSpace(value))
	if !force {
		canon, err := validate(full, data)
		if err != nil {
			return fmt.Errorf("refusing to put %s: %w (use --force to store it anyway)", full, err)
		}
		data = canon
	}
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	resp, err := cl.Put(ctx, full, string(data), clientv3.WithPrevKV())
	if err != nil {
		return c.etcdErr("put", full, err)
	}
	err = c.render(KV{Key: full, Value: rawOrString(data), ModRevision: resp.Header.Revision}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "OK %s (revision %d)\n", full, resp.Header.Revision)
		return err
	})
	if err != nil || !wait {
		return err
	}
	changed := resp.PrevKv == nil || !sameValue(full, resp.PrevKv.Value, data)
	return c.waitWritten(cmd.Context(), []Written{{Key: full, Revision: resp.Header.Revision, Changed: changed, Forced: force && unparsable(full, data)}})
}

func (c *cli) kvGet(cmd *cobra.Command, key string) error {
	full := fullKey(c.label, key)
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	resp, err := cl.Get(ctx, full)
	if err != nil {
		return c.etcdErr("get", full, err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("get %s: key not found", full)
	}
	kv := resp.Kvs[0]
	return c.render(KV{Key: full, Value: rawOrString(kv.Value), ModRevision: kv.ModRevision}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s\n", kv.Value)
		return err
	})
}

func (c *cli) kvList(cmd *cobra.Command, prefix string, keysOnly bool) error {
	full := c.agentRoot()
	if prefix != "" {
		full = fullKey(c.label, prefix)
	}
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	resp, err := cl.Get(ctx, full, opts...)
	if err != nil {
		return c.etcdErr("list", full, err)
	}
	items := make([]KV, 0, len(resp.Kvs))
	rows := make([][]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		item := KV{Key: string(kv.Key), ModRevision: kv.ModRevision}
		if !keysOnly {
			item.Value = rawOrString(kv.Value)
		}
		items = append(items, item)
		rows = append(rows, []string{string(kv.Key), strconv.FormatInt(kv.ModRevision, 10), compactJSON(kv.Value)})
	}
	return c.render(items, func(w io.Writer) error {
		if keysOnly {
			for _, it := range items {
				if _, err := fmt.Fprintln(w, it.Key); err != nil {
					return err
				}
			}
			return nil
		}
		return table(w, []string{"KEY", "REVISION", "VALUE"}, rows)
	})
}

func (c *cli) kvDel(cmd *cobra.Command, key string) error {
	full := fullKey(c.label, key)
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	resp, err := cl.Delete(ctx, full)
	if err != nil {
		return c.etcdErr("delete", full, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("delete %s: key not found", full)
	}
	return c.render(KV{Key: full, ModRevision: resp.Header.Revision}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "deleted %s\n", full)
		return err
	})
}

func (c *cli) agentRoot() string { return allAgentsPrefix + c.label + "/" }
