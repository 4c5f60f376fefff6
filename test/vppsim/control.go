package vppsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/internal/sockfile"
)

// ControlHandler serves vppsim's fault-injection and inspection API (see README.md):
//
//	GET  /calls                      per-message call counts (JSON object)
//	POST /calls/reset                zero the call counts
//	POST /restart                    crash and restart (drop clients and all state)
//	POST /latency?msg=NAME&delay=D   delay NAME (or every message when msg is empty)
//	POST /fail?msg=NAME&n=N&retval=R fail the next N calls of NAME with R
//	POST /hang, POST /resume         stop / resume answering
//	POST /clear                      remove all faults
//	GET  /interfaces                 interface table with counters (JSON array)
func (s *Sim) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.CallCounts())
	})
	mux.HandleFunc("POST /calls/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCallCounts()
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Restart(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]string{"status": "restarted"})
	})
	mux.HandleFunc("POST /latency", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("delay"))
		if err != nil {
			http.Error(w, fmt.Sprintf("delay: %v", err), http.StatusBadRequest)
			return
		}
		s.SetLatency(r.URL.Query().Get("msg"), d)
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil {
			http.Error(w, fmt.Sprintf("n: %v", err), http.StatusBadRequest)
			return
		}
		rv, err := strconv.ParseInt(q.Get("retval"), 10, 32)
		if err != nil {
			http.Error(w, fmt.Sprintf("retval: %v", err), http.StatusBadRequest)
			return
		}
		if q.Get("msg") == "" {
			http.Error(w, "msg is required", http.StatusBadRequest)
			return
		}
		s.FailNext(q.Get("msg"), n, int32(rv))
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /hang", func(w http.ResponseWriter, r *http.Request) {
		s.Hang()
		writeJSON(w, map[string]string{"status": "hung"})
	})
	mux.HandleFunc("POST /resume", func(w http.ResponseWriter, r *http.Request) {
		s.Resume()
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /clear", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /interfaces", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Interfaces())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// ServeControl serves ControlHandler on addr until ctx ends or the returned stop is
// called. addr is "unix:/path/ctl.sock" or a TCP "host:port".
func (s *Sim) ServeControl(ctx context.Context, addr string) (stop func() error, err error) {
	network, address := "tcp", addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", p
		if err := sockfile.RemoveIfStale(p); err != nil {
			return nil, fmt.Errorf("vppsim: control socket: %w", err)
		}
	}
	var ln net.Listener
	if network == "unix" {
		ln, err = sockfile.Listen(ctx, network, address, 0o660)
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, network, address)
	}
	if err != nil {
		return nil, fmt.Errorf("vppsim: control listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control endpoint stopped", "addr", addr, "err", err)
		}
	}()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			srv.Close()
		case <-stopped:
		}
	}()
	s.log.Info("control endpoint listening", "addr", ln.Addr().String())
	var once sync.Once
	return func() error {
		once.Do(func() { close(stopped) })
		return srv.Close()
	}, nil
}

// InterfaceInfo is one interface as the control endpoint and tests see it.
type InterfaceInfo struct {
	SwIfIndex uint32   `json:"sw_if_index"`
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	AdminUp   bool     `json:"admin_up"`
	LinkUp    bool     `json:"link_up"`
	MAC       string   `json:"mac"`
	Tag       string   `json:"tag,omitempty"`
	L2        string   `json:"l2,omitempty"` // "xconnect <tx name>" or "bridge <bd id>"
	Counters  Counters `json:"counters"`
}

// Interfaces returns the interface table in sw_if_index order.
func (s *Sim) Interfaces() []InterfaceInfo {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	var out []InterfaceInfo
	for ifc := range s.st.all() {
		info := InterfaceInfo{SwIfIndex: ifc.idx, Name: ifc.name, Kind: ifc.kind.String(),
			AdminUp: ifc.adminUp, LinkUp: ifc.linkUp, MAC: macString(ifc.mac), Tag: ifc.tag,
			Counters: ifc.port.Counters()}
		switch ifc.l2 {
		case l2Xconnect:
			if tx := s.st.get(ifc.xcTx); tx != nil {
				info.L2 = "xconnect " + tx.name
			}
		case l2Bridge:
			info.L2 = "bridge " + itoa(ifc.bdID)
		}
		out = append(out, info)
	}
	return out
}

// Port returns the packet I/O port of an interface, for drivers and tests.
func (s *Sim) Port(swIfIndex uint32) (*Port, bool) {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	ifc := s.st.get(swIfIndex)
	if ifc == nil {
		return nil, false
	}
	return ifc.port, true
}

// AttachDriver gives an existing interface a packet driver (replacing none); for tests
// and for drivers that are set up after the interface exists.
func (s *Sim) AttachDriver(swIfIndex uint32, d Driver) error {
	s.stMu.Lock()
	defer s.stMu.Unlock()
	ifc := s.st.get(swIfIndex)
	if ifc == nil {
		return fmt.Errorf("vppsim: attach driver: sw_if_index %d does not exist", swIfIndex)
	}
	if ifc.port.driver.Load() != nil {
		return fmt.Errorf("vppsim: attach driver: %s already has one", ifc.name)
	}
	ifc.port.setDriver(d)
	return nil
}
