package restapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequest sends arbitrary requests (method, path and query, headers,
// body: all outside bytes) through the whole API, security checks
// included. It must never panic, must always answer JSON, and must never
// run the VPP CLI for a request that fails the cross-site checks.
func FuzzRequest(f *testing.F) {
	f.Add("POST", "/vpp/command?command=show+version", "application/json", "", "", `{"vppclicommand":"show int"}`)
	f.Add("POST", "/vpp/command", "text/plain", "http://evil.example", "", `{"vppclicommand":"x"}`)
	f.Add("POST", "/scheduler/resync", "application/json; charset=utf-8", "", "cross-site", "{}")
	f.Add("GET", "/scheduler/status?prefix=config/&state=failed", "", "", "", "")
	f.Add("GET", "/scheduler/txn-history?since=1700000000&until=2026-01-01T00:00:00Z&seq-num=3", "", "", "", "")
	f.Add("OPTIONS", "/v3/kv/put", "", "null", "", "")
	f.Add("GET", "/%zz?\x00", "", "", "", "")
	f.Fuzz(func(t *testing.T, method, target, ctype, origin, fetchSite, body string) {
		var ran bool
		s, err := New(Options{
			Scheduler: newFake(),
			VPPCLI: func(ctx context.Context, cmd string) (string, error) {
				ran = true
				return "ok", nil
			},
			Resync: func(ctx context.Context) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequest(method, "http://127.0.0.1:9191"+target, strings.NewReader(body))
		if err != nil {
			return // not a request a server could receive
		}
		req.Header.Set("Content-Type", ctype)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", fetchSite)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if method != http.MethodHead && w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %q", method, target, w.Body.String())
		}
		crossSite := (origin != "" && origin != "http://127.0.0.1:9191") || fetchSite == "cross-site" || fetchSite == "same-site"
		if ran && (crossSite || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ctype)), "application/json")) {
			t.Fatalf("VPP CLI ran for %s %s (Content-Type %q, Origin %q, Sec-Fetch-Site %q)", method, target, ctype, origin, fetchSite)
		}
	})
}
