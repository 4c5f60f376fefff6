package orchestrator

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/vppmesh/vppmesh/models"
)

func TestParseErrorsDoNotLeakSecrets(t *testing.T) {
	for _, tc := range []struct{ value, secret, keep string }{
		{`{"name":"m","memif":{"secret":12345}}`, "12345", "field secret"},
		{`{"name":"m","memif":{"secret":hunter2}}`, "hunter2", "line 1:"},
		{`{"name":"m","type":"WARP"}`, "", "WARP"}, // not secret: keep the helpful value
	} {
		_, err := models.Unmarshal(ifRel("m"), []byte(tc.value))
		if err == nil {
			t.Fatalf("%s parsed", tc.value)
		}
		got := redactParseError(err.Error())
		if tc.secret != "" && strings.Contains(got, tc.secret) {
			t.Errorf("%q leaks %q", got, tc.secret)
		}
		if !strings.Contains(got, tc.keep) || !strings.Contains(got, ifRel("m")) {
			t.Errorf("%q lost %q or the key", got, tc.keep)
		}
	}
}

func TestRejectedSecretNotLoggedNorInStatus(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	var logBuf syncBuffer
	s := newMemSched()
	r := runOrch(t, cli, "a", s, func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(&logBuf, nil)) })
	waitFor(t, "ready", r.o.Ready)
	mustPut(t, cli, ifKey("a", "m"), `{"name":"m","memif":{"secret":31337}}`)
	waitFor(t, "status", func() bool { ks, ok := readStatus(t, cli, "a", ifRel("m")); return ok && ks.State == "INVALID" })
	raw, _ := mustGet(t, cli, "/vnf-agent/a/status/vpp/v2/interfaces/m")
	r.stop()
	if strings.Contains(raw, "31337") || strings.Contains(logBuf.String(), "31337") {
		t.Fatalf("secret leaked: status %s log %s", raw, logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "config value rejected") {
		t.Fatal("rejection not logged")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
