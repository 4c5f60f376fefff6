package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Precedence: flag > environment > file > default, for every layered option.
func TestParseFlagsPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "etcd.conf", "endpoints:\n  - 192.0.2.1:2379\ndial-timeout: 250ms\n")
	writeFile(t, dir, "govpp.conf", "binapi-socket-path: /file/api.sock\nstats-socket-path: /file/stats.sock\nhealth-check-probe-interval: 3000000000\n")
	writeFile(t, dir, "http.conf", "endpoint: 127.0.0.1:19999\n")
	writeFile(t, dir, "logs.conf", "default-level: warning\nloggers:\n  - name: govpp\n    level: debug\n")

	// Files only (through --config-dir, Ligato's spelling).
	o, err := parseFlags("t", []string{"--config-dir", dir}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.EtcdEndpoints, ",") != "192.0.2.1:2379" || o.Etcd == nil || o.Etcd.Timeout(0) != 250*time.Millisecond ||
		o.VPPSocket != "/file/api.sock" || o.VPPStatsSocket != "/file/stats.sock" ||
		o.HTTPAddr != "127.0.0.1:19999" || o.LogLevel != slog.LevelWarn || o.Label != "vpp1" || len(o.ConfigFiles) != 4 {
		t.Fatalf("from files: %+v", o)
	}

	// The environment beats the files.
	env := map[string]string{"CONFIG_DIR": dir, "ETCD_ENDPOINTS": "192.0.2.2:2379", "VPP_API_SOCKET": "/env/api.sock",
		"VPPMESH_HTTP": "127.0.0.1:18888", "VPPMESH_LOG_LEVEL": "error", "MICROSERVICE_LABEL": "envlabel"}
	o, err = parseFlags("t", nil, envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.EtcdEndpoints, ",") != "192.0.2.2:2379" || o.VPPSocket != "/env/api.sock" ||
		o.VPPStatsSocket != "/file/stats.sock" || o.HTTPAddr != "127.0.0.1:18888" || o.LogLevel != slog.LevelError ||
		o.Label != "envlabel" || o.Etcd == nil {
		t.Fatalf("env over files: %+v", o)
	}

	// Flags beat both; Go's single-dash style and Ligato's names work.
	o, err = parseFlags("t", []string{"-microservice-label", "flaglabel", "-etcd-endpoints", "192.0.2.3:2379",
		"--vpp-socket", "/flag/api.sock", "-http", "127.0.0.1:17777", "-log-level", "debug"}, envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.EtcdEndpoints, ",") != "192.0.2.3:2379" || o.VPPSocket != "/flag/api.sock" ||
		o.HTTPAddr != "127.0.0.1:17777" || o.LogLevel != slog.LevelDebug || o.Label != "flaglabel" {
		t.Fatalf("flags over env: %+v", o)
	}

	// An explicit etcd file beats the one in --config-dir.
	other := writeFile(t, t.TempDir(), "mine.conf", "endpoints: [\"192.0.2.9:2379\"]\n")
	o, err = parseFlags("t", []string{"-etcd-config", other, "--config-dir", dir}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.EtcdEndpoints, ",") != "192.0.2.9:2379" || o.EtcdConfigFile != other {
		t.Fatalf("--etcd-config over --config-dir: %+v", o)
	}

	// A file without endpoints means Ligato's default, not the embedded etcd.
	empty := writeFile(t, t.TempDir(), "etcd.conf", "insecure-transport: true\n")
	o, err = parseFlags("t", nil, envMap(map[string]string{"ETCD_CONFIG": empty}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.EtcdEndpoints, ",") != "127.0.0.1:2379" {
		t.Fatalf("etcd.conf without endpoints: %v", o.EtcdEndpoints)
	}

	// Ligato's per-file environment variables name files outside --config-dir.
	gv := writeFile(t, t.TempDir(), "g.conf", "binapi-socket-path: /envfile/api.sock\n")
	hc := writeFile(t, t.TempDir(), "h.conf", "endpoint: 127.0.0.1:16666\n")
	o, err = parseFlags("t", nil, envMap(map[string]string{"GOVPP_CONFIG": gv, "HTTP_CONFIG": hc}))
	if err != nil {
		t.Fatal(err)
	}
	if o.VPPSocket != "/envfile/api.sock" || o.HTTPAddr != "127.0.0.1:16666" {
		t.Fatalf("GOVPP_CONFIG / HTTP_CONFIG: %+v", o)
	}

	// Nothing at all: the embedded etcd and the defaults.
	o, err = parseFlags("t", nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.EtcdEndpoints) != 0 || o.Etcd != nil || o.VPPSocket != "/run/vpp/api.sock" || o.HTTPAddr != "127.0.0.1:9191" || o.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v", o)
	}
}

// A configuration file that is named but unusable stops the agent with an
// error naming the file; it is never silently ignored.
func TestParseFlagsBadFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.conf")
	bad := writeFile(t, dir, "bad.conf", "endpoints: [unclosed\n")
	typo := writeFile(t, dir, "typo.conf", "endpoint:\n  - 192.0.2.1:2379\n")
	certNoKey := writeFile(t, dir, "cert.conf", "cert-file: /x.pem\n")
	missingCert := writeFile(t, dir, "mc.conf", "cert-file: "+filepath.Join(dir, "no.pem")+"\nkey-file: "+filepath.Join(dir, "no-key.pem")+"\n")
	badCA := writeFile(t, dir, "ca.conf", "ca-file: "+bad+"\n")
	badDur := writeFile(t, dir, "dur.conf", "dial-timeout: soon\n")
	badGovpp := writeFile(t, dir, "govpp.conf", "binapi-socket-path: [1, 2]\n")
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"ETCD_CONFIG": missing}, missing},
		{[]string{"--etcd-config", missing}, nil, missing},
		{[]string{"--etcd-config", bad}, nil, bad},
		{[]string{"--etcd-config", typo}, nil, "endpoint"},
		{[]string{"--etcd-config", certNoKey}, nil, "key-file"},
		{[]string{"--etcd-config", missingCert}, nil, "no.pem"},
		{[]string{"--etcd-config", badCA}, nil, "no PEM certificate"},
		{[]string{"--etcd-config", badDur}, nil, "soon"},
		{[]string{"--govpp-config", badGovpp}, nil, badGovpp},
		{[]string{"--config-dir", missing}, nil, missing},
		{[]string{"--config-dir", bad}, nil, "not a directory"},
		{[]string{"--label", "a", "--microservice-label", "b"}, nil, "disagree"},
		{[]string{"--parallelism", "0"}, nil, "parallelism"},
	}
	for _, c := range cases {
		_, err := parseFlags("t", c.args, envMap(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want one mentioning %q", c.args, c.env, err, c.want)
		}
	}
}
