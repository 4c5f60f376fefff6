package etcdconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A file as Ligato's images ship it: comments, nanosecond durations, keys
// vppmesh has no use for.
const ligatoStock = `# A list of host IP addresses of ETCD database server.
endpoints:
  - "198.51.100.7:2379"

# Connection fails if it is not established till timeout
dial-timeout: 100000000

# Operation timeout value in nanoseconds
operation-timeout: 300000000

# Insecure transport omits TLS usage
insecure-transport: true

insecure-skip-tls-verify: false

auto-compact: 0

resync-after-reconnect: false
`

func TestParseLigatoStockFile(t *testing.T) {
	c, err := Parse([]byte(ligatoStock))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Endpoints) != 1 || c.Endpoints[0] != "198.51.100.7:2379" || c.Timeout(time.Second) != 100*time.Millisecond ||
		time.Duration(c.OpTimeout) != 300*time.Millisecond || !c.InsecureTransport || c.UsesTLS() {
		t.Fatalf("parsed %+v", c)
	}
	cfg, err := c.ClientConfig(5 * time.Second)
	if err != nil || cfg.TLS != nil || cfg.DialTimeout != 100*time.Millisecond || cfg.Endpoints[0] != "198.51.100.7:2379" {
		t.Fatalf("client config %+v %v", cfg, err)
	}
}

func TestParseForms(t *testing.T) {
	c, err := Parse([]byte("dial-timeout: \"2s\"\nusername: u\npassword: p\n"))
	if err != nil || c.Timeout(0) != 2*time.Second || c.Username != "u" {
		t.Fatalf("%+v %v", c, err)
	}
	cfg, err := c.ClientConfig(time.Second)
	if err != nil || len(cfg.Endpoints) != 1 || cfg.Endpoints[0] != DefaultEndpoint || cfg.Username != "u" || cfg.Password != "p" {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	// JSON is YAML; an empty file is an empty config.
	if c, err := Parse([]byte(`{"endpoints":["198.51.100.1:2379"]}`)); err != nil || c.Endpoints[0] != "198.51.100.1:2379" {
		t.Fatalf("json: %+v %v", c, err)
	}
	if c, err := Parse([]byte("# nothing\n")); err != nil || len(c.Endpoints) != 0 {
		t.Fatalf("empty: %+v %v", c, err)
	}
	// etcd's spelling of the CA file.
	if c, err := Parse([]byte("trusted-ca-file: /ca.pem\n")); err != nil || c.CAFile != "/ca.pem" || !c.UsesTLS() {
		t.Fatalf("trusted-ca-file: %+v %v", c, err)
	}
	// insecure-transport wins over certificate files, as in Ligato.
	if c, err := Parse([]byte("insecure-transport: true\nca-file: /ca.pem\n")); err != nil || c.UsesTLS() {
		t.Fatalf("insecure-transport: %+v %v", c, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"endpoint: [a]\n", "endpoint"},
		{"endpoints: a\n", "endpoints"},
		{"endpoints: [\"\"]\n", "empty"},
		{"dial-timeout: soon\n", "soon"},
		{"dial-timeout: -5\n", "negative"},
		{"cert-file: /c.pem\n", "key-file"},
		{"password: p\n", "username"},
		{"ca-file: /a\ntrusted-ca-file: /b\n", "both"},
		{"- a\n- b\n", "mapping"},
		{"endpoints: [\n", "yaml"},
	} {
		if _, err := Parse([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one mentioning %q", c.text, err, c.want)
		}
	}
}

func TestLoadAndTLSFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none.conf")); err == nil || !strings.Contains(err.Error(), "none.conf") {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, make([]byte, maxFileSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("big file: %v", err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	p := filepath.Join(dir, "etcd.conf")
	os.WriteFile(p, []byte("ca-file: "+notPEM+"\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TLS(); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Fatalf("bad CA: %v", err)
	}
	os.WriteFile(p, []byte("cert-file: "+notPEM+"\nkey-file: "+notPEM+"\n"), 0o600)
	c, _ = Load(p)
	if _, err := c.ClientConfig(time.Second); err == nil || !strings.Contains(err.Error(), "cert-file") {
		t.Fatalf("bad cert: %v", err)
	}
}
