package restapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Ligato vpp-agent's REST paths, answered with Ligato's response shapes so
// that its users' probes, scripts and dashboards keep working. vppmesh's
// own richer views stay on their own paths (PathValues, PathVPPDump,
// PathVPPCLI).
const (
	PathLiveness  = "/liveness"
	PathReadiness = "/readiness"
	PathInfoVer   = "/info/version"
	PathLogList   = "/log/list"
	PathLogSet    = "/log/{logger}/{level}"
	// PathLogRecent is vppmesh's: the agent's last log lines (?n=, default 200).
	PathLogRecent  = "/log/recent"
	PathDumpPrefix = "/dump/vpp/v2/"
	// PathValues is vppmesh's value-status view (state names, missing
	// dependencies, last change), which /scheduler/status answered before
	// it took Ligato's shape.
	PathValues = "/values"
	// PathVPPCLI is vppmesh's CLI passthrough answering {vppclicommand,
	// output}; /vpp/command answers as Ligato's does (a JSON string).
	PathVPPCLI = "/vpp/cli"
)

// Ligato's operational states (cn-infra statuscheck OperationalState).
const (
	ligatoStateInit  = 0
	ligatoStateOK    = 1
	ligatoStateError = 2
)

// Ligato's kvscheduler ValueState numbers, as its REST answers carry them
// (encoding/json of the generated proto enum).
var ligatoValueState = map[kvscheduler.State]int{
	kvscheduler.StateNonexistent: 0,
	kvscheduler.StateRemoved:     3,
	kvscheduler.StateConfigured:  4,
	kvscheduler.StateObtained:    5,
	kvscheduler.StatePending:     7,
	kvscheduler.StateInvalid:     8,
	kvscheduler.StateFailed:      9,
}

// LigatoProbeStatus is the body of /liveness and /readiness: cn-infra's
// AgentStatus.
type LigatoProbeStatus struct {
	BuildVersion string                        `json:"build_version,omitempty"`
	CommitHash   string                        `json:"commit_hash,omitempty"`
	State        int                           `json:"state,omitempty"`
	StartTime    int64                         `json:"start_time,omitempty"`
	LastChange   int64                         `json:"last_change,omitempty"`
	LastUpdate   int64                         `json:"last_update,omitempty"`
	PluginStatus map[string]LigatoPluginStatus `json:"plugin_status,omitempty"`
}

// LigatoPluginStatus is one plugin's entry in LigatoProbeStatus.
type LigatoPluginStatus struct {
	State      int    `json:"state,omitempty"`
	LastChange int64  `json:"last_change,omitempty"`
	LastUpdate int64  `json:"last_update,omitempty"`
	Error      string `json:"error,omitempty"`
}

// LigatoVersion is the body of /info/version.
type LigatoVersion struct {
	App       string
	Version   string
	GitCommit string
	GitBranch string
	BuildUser string
	BuildHost string
	BuildTime int64
	GoVersion string
	OS        string
	Arch      string
}

// LigatoValueStatus is kvscheduler's ValueStatus as Ligato renders it.
type LigatoValueStatus struct {
	Key           string   `json:"key,omitempty"`
	State         int      `json:"state,omitempty"`
	Error         string   `json:"error,omitempty"`
	LastOperation int      `json:"last_operation,omitempty"`
	Details       []string `json:"details,omitempty"`
}

// LigatoBaseValueStatus is one element of /scheduler/status.
type LigatoBaseValueStatus struct {
	Value         LigatoValueStatus   `json:"value"`
	DerivedValues []LigatoValueStatus `json:"derived_values,omitempty"`
}

// LigatoProtoWithName is how Ligato's dump renders a value: the message's
// full name and its protobuf JSON.
type LigatoProtoWithName struct {
	ProtoMsgName string
	ProtoMsgData json.RawMessage
}

