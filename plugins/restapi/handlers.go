package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Paths served. Ligato vpp-agent's names are kept as aliases so that its
// users' scripts keep working.
const (
	PathHealthz          = "/healthz"
	PathReadyz           = "/readyz"
	PathVersion          = "/version"
	PathStatus           = "/status"
	PathSchedulerStatus  = "/scheduler/status"
	PathTxnHistory       = "/scheduler/txn-history"
	PathResync           = "/scheduler/resync"
	PathLigatoResync     = "/scheduler/downstream-resync"
	PathVPPDump          = "/vpp/dump"
	PathVPPCommand       = "/vpp/command"
	PathVPPCounters      = "/vpp/counters"
	PathLigatoDump       = "/scheduler/dump"
	PathMetrics          = "/metrics"
	defaultHistoryLength = 100
	// historyScan is how far back a lookup by sequence number searches;
	// the scheduler keeps far fewer transactions than that.
	historyScan = 10000
)

// ValueJSON is one value status as the API renders it: the scheduler's
// status plus the desired value as protobuf JSON (Ligato's snake_case names).
type ValueJSON struct {
	kvscheduler.ValueStatus
	Value    json.RawMessage `json:"value,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// DumpJSON is one value found in VPP.
type DumpJSON struct {
	Key        string          `json:"key"`
	Descriptor string          `json:"descriptor"`
	Origin     string          `json:"origin"`
	Value      json.RawMessage `json:"value,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// AgentStatus is what /status answers: a one-glance summary for agentctl.
type AgentStatus struct {
	Version       string         `json:"version"`
	Ready         bool           `json:"ready"`
	VPPConnected  *bool          `json:"vpp_connected,omitempty"` // nil when not known
	ValuesByState map[string]int `json:"values_by_state"`
	Values        int            `json:"values"`
}

// ResyncResult is what a resync request answers once the resync is done.
type ResyncResult struct {
	// Txns are the resync transactions that ran during the request.
	Txns []kvscheduler.TxnRecord `json:"txns"`
}

type errorJSON struct {
	Error string `json:"error"`
}

var protoOpts = protojson.MarshalOptions{UseProtoNames: true}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(path, method string, h http.HandlerFunc) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			// Method checks are ours rather than the mux's so that a wrong
			// method also gets a JSON error body.
			if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
				w.Header().Set("Allow", method)
				s.writeError(w, r, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed, use %s", r.Method, r.URL.Path, method))
				return
			}
			h(w, r)
		})
	}
	handle(PathHealthz, http.MethodGet, s.healthz)
	handle(PathReadyz, http.MethodGet, s.readyz)
	handle(PathVersion, http.MethodGet, s.version)
	handle(PathStatus, http.MethodGet, s.agentStatus)
	handle(PathValues, http.MethodGet, s.schedulerStatus)
	handle(PathTxnHistory, http.MethodGet, s.txnHistory)
	handle(PathResync, http.MethodPost, s.resync)
	handle(PathLigatoResync, http.MethodPost, s.resync)
	handle(PathVPPDump, http.MethodGet, s.dump)
	handle(PathVPPCLI, http.MethodPost, s.vppCommand)
	handle(PathVPPCounters, http.MethodGet, s.counters)
	handle(PathMetrics, http.MethodGet, s.metrics)
	handle(PathGraph, http.MethodGet, s.graph) // graph.go
	if s.opts.Mesh != nil {
		mux.Handle("/mesh/", s.opts.Mesh)
	}
	s.ligatoRoutes(mux, handle) // Ligato's paths and shapes: ligato.go
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, fmt.Errorf("no such endpoint: %s", r.URL.Path))
	})
	return s.accessLog(s.secure(mux))
}

// statusRecorder remembers the code a handler answered, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog writes one debug line per request; probes and scrapes come every
// few seconds, so info level would drown the agent's own events.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.Debug("rest request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"code", rec.code, "duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) ready() bool { return s.opts.Ready == nil || s.opts.Ready() }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready() {
		s.writeError(w, r, http.StatusServiceUnavailable, errors.New("agent not ready"))
		return
	}
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"version": s.opts.Version})
}

