package agentctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"

	"github.com/vppmesh/vppmesh/models"
)

// WatchEvent is one change of a value's state, as watch prints it.
type WatchEvent struct {
	Time    time.Time `json:"time"`
	Key     string    `json:"key"`
	Parent  string    `json:"parent,omitempty"` // for a derived value
	From    string    `json:"from"`             // previous state ("" when new)
	State   string    `json:"state"`            // "GONE" when no longer reported
	Error   string    `json:"error,omitempty"`
	Missing []string  `json:"missing,omitempty"`
}

// watchRow is one value's last reported state.
type watchRow struct {
	Parent  string
	State   string
	Error   string
	Missing []string
	Changed time.Time
}

func (r watchRow) same(o watchRow) bool {
	return r.Parent == o.Parent && r.State == o.State && r.Error == o.Error && slices.Equal(r.Missing, o.Missing)
}

// watchDoc is the part of a status document watch reads.
type watchDoc struct {
	Key        string   `json:"key"`
	State      string   `json:"state"`
	Error      string   `json:"error"`
	ValueError string   `json:"value_error"`
	Missing    []string `json:"missing"`
	Derived    []struct {
		Key   string `json:"key"`
		State string `json:"state"`
		Error string `json:"error"`
	} `json:"derived"`
}

func newWatchCommand(c *cli) *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "watch [MODEL | PREFIX]",
		Short: "Live view of value states (etcd status keys): one line per change, or a refreshing table on a terminal, until Ctrl-C",
		Long: `Watch the states the agent reports for its values and their derived values
(one etcd read, then one etcd watch). On a terminal (table output) the screen
shows the counts by state, the values that are not CONFIGURED and the last
changes, redrawn as they come; otherwise each change is one line (-o json: one
JSON object per line). PREFIX is a config key prefix (vpp/v2/interfaces/,
config/vpp/l2/...) or a derived value's key prefix; MODEL a model name.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: c.completePrefixes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return fmt.Errorf("--count %d: want 0 or more", count)
			}
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			prefix, err := selectPrefix(arg)
			if err != nil {
				return err
			}
			return c.watch(cmd.Context(), prefix, count)
		},
	}
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many changes (0: until interrupted)")
	return cmd
}

// selectPrefix maps a model name or key prefix to an agent-relative key
// prefix ("" for everything).
func selectPrefix(arg string) (string, error) {
	if arg == "" || arg == "all" {
		return "", nil
	}
	p, isModel, err := resolveModel(arg)
	if err != nil {
		return "", err
	}
	if isModel {
		return p, nil
	}
	if strings.HasPrefix(arg, "/") {
		rel, ok := relKey(arg)
		if !ok {
			return "", fmt.Errorf("%s: not under %s<label>/", arg, allAgentsPrefix)
		}
		arg = rel
	}
	if !strings.HasPrefix(arg, models.ConfigDir) {
		if _, err := models.ModelForKey(models.ConfigDir + arg + "x"); err == nil {
			return models.ConfigDir + arg, nil
		}
	}
	return arg, nil
}

// rowsOf turns one status document into its rows: the config key's and
// its derived values'.
func rowsOf(statusRel string, data []byte) map[string]watchRow {
	var d watchDoc
	if json.Unmarshal(data, &d) != nil {
		return nil
	}
	key := d.Key
	if key == "" {
		key = models.ConfigDir + strings.TrimPrefix(statusRel, models.StatusDir)
	}
	out := map[string]watchRow{}
	r := watchRow{State: d.State, Error: d.Error, Missing: d.Missing}
	if d.ValueError != "" {
		r.Error = "etcd holds an invalid value (the last valid one stays): " + d.ValueError
	}
	out[key] = r
	for _, dv := range d.Derived {
		out[dv.Key] = watchRow{Parent: key, State: dv.State, Error: dv.Error}
	}
	return out
}

// watcher keeps the view and prints it.
type watcher struct {
	c       *cli
	prefix  string
	rows    map[string]watchRow
	docs    map[string][]string // status key -> the keys its document reported
	recent  []WatchEvent        // last changes, newest last (terminal view)
	screen  bool
	height  int
	dirty   bool
	written int // changes written
}

func (w *watcher) match(key, parent string) bool {
	return w.prefix == "" || strings.HasPrefix(key, w.prefix) || (parent != "" && strings.HasPrefix(parent, w.prefix))
}

// applyDoc updates the view from one status document (nil: deleted) and
// returns the changes.
func (w *watcher) applyDoc(statusKey, statusRel string, data []byte, now time.Time) []WatchEvent {
	var fresh map[string]watchRow
	if data != nil {
		fresh = rowsOf(statusRel, data)
	}
	var evs []WatchEvent
	for _, k := range w.docs[statusKey] {
		if _, ok := fresh[k]; !ok {
			old := w.rows[k]
			delete(w.rows, k)
			evs = append(evs, WatchEvent{Time: now, Key: k, Parent: old.Parent, From: old.State, State: "GONE"})
		}
	}
	keys := make([]string, 0, len(fresh))
	for k, r := range fresh {
		if !w.match(k, r.Parent) {
			continue
		}
		keys = append(keys, k)
		old, had := w.rows[k]
		if had && old.same(r) {
			continue // a counters refresh, not a change of state
		}
		r.Changed = now
		w.rows[k] = r
		ev := WatchEvent{Time: now, Key: k, Parent: r.Parent, State: r.State, Error: r.Error, Missing: r.Missing}
		if had {
			ev.From = old.State
		}
		evs = append(evs, ev)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		delete(w.docs, statusKey)
	} else {
		w.docs[statusKey] = keys
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Key < evs[j].Key })
	return evs
}

func (c *cli) watch(ctx context.Context, prefix string, count int) error {
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	// Every status document: a derived value (the interfaces of a vppmesh
	// cross-connect) is reported in its parent's document, whatever the
	// prefix, so the selection is made here.
	watchPrefix := c.agentRoot() + models.StatusDir
	w := &watcher{c: c, prefix: prefix, rows: map[string]watchRow{}, docs: map[string][]string{},
		screen: c.output == "table" && isTerminal(c.out), height: termHeight(c.out)}
	gctx, cancel := c.reqCtx(ctx)
	resp, err := cl.Get(gctx, watchPrefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return c.etcdErr("list", watchPrefix, err)
	}
	now := time.Now()
	for _, kv := range resp.Kvs {
		w.applyDoc(string(kv.Key), strings.TrimPrefix(string(kv.Key), c.agentRoot()), kv.Value, now)
	}
	if !w.screen {
		fmt.Fprintf(c.errOut, "watching %s: %s (revision %d)\n", orDash(prefix), w.counts(), resp.Header.Revision)
	}
	wch := cl.Watch(clientv3.WithRequireLeader(ctx), watchPrefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	if w.screen {
		w.draw(time.Now())
	}
	for {
		select {
		case wr, ok := <-wch:
			if !ok {
				if w.screen {
					w.draw(time.Now())
				}
				if ctx.Err() != nil {
					return nil // interrupted: the normal end of a watch
				}
				return fmt.Errorf("watch %s ended: etcd closed the stream", watchPrefix)
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("watch %s: %w", watchPrefix, err)
			}
			for _, ev := range wr.Events {
				var data []byte
				if ev.Type != clientv3.EventTypeDelete {
					data = ev.Kv.Value
				}
				key := string(ev.Kv.Key)
				for _, e := range w.applyDoc(key, strings.TrimPrefix(key, c.agentRoot()), data, time.Now()) {
					if err := w.emit(e); err != nil {
						return err
					}
					if count > 0 && w.written >= count {
						if w.screen {
							w.draw(time.Now())
						}
						return nil
					}
				}
			}
		case <-tick.C:
			if w.screen && w.dirty {
				w.draw(time.Now())
			}
		}
	}
}

// emit prints one change as a line, or queues it for the next screen.
func (w *watcher) emit(e WatchEvent) error {
	w.written++
	if w.screen {
		w.recent = append(w.recent, e)
		if len(w.recent) > 100 {
			w.recent = w.recent[len(w.recent)-100:]
		}
		w.dirty = true
		return nil
	}
	switch w.c.output {
	case "json":
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w.c.out, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w.c.out, "---\n%s", b)
		return err
	}
	_, err := fmt.Fprintln(w.c.out, eventLine(e))
	return err
}

func eventLine(e WatchEvent) string {
	from := e.From
	if from == "" {
		from = "NEW"
	}
	s := fmt.Sprintf("%s  %-11s -> %-11s %s", e.Time.Local().Format("15:04:05.000"), from, e.State, e.Key)
	if e.Parent != "" {
		s += " (derived from " + e.Parent + ")"
	}
	if len(e.Missing) > 0 {
		s += "  waits on " + strings.Join(e.Missing, ", ")
	}
	if e.Error != "" {
		s += "  " + e.Error
	}
	return s
}

func (w *watcher) counts() string {
	n := map[string]int{}
	for _, r := range w.rows {
		n[r.State]++
	}
	parts := []string{fmt.Sprintf("%d values", len(w.rows))}
	for _, s := range sortedKeys(n) {
		parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
	}
	return strings.Join(parts, ", ")
}

// draw repaints the terminal: counts, the values not CONFIGURED (most
// recently changed first) and the last changes, cut to the screen.
func (w *watcher) draw(now time.Time) {
	w.dirty = false
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	fmt.Fprintf(&b, "agentctl watch %s   %s   (Ctrl-C to quit)\r\n", orDash(w.prefix), now.Local().Format("15:04:05"))
	fmt.Fprintf(&b, "%s\r\n\r\n", w.counts())
	var trouble []string
	for k, r := range w.rows {
		if r.State != "CONFIGURED" && r.State != "OBTAINED" {
			trouble = append(trouble, k)
		}
	}
	sort.Slice(trouble, func(i, j int) bool {
		ri, rj := w.rows[trouble[i]], w.rows[trouble[j]]
		if !ri.Changed.Equal(rj.Changed) {
			return ri.Changed.After(rj.Changed)
		}
		return trouble[i] < trouble[j]
	})
	room := w.height - 6
	nRecent := min(len(w.recent), max(room/3, 3))
	nTrouble := min(len(trouble), max(room-nRecent-2, 1))
	if len(trouble) == 0 {
		b.WriteString("every value is CONFIGURED\r\n")
	} else {
		fmt.Fprintf(&b, "%-11s %s\r\n", "STATE", "KEY (not CONFIGURED)")
		for _, k := range trouble[:nTrouble] {
			r := w.rows[k]
			line := fmt.Sprintf("%-11s %s", r.State, k)
			if len(r.Missing) > 0 {
				line += "  waits on " + strings.Join(r.Missing, ", ")
			}
			if r.Error != "" {
				line += "  " + r.Error
			}
			b.WriteString(clipLine(line) + "\r\n")
		}
		if len(trouble) > nTrouble {
			fmt.Fprintf(&b, "... %d more\r\n", len(trouble)-nTrouble)
		}
	}
	if nRecent > 0 {
		b.WriteString("\r\nlast changes:\r\n")
		for _, e := range w.recent[len(w.recent)-nRecent:] {
			b.WriteString(clipLine(eventLine(e)) + "\r\n")
		}
	}
	io.WriteString(w.c.out, b.String())
}

func clipLine(s string) string {
	if r := []rune(s); len(r) > 200 {
		return string(r[:199]) + "…"
	}
	return s
}