// LigatoKVWithMetadata is one element of /scheduler/dump.
type LigatoKVWithMetadata struct {
	Key      string
	Value    *LigatoProtoWithName
	Metadata json.RawMessage
	Origin   int // 1 from NB, 2 from SB
}

// ProtoMsgDataOrNull is the value's JSON, or null without a value.
func (kv LigatoKVWithMetadata) ProtoMsgDataOrNull() json.RawMessage {
	if kv.Value == nil || len(kv.Value.ProtoMsgData) == 0 {
		return json.RawMessage("null")
	}
	return kv.Value.ProtoMsgData
}

// LigatoDumpIndex is /scheduler/dump without descriptor and key-prefix.
type LigatoDumpIndex struct {
	Descriptors []string
	KeyPrefixes []string
	Views       []string
}

// LigatoLogger is one logger of /log/list and the answer of a level change.
type LigatoLogger struct {
	Logger string `json:"logger,omitempty"`
	Level  string `json:"level,omitempty"`
}

// Ligato's views of /scheduler/dump.
const (
	viewSB     = "SB"
	viewNB     = "NB"
	viewCached = "cached"
)

// ligatoErr is Ligato's kvscheduler error body.
type ligatoErr struct {
	Error string
}

// probeClock remembers when the agent's readiness last changed, for the
// probes' last_change.
type probeClock struct {
	mu         sync.Mutex
	start      time.Time
	wasReady   bool
	everReady  bool
	lastChange time.Time
}

func (s *Server) ligatoRoutes(mux *http.ServeMux, handle func(path, method string, h http.HandlerFunc)) {
	s.probe.start = time.Now()
	s.probe.lastChange = s.probe.start
	handle(PathLiveness, http.MethodGet, s.liveness)
	handle(PathReadiness, http.MethodGet, s.readiness)
	handle(PathInfoVer, http.MethodGet, s.infoVersion)
	handle(PathSchedulerStatus, http.MethodGet, s.ligatoStatus)
	handle(PathLigatoDump, http.MethodGet, s.ligatoDump)
	handle(PathVPPCommand, http.MethodPost, s.ligatoVPPCommand)
	handle(PathLogList, http.MethodGet, s.logList)
	handle(PathLogRecent, http.MethodGet, s.logRecent)
	mux.HandleFunc(PathLogSet, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodPost {
			w.Header().Set("Allow", "PUT, POST")
			s.writeError(w, r, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed, use PUT or POST", r.Method, r.URL.Path))
			return
		}
		s.logSet(w, r)
	})
	for _, path := range ligatoUnsupportedDumps {
		handle(path, http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, http.StatusNotFound, fmt.Errorf("Ligato's %s is not supported by vppmesh: it has no such model (see docs/migrating-from-ligato.md)", r.URL.Path))
		})
	}
	for path, why := range ligatoUnsupportedPaths {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, http.StatusNotFound, fmt.Errorf("Ligato's %s is not supported by vppmesh: %s", r.URL.Path, why))
		})
	}
	for path, d := range ligatoDumps {
		handle(PathDumpPrefix+path, http.MethodGet, s.ligatoDumpHandler(d))
	}
	for alias, path := range ligatoDumpAliases {
		handle(PathDumpPrefix+alias, http.MethodGet, s.ligatoDumpHandler(ligatoDumps[path]))
	}
	for _, t := range []struct{ path, typ string }{
		{"loopback", "SOFTWARE_LOOPBACK"}, {"ethernet", "DPDK"}, {"memif", "MEMIF"},
		{"tap", "TAP"}, {"afpacket", "AF_PACKET"}, {"vxlan", "VXLAN_TUNNEL"}, {"vhostuser", "VHOST_USER"},
	} {
		handle(PathDumpPrefix+"interfaces/"+t.path, http.MethodGet, s.ligatoDumpHandler(ligatoDump{
			prefix: models.ConfigDir + "vpp/v2/interfaces/", wrap: "interface", meta: "interface_meta", byIndex: true, ifType: t.typ,
		}))
	}
}

