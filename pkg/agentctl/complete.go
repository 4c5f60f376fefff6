package agentctl

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// Shell completion (agentctl completion bash|zsh|fish, cobra's): model
// names from the registry, keys from the agent (REST for value keys, etcd
// for kvdb keys). A completion never fails loudly: an agent that does not
// answer within completeTimeout just completes nothing.

const (
	completeTimeout = 3 * time.Second
	// completeMax is how many keys are offered whole; beyond it the keys
	// are cut after the next '/' so that the shell offers directories.
	completeMax = 100
)

// addCompletions sets the argument completion of the verbs that take
// models or keys.
func (c *cli) addCompletions(root *cobra.Command) {
	var visit func(cmd *cobra.Command)
	visit = func(cmd *cobra.Command) {
		switch strings.TrimPrefix(cmd.CommandPath(), "agentctl ") {
		case "values", "dump":
			cmd.ValidArgsFunction = c.completePrefixes
		case "model inspect":
			cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return modelNames(toComplete, false), cobra.ShellCompDirectiveNoFileComp
			}
		case "kvdb get", "kvdb del", "kvdb list", "kvdb put":
			cmd.ValidArgsFunction = c.completeEtcdKeys
		}
		for _, sub := range cmd.Commands() {
			visit(sub)
		}
	}
	visit(root)
}

// modelNames lists the model names starting with prefix.
func modelNames(prefix string, withAll bool) []string {
	var out []string
	for _, m := range models.Models() {
		if strings.HasPrefix(m.Name, prefix) {
			out = append(out, m.Name)
		}
	}
	if withAll && strings.HasPrefix("all", prefix) {
		out = append(out, "all")
	}
	sort.Strings(out)
	return out
}

// completePrefixes offers model names and the keys of the values the agent
// knows.
func (c *cli) completePrefixes(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	out := modelNames(toComplete, true)
	ctx, cancel := context.WithTimeout(cmdContext(cmd), completeTimeout)
	defer cancel()
	var vals []restapi.ValueJSON
	q := url.Values{"prefix": {toComplete}}
	if c.restCall(ctx, "GET", restapi.PathValues, q, &vals) != nil {
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	keys := make([]string, 0, len(vals))
	for _, v := range vals {
		keys = append(keys, v.Key)
	}
	keys, dir := cutKeys(keys, toComplete)
	d := cobra.ShellCompDirectiveNoFileComp
	if dir {
		d |= cobra.ShellCompDirectiveNoSpace
	}
	return append(out, keys...), d
}

// completeEtcdKeys offers the agent's keys in etcd, as the user writes them:
// relative to the agent's root, or full when toComplete starts with '/'.
func (c *cli) completeEtcdKeys(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if c.etcdConfig == "" {
		c.etcdConfig = c.etcdConfEnv // PersistentPreRunE does not run for completions
	}
	cl, err := c.etcdClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(cmdContext(cmd), completeTimeout)
	defer cancel()
	root := c.agentRoot()
	type try struct{ etcdPrefix, cut string }
	tries := []try{{root + toComplete, root}}
	if strings.HasPrefix(toComplete, "/") {
		tries = []try{{toComplete, ""}}
	} else if !strings.HasPrefix(toComplete, models.ConfigDir) && !strings.HasPrefix(toComplete, models.StatusDir) {
		// A model path without "config/" (vpp/v2/interfaces/x) is a key too.
		tries = append(tries, try{root + models.ConfigDir + toComplete, root + models.ConfigDir})
	}
	var keys []string
	for _, t := range tries {
		resp, err := cl.Get(ctx, t.etcdPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(10000))
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		for _, kv := range resp.Kvs {
			keys = append(keys, strings.TrimPrefix(string(kv.Key), t.cut))
		}
	}
	keys, dir := cutKeys(keys, toComplete)
	d := cobra.ShellCompDirectiveNoFileComp
	if dir {
		d |= cobra.ShellCompDirectiveNoSpace
	}
	return keys, d
}

// cutKeys keeps the keys starting with prefix; when there are too many it
// cuts each after the next '/' (and says so), so the shell offers one level.
func cutKeys(keys []string, prefix string) ([]string, bool) {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	if len(out) <= completeMax {
		return out, false
	}
	seen := map[string]bool{}
	var cut []string
	for _, k := range out {
		if i := strings.IndexByte(k[len(prefix):], '/'); i >= 0 {
			k = k[:len(prefix)+i+1]
		}
		if !seen[k] {
			seen[k] = true
			cut = append(cut, k)
		}
	}
	return cut, true
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
