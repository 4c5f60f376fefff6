package differential

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/adapter/statsclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/core"
)

// Target is one VPP (real or vppsim) the scenario runs against.
type Target struct {
	Name        string
	APISocket   string
	StatsSocket string
	// Dir is the target's private directory for memif and vhost-user socket files; it
	// is printed as $DIR so two targets' transcripts compare.
	Dir string
	// HostIf is an existing Linux interface (a veth) for af_packet; "" leaves the
	// af_packet steps to the bad-argument cases.
	HostIf string
	// RuntimeDir is the target's runtime directory (VPP's unix runtime-dir, vppsim's
	// /run/vpp): memif socket 0 and relative socket names live there.
	RuntimeDir string
}

// Line is one transcript line: Norm is compared, Raw has the allowlisted values
// spelled out.
type Line struct{ Norm, Raw string }

// Step is the record of one scenario step: requests, replies, changed tables, events.
type Step struct {
	Name  string
	Lines []Line
}

// Transcript is everything one target answered to the scenario.
type Transcript struct {
	Target string
	Steps  []Step
}

// Text renders the normalized transcript (raw=false) or the raw one.
func (t *Transcript) Text(raw bool) string {
	var b strings.Builder
	for _, s := range t.Steps {
		fmt.Fprintf(&b, "## %s\n", s.Name)
		for _, l := range s.Lines {
			if raw {
				b.WriteString(l.Raw)
			} else {
				b.WriteString(l.Norm)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// eventQuiet is how long the runner waits without a new event before it considers a
// step's events complete. VPP sends sw_interface_event from a process node right
// after the API handler; a few milliseconds suffice, the margin is for a busy machine.
const eventQuiet = 40 * time.Millisecond

type runner struct {
	ctx    context.Context
	tg     Target
	conn   *core.Connection
	ch     api.Channel
	events chan api.Message
	stats  *statsclient.StatsClient
	labels *labels
	norm   formatter
	raw    formatter
	tr     *Transcript
	cur    *Step
	prev   map[string][]Line
	err    error
}

func newRunner(ctx context.Context, tg Target) (*runner, error) {
	conn, err := core.Connect(socketclient.NewVppClient(tg.APISocket))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", tg.APISocket, err)
	}
	ch, err := conn.NewAPIChannel()
	if err != nil {
		conn.Disconnect()
		return nil, fmt.Errorf("api channel: %w", err)
	}
	ch.SetReplyTimeout(5 * time.Second)
	r := &runner{ctx: ctx, tg: tg, conn: conn, ch: ch, events: make(chan api.Message, 1024),
		labels: newLabels(), tr: &Transcript{Target: tg.Name}, prev: map[string][]Line{}}
	if _, err := ch.SubscribeNotification(r.events, &interfaces.SwInterfaceEvent{}); err != nil {
		r.close()
		return nil, fmt.Errorf("subscribe events: %w", err)
	}
	macs := map[ethernet_types.MacAddress]bool{}
	for _, m := range explicitMACs {
		macs[m] = true
	}
	r.norm = formatter{labels: r.labels, dir: tg.Dir, runtimeDir: tg.RuntimeDir, explicitMACs: macs}
	r.raw = r.norm
	r.raw.raw = true
	if tg.StatsSocket != "" {
		r.stats = statsclient.NewStatsClient(tg.StatsSocket)
		if err := r.stats.Connect(); err != nil {
			r.close()
			return nil, fmt.Errorf("stats %s: %w", tg.StatsSocket, err)
		}
	}
	return r, nil
}

func (r *runner) close() {
	if r.stats != nil {
		r.stats.Disconnect()
	}
	r.ch.Close()
	r.conn.Disconnect()
}

func (r *runner) line(norm, raw string) {
	r.cur.Lines = append(r.cur.Lines, Line{Norm: maskText(norm), Raw: raw})
}

func (r *runner) text(s string) { r.line(s, s) }

// step runs fn, then records the tables that changed and the events that came.
func (r *runner) step(name string, fn func()) {
	r.tr.Steps = append(r.tr.Steps, Step{Name: name})
	r.cur = &r.tr.Steps[len(r.tr.Steps)-1]
	fn()
	r.snapshot()
	r.drainEvents()
	if a, ok := allowedStep(name); ok {
		var raw []string
		for _, l := range r.cur.Lines {
			raw = append(raw, l.Raw)
		}
		r.cur.Lines = []Line{{Norm: "<allowed " + a.Row + ">", Raw: strings.Join(raw, "\n")}}
	}
}

// call sends one request and records it with its reply; it returns the retval.
func (r *runner) call(req, rep api.Message) int32 {
	if r.err != nil {
		return -1 << 30 // the target is gone (crashed?): nothing more to learn
	}
	r.line("> "+r.norm.msg(req), "> "+r.raw.msg(req))
	err := r.ch.SendRequest(req).ReceiveReply(rep)
	var rv int32
	var vppErr api.VPPApiError
	switch {
	case err == nil:
	case errors.As(err, &vppErr):
		rv = int32(vppErr)
	default:
		r.text("< transport error: " + err.Error())
		if r.err == nil {
			r.err = fmt.Errorf("%s: %w", req.GetMessageName(), err)
		}
		return -1 << 30
	}
	if rv == 0 && strings.Contains(req.GetMessageName(), "create") {
		if f := reflect.ValueOf(rep).Elem().FieldByName("SwIfIndex"); f.IsValid() {
			r.labels.created(uint32(f.Uint()))
		}
	}
	r.line("< "+r.norm.msg(rep), "< "+r.raw.msg(rep))
	return rv
}

// dump runs a dump and returns its details.
func (r *runner) dump(req api.Message, details api.Message) []api.Message {
	if r.err != nil {
		return nil
	}
	ctx := r.ch.SendMultiRequest(req)
	var out []api.Message
	typ := reflect.TypeOf(details).Elem()
	for {
		m := reflect.New(typ).Interface().(api.Message)
		last, err := ctx.ReceiveReply(m)
		if err != nil {
			if r.err == nil {
				r.err = fmt.Errorf("%s: %w", req.GetMessageName(), err)
			}
			r.text("! dump error " + req.GetMessageName() + ": " + err.Error())
			return out
		}
		if last {
			return out
		}
		out = append(out, m)
	}
}

// table records a table if it differs from the last time it was recorded.
func (r *runner) table(name string, msgs []api.Message) {
	lines := make([]Line, 0, len(msgs))
	for _, m := range msgs {
		lines = append(lines, Line{Norm: maskText("  " + r.norm.msg(m)), Raw: "  " + r.raw.msg(m)})
	}
	r.tableLines(name, lines)
}

// tableSorted is table for a dump whose order is not behaviour.
func (r *runner) tableSorted(name string, msgs []api.Message) {
	lines := make([]Line, 0, len(msgs))
	for _, m := range msgs {
		lines = append(lines, Line{Norm: "  " + r.norm.msg(m), Raw: "  " + r.raw.msg(m)})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].Norm < lines[j].Norm })
	r.tableLines(name, lines)
}

func (r *runner) tableLines(name string, lines []Line) {
	if prev, ok := r.prev[name]; ok && slices.Equal(prev, lines) {
		return
	}
	r.prev[name] = lines
	r.text(fmt.Sprintf("= %s (%d)", name, len(lines)))
	r.cur.Lines = append(r.cur.Lines, lines...)
}

func (r *runner) drainEvents() {
	if r.err != nil {
		return
	}
	timer := time.NewTimer(eventQuiet)
	defer timer.Stop()
	for {
		select {
		case m := <-r.events:
			r.line("! "+r.norm.msg(m), "! "+r.raw.msg(m))
			timer.Reset(eventQuiet)
		case <-timer.C:
			return
		case <-r.ctx.Done():
			return
		}
	}
}

// waitStatsNames waits (up to 3 s) until the stats segment's interface
// names agree with the interface table: every named index is in the
// table or named "deleted". FD.io VPP updates the names after the table
// (a deleted af_packet interface kept its host name for a moment in about
// one run of five), and the snapshot must not race that.
func (r *runner) waitStatsNames() {
	deadline := time.Now().Add(3 * time.Second)
	for {
		present := map[uint32]bool{}
		ctx := r.ch.SendMultiRequest(&interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
		for {
			d := &interfaces.SwInterfaceDetails{}
			last, err := ctx.ReceiveReply(d)
			if err != nil || last {
				break
			}
			present[uint32(d.SwIfIndex)] = true
		}
		agree := true
		if es, err := r.stats.DumpStats("^/if/names$"); err == nil && len(es) == 1 {
			if names, ok := es[0].Data.(adapter.NameStat); ok {
				for i, n := range names {
					name := strings.TrimRight(string(n), "\x00")
					agree = agree && (name == "" || name == "deleted" || present[uint32(i)])
				}
			}
		}
		if agree || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statsSnapshot records the stats segment's interface and system entries: names,
// types, shapes, and which interfaces have non-zero counters.
func (r *runner) statsSnapshot(name string) {
	r.step(name, func() {
		if r.stats == nil {
			r.text("no stats segment")
			return
		}
		if r.err != nil {
			return
		}
		r.waitStatsNames()
		// the directory beyond /if/ and /sys/, by first path component
		all, err := r.stats.ListStats()
		if err != nil {
			r.text("stats error: " + err.Error())
			if r.err == nil {
				r.err = err
			}
			return
		}
		seen := map[string]bool{}
		var others []string
		for _, id := range all {
			n := strings.TrimRight(string(id.Name), "\x00")
			first := n
			if i := strings.IndexByte(strings.TrimPrefix(n, "/"), '/'); i >= 0 {
				first = n[:i+1]
			}
			if first == "/if" || first == "/sys" || seen[first] {
				continue
			}
			seen[first] = true
			others = append(others, first)
		}
		sort.Strings(others)
		r.text(fmt.Sprintf("stats directory beyond /if and /sys: %v", others))
		entries, err := r.stats.DumpStats("^/if/", "^/sys/")
		if err != nil {
			r.text("stats error: " + err.Error())
			if r.err == nil {
				r.err = err
			}
			return
		}
		sort.Slice(entries, func(i, j int) bool { return string(entries[i].Name) < string(entries[j].Name) })
		// allowlisted entries become one masked line per allowance, so an entry one
		// target lacks does not shift the others
		masked := map[string][]string{}
		var rows []string
		for _, e := range entries {
			n := string(e.Name)
			if a, ok := allowedStat(n); ok {
				if masked[a.Row] == nil {
					rows = append(rows, a.Row)
				}
				masked[a.Row] = append(masked[a.Row], r.statLine(n, e))
				continue
			}
			r.text(r.statLine(n, e))
		}
		for _, row := range rows {
			r.line("<allowed "+row+">", strings.Join(masked[row], "; "))
		}
	})
}

func (r *runner) statLine(name string, e adapter.StatEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", name, e.Type)
	switch d := e.Data.(type) {
	case adapter.SimpleCounterStat:
		fmt.Fprintf(&b, " threads=%d", len(d))
		if len(d) > 0 {
			fmt.Fprintf(&b, " len=%d", len(d[0]))
		}
		var nz []string
		for _, th := range d {
			for i, v := range th {
				if v != 0 {
					nz = append(nz, r.labels.name(uint32(i)))
				}
			}
		}
		fmt.Fprintf(&b, " nonzero=%v", nz)
		fmt.Fprintf(&b, " sum=%d", sumSimple(d))
	case adapter.CombinedCounterStat:
		fmt.Fprintf(&b, " threads=%d", len(d))
		if len(d) > 0 {
			fmt.Fprintf(&b, " len=%d", len(d[0]))
		}
		var nz []string
		for _, th := range d {
			for i, v := range th {
				if v[0] != 0 || v[1] != 0 {
					nz = append(nz, r.labels.name(uint32(i)))
				}
			}
		}
		fmt.Fprintf(&b, " nonzero=%v", nz)
		p, by := sumCombined(d)
		fmt.Fprintf(&b, " packets=%d bytes=%d", p, by)
	case adapter.NameStat:
		var names []string
		for i, n := range d {
			if len(n) > 0 {
				names = append(names, r.labels.name(uint32(i))+"="+strings.TrimRight(string(n), "\x00"))
			}
		}
		fmt.Fprintf(&b, " %v", names)
	case adapter.ScalarStat:
		// values are times and rates
	}
	return b.String()
}

func sumSimple(d adapter.SimpleCounterStat) (n uint64) {
	for _, th := range d {
		for _, v := range th {
			n += uint64(v)
		}
	}
	return n
}

func sumCombined(d adapter.CombinedCounterStat) (p, b uint64) {
	for _, th := range d {
		for _, v := range th {
			p += v[0]
			b += v[1]
		}
	}
	return p, b
}