// probeState is Ligato's operational state: OK when ready, INIT until the
// first time, ERROR when it was ready and is not now (VPP or etcd lost).
func (s *Server) probeState() (state int, st LigatoProbeStatus) {
	ready := s.ready()
	now := time.Now()
	p := &s.probe
	p.mu.Lock()
	if ready != p.wasReady {
		p.wasReady, p.lastChange = ready, now
	}
	if ready {
		p.everReady = true
	}
	switch {
	case ready:
		state = ligatoStateOK
	case p.everReady:
		state = ligatoStateError
	default:
		state = ligatoStateInit
	}
	st = LigatoProbeStatus{
		BuildVersion: s.opts.Version, CommitHash: vcsRevision(), State: state,
		StartTime: p.start.Unix(), LastChange: p.lastChange.Unix(), LastUpdate: now.Unix(),
		PluginStatus: map[string]LigatoPluginStatus{},
	}
	p.mu.Unlock()
	if s.opts.VPPConnected != nil {
		ps := LigatoPluginStatus{State: ligatoStateOK, LastUpdate: now.Unix()}
		if !s.opts.VPPConnected() {
			ps.State, ps.Error = ligatoStateError, "not connected to VPP"
		}
		st.PluginStatus["govppmux"] = ps
	}
	return state, st
}

// liveness answers 200 while the agent serves: it reconnects to VPP and
// etcd by itself, so a restart would not help (Ligato answers 500 in its
// ERROR state; see docs/migrating-from-ligato.md).
func (s *Server) liveness(w http.ResponseWriter, r *http.Request) {
	_, st := s.probeState()
	s.writeJSON(w, r, http.StatusOK, st)
}

// readiness answers 200 when the agent is ready, else 500 as Ligato does.
func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	state, st := s.probeState()
	code := http.StatusOK
	if state != ligatoStateOK {
		code = http.StatusInternalServerError
	}
	s.writeJSON(w, r, code, st)
}

func vcsRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				return kv.Value
			}
		}
	}
	return ""
}

func (s *Server) infoVersion(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, LigatoVersion{
		App: "vppmesh-agent", Version: s.opts.Version, GitCommit: vcsRevision(),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
	})
}

func ligatoStatusOf(st kvscheduler.ValueStatus) LigatoValueStatus {
	return LigatoValueStatus{Key: st.Key, State: ligatoValueState[st.State], Error: st.Error, Details: st.Missing}
}

// onlyOne reads a query argument given at most once, as Ligato insists.
func onlyOne(q map[string][]string, name string) (string, error) {
	v := q[name]
	if len(v) > 1 {
		return "", fmt.Errorf("%s argument listed more than once", name)
	}
	if len(v) == 1 {
		return v[0], nil
	}
	return "", nil
}

// ligatoStatus is Ligato's /scheduler/status: base values with their
// derived values, of one key, one descriptor, one key prefix or all.
func (s *Server) ligatoStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var args [3]string
	for i, n := range []string{"key", "descriptor", "key-prefix"} {
		v, err := onlyOne(q, n)
		if err != nil {
			s.writeJSON(w, r, http.StatusBadRequest, ligatoErr{err.Error()})
			return
		}
		args[i] = v
	}
	key, desc, prefix := args[0], args[1], args[2]
	all := s.opts.Scheduler.Status()
	derived := map[string][]LigatoValueStatus{}
	for _, st := range all {
		if st.Derived {
			derived[st.Parent] = append(derived[st.Parent], ligatoStatusOf(st))
		}
	}
	base := func(st kvscheduler.ValueStatus) LigatoBaseValueStatus {
		d := derived[st.Key]
		sort.Slice(d, func(i, j int) bool { return d[i].Key < d[j].Key })
		return LigatoBaseValueStatus{Value: ligatoStatusOf(st), DerivedValues: d}
	}
	if key != "" {
		// Ligato answers a key it does not know with state 0 (NONEXISTENT).
		st, ok := s.opts.Scheduler.StatusOf(key)
		if !ok {
			s.writeJSON(w, r, http.StatusOK, LigatoBaseValueStatus{Value: LigatoValueStatus{Key: key}})
			return
		}
		s.writeJSON(w, r, http.StatusOK, base(st))
		return
	}
	if prefix != "" && desc == "" && !knownPrefix(prefix) {
		s.writeJSON(w, r, http.StatusBadRequest, ligatoErr{"unknown key prefix"})
		return
	}
	out := []LigatoBaseValueStatus{}
	for _, st := range all {
		if st.Derived || (desc != "" && st.Descriptor != desc) || !strings.HasPrefix(st.Key, prefix) {
			continue
		}
		out = append(out, base(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value.Key < out[j].Value.Key })
	s.writeJSON(w, r, http.StatusOK, out)
}