func (s *Server) agentStatus(w http.ResponseWriter, r *http.Request) {
	st := AgentStatus{Version: s.opts.Version, Ready: s.ready(), ValuesByState: map[string]int{}}
	if s.opts.VPPConnected != nil {
		c := s.opts.VPPConnected()
		st.VPPConnected = &c
	}
	for _, v := range s.opts.Scheduler.Status() {
		st.ValuesByState[string(v.State)]++
		st.Values++
	}
	s.writeJSON(w, r, http.StatusOK, st)
}

// schedulerStatus answers every value's status, or one key's (?key=), or
// those under a prefix (?prefix=), optionally of one descriptor or state.
func (s *Server) schedulerStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if key := q.Get("key"); key != "" {
		st, ok := s.opts.Scheduler.StatusOf(key)
		if !ok {
			s.writeError(w, r, http.StatusNotFound, fmt.Errorf("key %q: no status", key))
			return
		}
		s.writeJSON(w, r, http.StatusOK, renderStatus(st))
		return
	}
	prefix, desc, state := q.Get("prefix"), q.Get("descriptor"), strings.ToUpper(q.Get("state"))
	out := []ValueJSON{}
	for _, st := range s.opts.Scheduler.Status() {
		if !strings.HasPrefix(st.Key, prefix) ||
			(desc != "" && st.Descriptor != desc) ||
			(state != "" && string(st.State) != state) {
			continue
		}
		out = append(out, renderStatus(st))
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// txnHistory answers the last n transactions (?n=, default 100), oldest
// first, optionally those started in [?since=, ?until=], or one transaction
// (?seq=, Ligato's ?seq-num= too).
func (s *Server) txnHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := defaultHistoryLength
	if v := q.Get("n"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i <= 0 {
			s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("n=%q: want a positive integer", v))
			return
		}
		n = i
	}
	seqStr := q.Get("seq")
	if seqStr == "" {
		seqStr = q.Get("seq-num")
	}
	if seqStr != "" {
		seq, err := strconv.ParseUint(seqStr, 10, 64)
		if err != nil {
			s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("seq=%q: want a transaction number", seqStr))
			return
		}
		for _, rec := range s.opts.Scheduler.History(historyScan) {
			if rec.Seq == seq {
				s.writeJSON(w, r, http.StatusOK, rec)
				return
			}
		}
		s.writeError(w, r, http.StatusNotFound, fmt.Errorf("transaction %d is not in history", seq))
		return
	}
	since, err := parseTime(q.Get("since"))
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("since: %w", err))
		return
	}
	until, err := parseTime(q.Get("until"))
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("until: %w", err))
		return
	}
	hist := []kvscheduler.TxnRecord{}
	for _, rec := range s.opts.Scheduler.History(n) {
		if (!since.IsZero() && rec.Start.Before(since)) || (!until.IsZero() && rec.Start.After(until)) {
			continue
		}
		hist = append(hist, rec)
	}
	s.writeJSON(w, r, http.StatusOK, hist)
}

// parseTime reads Ligato's unix-seconds form or RFC 3339; "" is no bound.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(sec, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want unix seconds or RFC 3339", v)
	}
	return t, nil
}

func lastSeq(h []kvscheduler.TxnRecord) uint64 {
	var max uint64
	for _, r := range h {
		if r.Seq > max {
			max = r.Seq
		}
	}
	return max
}

// resync runs a full resync and answers with the resync transactions that
// ran meanwhile, found in history by sequence number because Resync itself
// reports only success.
func (s *Server) resync(w http.ResponseWriter, r *http.Request) {
	if s.opts.Resync == nil {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("resync is not wired in this agent"))
		return
	}
	s.resyncMu.Lock()
	defer s.resyncMu.Unlock()
	before := lastSeq(s.opts.Scheduler.History(1))
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ResyncTimeout)
	defer cancel()
	start := time.Now()
	if err := s.opts.Resync(ctx); err != nil {
		s.writeError(w, r, http.StatusInternalServerError, fmt.Errorf("resync: %w", err))
		return
	}
	res := ResyncResult{Txns: []kvscheduler.TxnRecord{}}
	for _, rec := range s.opts.Scheduler.History(historyScan) {
		if rec.Seq > before && (rec.Kind == kvscheduler.TxnFullResync || rec.Kind == kvscheduler.TxnDownstreamResync) {
			res.Txns = append(res.Txns, rec)
		}
	}
	s.log.Info("resync requested over rest", "txns", len(res.Txns), "duration", time.Since(start))
	s.writeJSON(w, r, http.StatusOK, res)
}

