package agentctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// TestRESTTokenEndToEnd: an agent that requires a token refuses agentctl
// without it and accepts it from --http-token-file and from the env; a
// POST (resync) passes the cross-site checks too.
func TestRESTTokenEndToEnd(t *testing.T) {
	h := &harness{t: t, env: map[string]string{}, sec: restapi.Security{BearerToken: "tok-e2e-0123", BasicAuth: map[string]string{"ops": "pw"}}}
	h.startREST()

	if _, _, err := h.run("status"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("status without a token: %v, want 401", err)
	}
	if _, _, err := h.run("config", "resync"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("resync without a token: %v, want 401", err)
	}
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.run("--http-token-file", tokFile, "status"); err == nil || !strings.Contains(err.Error(), "invalid credentials") {
		t.Fatalf("wrong token: %v", err)
	}
	os.WriteFile(tokFile, []byte("tok-e2e-0123\n"), 0o600)
	if out := h.mustRun("--http-token-file", tokFile, "status"); !strings.Contains(out, "v0.9.0") {
		t.Fatalf("status with the token:\n%s", out)
	}
	h.env["AGENT_HTTP_TOKEN_FILE"] = tokFile
	if out := h.mustRun("config", "resync"); !strings.Contains(out, "tap1") {
		t.Fatalf("resync with the token from the env:\n%s", out)
	}
	delete(h.env, "AGENT_HTTP_TOKEN_FILE")
	h.env["AGENT_HTTP_BASIC_AUTH"] = "ops:pw"
	h.mustRun("values")
	// A token file others can read is refused before anything is sent.
	os.Chmod(tokFile, 0o644)
	if _, _, err := h.run("--http-token-file", tokFile, "status"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file: %v", err)
	}
}