// knownPrefix reports whether a key prefix names a model vppmesh has (or
// lies under one, or above one).
func knownPrefix(prefix string) bool {
	for _, p := range models.Prefixes() {
		if strings.HasPrefix(p, prefix) || strings.HasPrefix(prefix, p) {
			return true
		}
	}
	return false
}

func ligatoProto(m proto.Message) *LigatoProtoWithName {
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	// vppmesh's copies of Ligato's models carry Ligato's names here, so
	// that tools which look a message up by name find Ligato's.
	name := string(proto.MessageName(m))
	if strings.HasPrefix(name, "vppmesh.vpp.") {
		name = "ligato" + strings.TrimPrefix(name, "vppmesh")
	}
	return &LigatoProtoWithName{ProtoMsgName: name, ProtoMsgData: b}
}

// ligatoDump is Ligato's /scheduler/dump: without descriptor and
// key-prefix an index; otherwise the values of one view: SB (what VPP has,
// the default), NB (what etcd asks for) or cached (what the scheduler
// believes is applied).
func (s *Server) ligatoDump(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var args [3]string
	for i, n := range []string{"descriptor", "key-prefix", "view"} {
		v, err := onlyOne(q, n)
		if err != nil {
			s.writeJSON(w, r, http.StatusBadRequest, ligatoErr{err.Error()})
			return
		}
		args[i] = v
	}
	desc, prefix, view := args[0], args[1], args[2]
	if desc == "" && prefix == "" {
		s.writeJSON(w, r, http.StatusOK, s.dumpIndex())
		return
	}
	if view == "" {
		view = viewSB
	}
	match := func(key, d string) bool {
		return (desc == "" || d == desc) && strings.HasPrefix(key, prefix)
	}
	out := []LigatoKVWithMetadata{}
	switch view {
	case viewSB:
		vals, err := s.opts.Scheduler.Retrieve(r.Context())
		if err != nil {
			s.writeJSON(w, r, http.StatusInternalServerError, ligatoErr{"retrieve from vpp: " + err.Error()})
			return
		}
		for _, v := range vals {
			if !match(v.Key, v.Descriptor) {
				continue
			}
			origin := 1
			if v.Origin == kvscheduler.FromSB {
				origin = 2
			}
			out = append(out, LigatoKVWithMetadata{Key: v.Key, Value: ligatoProto(v.Value), Metadata: renderAny(v.Metadata), Origin: origin})
		}
	case viewNB, viewCached:
		for _, st := range s.opts.Scheduler.Status() {
			if !match(st.Key, st.Descriptor) || st.Value == nil {
				continue
			}
			if view == viewNB && (st.Derived || st.State == kvscheduler.StateObtained) {
				continue
			}
			if view == viewCached && st.State != kvscheduler.StateConfigured && st.State != kvscheduler.StateObtained {
				continue
			}
			origin := 1
			if st.State == kvscheduler.StateObtained {
				origin = 2
			}
			kv := LigatoKVWithMetadata{Key: st.Key, Value: ligatoProto(st.Value), Origin: origin}
			if view == viewCached {
				kv.Metadata = renderAny(st.Metadata)
			}
			out = append(out, kv)
		}
	default:
		s.writeJSON(w, r, http.StatusBadRequest, ligatoErr{fmt.Sprintf("unrecognized system view %q: want SB, NB or cached", view)})
		return
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	s.writeJSON(w, r, http.StatusOK, out)
}

func (s *Server) dumpIndex() LigatoDumpIndex {
	idx := LigatoDumpIndex{Views: []string{viewSB, viewNB, viewCached}, Descriptors: []string{}, KeyPrefixes: models.Prefixes()}
	seen := map[string]bool{}
	for _, st := range s.opts.Scheduler.Status() {
		if !seen[st.Descriptor] && st.Descriptor != "" {
			seen[st.Descriptor] = true
			idx.Descriptors = append(idx.Descriptors, st.Descriptor)
		}
	}
	sort.Strings(idx.Descriptors)
	return idx
}

// ligatoVPPCommand is Ligato's /vpp/command: body {"vppclicommand": "..."},
// answer the CLI output as a JSON string.
func (s *Server) ligatoVPPCommand(w http.ResponseWriter, r *http.Request) {
	if s.opts.VPPCLI == nil {
		s.writeJSON(w, r, http.StatusNotImplemented, "VPP CLI is not wired in this agent")
		return
	}
	var req struct {
		Command *string `json:"vppclicommand"`
	}
	if c := r.URL.Query().Get("command"); c != "" {
		req.Command = &c
	} else if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		s.writeJSON(w, r, http.StatusBadRequest, "want a JSON body {\"vppclicommand\": \"<command>\"}: "+err.Error())
		return
	}
	if req.Command == nil || strings.TrimSpace(*req.Command) == "" {
		s.writeJSON(w, r, http.StatusBadRequest, "vppclicommand: empty or missing")
		return
	}
	out, err := s.opts.VPPCLI(r.Context(), *req.Command)
	if err != nil {
		s.log.Warn("vpp command failed", "command", *req.Command, "err", err)
		s.writeJSON(w, r, http.StatusInternalServerError, fmt.Sprintf("vpp command %q: %v", *req.Command, err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

func (s *Server) logList(w http.ResponseWriter, r *http.Request) {
	if s.opts.LogLevels == nil {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("log levels are not wired in this agent"))
		return
	}
	levels := s.opts.LogLevels()
	out := make([]LigatoLogger, 0, len(levels))
	for name, lvl := range levels {
		out = append(out, LigatoLogger{Logger: name, Level: lvl})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Logger < out[j].Logger })
	s.writeJSON(w, r, http.StatusOK, out)
}

// logRecent answers the agent's last log lines as a JSON array of records.
func (s *Server) logRecent(w http.ResponseWriter, r *http.Request) {
	if s.opts.RecentLogs == nil {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("the agent keeps no recent log lines (started without a log ring)"))
		return
	}
	n := 200
	if v := r.URL.Query().Get("n"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 {
			s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("n=%q: want a positive integer", v))
			return
		}
		n = i
	}
	out := []json.RawMessage{}
	for _, l := range s.opts.RecentLogs(n) {
		if json.Valid(l) {
			out = append(out, l)
		} else {
			b, _ := json.Marshal(string(l))
			out = append(out, b)
		}
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

func (s *Server) logSet(w http.ResponseWriter, r *http.Request) {
	if s.opts.SetLogLevel == nil {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("log levels are not wired in this agent"))
		return
	}
	logger, level := r.PathValue("logger"), r.PathValue("level")
	if err := s.opts.SetLogLevel(logger, level); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrUnknownLogger) {
			code = http.StatusNotFound
		}
		s.writeError(w, r, code, err)
		return
	}
	s.log.Info("log level changed over rest", "logger", logger, "level", level)
	s.writeJSON(w, r, http.StatusOK, LigatoLogger{Logger: logger, Level: level})
}

