package mesh

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/vppmesh/vppmesh/models"
)

// PathConnections is the REST path of the connections this agent owns.
const PathConnections = "/mesh/connections"

// Handler serves GET /mesh/connections: the statuses of the connections
// this agent owns, as a JSON array (protobuf JSON names), and GET
// /mesh/stats: the controller's counters.
func (m *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathConnections, func(w http.ResponseWriter, _ *http.Request) {
		sts := m.Statuses()
		out := make([]json.RawMessage, 0, len(sts))
		for _, st := range sts {
			b, err := models.Marshal(st)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			out = append(out, b)
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /mesh/stats", func(w http.ResponseWriter, _ *http.Request) {
		last := ""
		if ns := m.stats.LastReconcile.Load(); ns > 0 {
			last = time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
		}
		writeJSON(w, map[string]any{
			"decisions":      m.stats.Decisions.Load(),
			"conflicts":      m.stats.Conflicts.Load(),
			"heals":          m.stats.Heals.Load(),
			"status_writes":  m.stats.StatusWrites.Load(),
			"relists":        m.stats.Relists.Load(),
			"reconciles":     m.stats.Reconciles.Load(),
			"last_reconcile": last,
		})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