// dump answers what VPP has now, optionally of one descriptor.
func (s *Server) dump(w http.ResponseWriter, r *http.Request) {
	vals, err := s.opts.Scheduler.Retrieve(r.Context())
	if err != nil {
		s.writeError(w, r, http.StatusBadGateway, fmt.Errorf("retrieve from vpp: %w", err))
		return
	}
	desc := r.URL.Query().Get("descriptor")
	out := []DumpJSON{}
	for _, v := range vals {
		if desc != "" && v.Descriptor != desc {
			continue
		}
		origin := "FROM_NB"
		if v.Origin == kvscheduler.FromSB {
			origin = "FROM_SB"
		}
		out = append(out, DumpJSON{
			Key: v.Key, Descriptor: v.Descriptor, Origin: origin,
			Value: renderProto(v.Value), Metadata: renderAny(v.Metadata),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	s.writeJSON(w, r, http.StatusOK, out)
}

// VPPCommandJSON is the request and answer of POST /vpp/command; the field
// name is Ligato's, so its users' scripts keep working.
type VPPCommandJSON struct {
	Command string `json:"vppclicommand"`
	Output  string `json:"output,omitempty"`
}

// vppCommand runs one VPP CLI command, given as ?command= or as a JSON body.
func (s *Server) vppCommand(w http.ResponseWriter, r *http.Request) {
	if s.opts.VPPCLI == nil {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("VPP CLI is not wired in this agent"))
		return
	}
	req := VPPCommandJSON{Command: r.URL.Query().Get("command")}
	if req.Command == "" {
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			s.writeError(w, r, http.StatusBadRequest, fmt.Errorf("vpp command: want ?command= or {\"vppclicommand\": ...}: %w", err))
			return
		}
	}
	if strings.TrimSpace(req.Command) == "" {
		s.writeError(w, r, http.StatusBadRequest, errors.New("vpp command: empty command"))
		return
	}
	out, err := s.opts.VPPCLI(r.Context(), req.Command)
	if err != nil {
		s.writeError(w, r, http.StatusBadGateway, fmt.Errorf("vpp command %q: %w", req.Command, err))
		return
	}
	req.Output = out
	s.writeJSON(w, r, http.StatusOK, req)
}

// counters answers the packet counters of interfaces and cross-connects.
func (s *Server) counters(w http.ResponseWriter, r *http.Request) {
	if s.opts.Counters == nil {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("counters are not wired in this agent"))
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.opts.Counters())
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		s.writeError(w, r, http.StatusNotImplemented, errors.New("metrics are not wired in this agent"))
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}

func renderStatus(st kvscheduler.ValueStatus) ValueJSON {
	return ValueJSON{ValueStatus: st, Value: renderProto(st.Value), Metadata: renderAny(st.Metadata)}
}

// renderProto encodes a value as protobuf JSON; a value that cannot be
// encoded is shown as an error string rather than failing the whole answer.
func renderProto(m proto.Message) json.RawMessage {
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil
	}
	b, err := protoOpts.Marshal(RedactSecrets(m))
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return b
}

// renderAny encodes descriptor metadata, which is whatever a descriptor
// keeps; something encoding/json cannot handle is shown with %v.
func renderAny(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprintf("%v", v))
	}
	return b
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "path", r.URL.Path, "err", err)
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorJSON{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(append(b, '\n')) //nolint:errcheck // the client went away; nothing to do
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		s.log.Warn("rest request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	} else {
		s.log.Debug("rest request rejected", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	s.writeJSON(w, r, code, errorJSON{Error: err.Error()})
}