// ErrUnknownLogger is what Options.SetLogLevel returns for a logger name
// the agent does not have.
var ErrUnknownLogger = errors.New("unknown logger")

// ligatoDump describes one /dump/vpp/v2/... path: the key prefix of its
// values and the names Ligato wraps value and metadata in.
type ligatoDump struct {
	prefix  string
	wrap    string // field holding the value
	meta    string // field holding VPP's indices
	byIndex bool   // Ligato answers a map by VPP index, not a list
	ifType  string // only interfaces of this type
}

// ligatoDumps are the dump paths of models vppmesh has. Others (ACL, NAT,
// IPsec, ...) answer 404 with the "not supported" error, as the migration
// guide lists.
var ligatoDumps = map[string]ligatoDump{
	"interfaces": {prefix: models.ConfigDir + "vpp/v2/interfaces/", wrap: "interface", meta: "interface_meta", byIndex: true},
	"bd":         {prefix: models.ConfigDir + "vpp/l2/v2/bridge-domain/", wrap: "bridge_domain", meta: "bridge_domain_meta"},
	"xc":         {prefix: models.ConfigDir + "vpp/l2/v2/xconnect/", wrap: "x_connect", meta: "x_connect_meta", byIndex: true},
	"fib":        {prefix: models.ConfigDir + "vpp/l2/v2/fib/", wrap: "fib", meta: "fib_meta"},
	"routes":     {prefix: models.ConfigDir + "vpp/v2/route/", wrap: "route", meta: "route_meta"},
	"arps":       {prefix: models.ConfigDir + "vpp/v2/arp/", wrap: "arp", meta: "arp_meta"},
}

// ligatoDumpAliases are spelled-out names some users write for Ligato's
// short dump paths; they answer the same.
var ligatoDumpAliases = map[string]string{"bridgedomains": "bd", "xconnects": "xc", "fibs": "fib"}

// ligatoUnsupportedDumps are Ligato's dump paths of models vppmesh does not
// have: they answer 404 saying so.
var ligatoUnsupportedDumps = []string{
	"/dump/vpp/v2/abf", "/dump/vpp/v2/acl/ip", "/dump/vpp/v2/acl/macip",
	"/dump/vpp/v2/nat/global", "/dump/vpp/v2/nat/dnat", "/dump/vpp/v2/nat/interfaces", "/dump/vpp/v2/nat/pools",
	"/dump/vpp/v2/proxyarp/interfaces", "/dump/vpp/v2/proxyarp/ranges", "/dump/vpp/v2/ipscanneigh",
	"/dump/vpp/v2/ipsec/spds", "/dump/vpp/v2/ipsec/sps", "/dump/vpp/v2/ipsec/sas",
	"/dump/vpp/v2/punt/sockets", "/dump/vpp/v2/wireguard/peers",
	"/dump/linux/v2/interfaces", "/dump/linux/v2/routes", "/dump/linux/v2/arps",
}

// ligatoUnsupportedPaths are Ligato's other REST paths vppmesh does not
// serve, with the reason (docs/migrating-from-ligato.md).
var ligatoUnsupportedPaths = map[string]string{
	"/scheduler/key-timeline":        "the scheduler keeps no per-key timeline; see /values and /scheduler/txn-history",
	"/scheduler/graph-snapshot":      "the scheduler keeps no graph snapshots; see /values",
	"/scheduler/flag-stats":          "see /metrics",
	"/scheduler/graph":               "see /values",
	"/scheduler/stats":               "see /metrics",
	"/vpp/telemetry":                 "VPP counters are in /vpp/counters and /metrics",
	"/vpp/telemetry/memory":          "VPP counters are in /vpp/counters and /metrics",
	"/vpp/telemetry/runtime":         "VPP counters are in /vpp/counters and /metrics",
	"/vpp/telemetry/nodecount":       "VPP counters are in /vpp/counters and /metrics",
	"/stats/configurator":            "see /metrics",
	"/stats/linux/interfaces":        "vppmesh does not manage Linux interfaces",
	"/configuration":                 "configuration goes through etcd (agentctl config update)",
	"/configuration/validate":        "configuration goes through etcd (agentctl import --dry-run validates)",
	"/info/configuration/jsonschema": "see agentctl model list",
	"/vpp/binapitrace":               "no binary API trace",
}

// ligatoDumpHandler answers what VPP has under one model prefix, each
// value wrapped with its VPP indices as Ligato's dump handlers do.
func (s *Server) ligatoDumpHandler(d ligatoDump) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := models.ModelForKey(d.prefix + "x"); err != nil {
			s.writeError(w, r, http.StatusNotFound, fmt.Errorf("%s: model under %s is not supported by vppmesh", r.URL.Path, d.prefix))
			return
		}
		vals, err := s.opts.Scheduler.Retrieve(r.Context())
		if err != nil {
			s.writeJSON(w, r, http.StatusInternalServerError, "500 Internal server error: request failed: "+err.Error())
			return
		}
		// Interface indices by name, for the xconnect metadata.
		ifIndex := map[string]uint32{}
		for _, v := range vals {
			if strings.HasPrefix(v.Key, models.ConfigDir+"vpp/v2/interfaces/") {
				if m := metaFields(v.Metadata); m["sw_if_index"] != nil {
					ifIndex[strings.TrimPrefix(v.Key, models.ConfigDir+"vpp/v2/interfaces/")] = toU32(m["sw_if_index"])
				}
			}
		}
		byIndex := map[uint32]map[string]any{}
		list := []map[string]any{}
		for i, v := range vals {
			if !strings.HasPrefix(v.Key, d.prefix) || v.Value == nil {
				continue
			}
			if d.ifType != "" && !hasType(v.Value, d.ifType) {
				continue
			}
			item := map[string]any{d.wrap: json.RawMessage(renderProto(v.Value))}
			m := metaFields(v.Metadata)
			var idx uint32
			switch d.wrap {
			case "interface":
				idx = toU32(m["sw_if_index"])
				item[d.meta] = map[string]any{"sw_if_index": idx, "internal_name": m["internal_name"]}
			case "bridge_domain":
				item[d.meta] = map[string]any{"bridge_domain_id": toU32(m["bd_id"])}
			case "x_connect":
				pair := map[string]string{}
				_ = json.Unmarshal(renderProto(v.Value), &pair)
				idx = ifIndex[pair["receive_interface"]]
				item[d.meta] = map[string]any{"receive_interface_sw_if_idx": idx, "transmit_interface_sw_if_idx": ifIndex[pair["transmit_interface"]]}
			default:
				if m != nil {
					item[d.meta] = m
				}
			}
			if d.byIndex {
				if _, dup := byIndex[idx]; dup || (idx == 0 && d.wrap != "interface") {
					idx = uint32(1<<31) + uint32(i) // no index known: keep the value, under a key that cannot clash
				}
				byIndex[idx] = item
			} else {
				list = append(list, item)
			}
		}
		if d.byIndex {
			s.writeJSON(w, r, http.StatusOK, byIndex)
			return
		}
		s.writeJSON(w, r, http.StatusOK, list)
	}
}

func hasType(m proto.Message, typ string) bool {
	var v struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(renderProto(m), &v)
	return v.Type == typ
}

// metaFields turns descriptor metadata into a field map (nil without).
func metaFields(md any) map[string]any {
	if md == nil {
		return nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

func toU32(v any) uint32 {
	if f, ok := v.(float64); ok && f >= 0 && f <= 1<<32-1 {
		return uint32(f)
	}
	return 0
}
