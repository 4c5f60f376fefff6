// Package etcdconf reads Ligato's etcd.conf (the cn-infra etcd plugin's YAML
// file) and turns it into an etcd client configuration. The agent and
// agentctl both use it, so one file serves both as it does with Ligato.
package etcdconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"
)

// EnvVar names the file, as Ligato's agents read it.
const EnvVar = "ETCD_CONFIG"

// DefaultEndpoint is used when a file names no endpoints, as Ligato does.
const DefaultEndpoint = "127.0.0.1:2379"

// maxFileSize bounds what is read: an etcd.conf is a few hundred bytes.
const maxFileSize = 1 << 20

// Duration reads Ligato's durations: an integer is nanoseconds (how
// cn-infra's files write them, e.g. 100000000), a string is Go's form
// ("100ms", "5s").
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want e.g. \"5s\" or nanoseconds", s)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want e.g. \"5s\" or integer nanoseconds", b)
	}
	*d = Duration(n)
	return nil
}

// Config is Ligato's etcd.conf. Keys vppmesh reads are the fields; keys
// Ligato knows that have no meaning here are accepted and ignored (listed
// in ignoredKeys); any other key is an error, so that a typo cannot
// silently send the agent to the wrong cluster.
type Config struct {
	Endpoints             []string `json:"endpoints"`
	DialTimeout           Duration `json:"dial-timeout"`
	OpTimeout             Duration `json:"operation-timeout"`
	InsecureTransport     bool     `json:"insecure-transport"`
	InsecureSkipTLSVerify bool     `json:"insecure-skip-tls-verify"`
	CertFile              string   `json:"cert-file"`
	KeyFile               string   `json:"key-file"`
	CAFile                string   `json:"ca-file"`
	// Username and Password are etcd's own client keys (clientv3's
	// configuration uses the same names).
	Username string `json:"username"`
	Password string `json:"password"`
}

// ignoredKeys are Ligato etcd.conf keys for behaviour vppmesh has built in
// (it always resyncs after a reconnect and starts without etcd waiting) or
// does not offer (auto-compaction belongs to the etcd cluster).
var ignoredKeys = []string{"auto-compact", "resync-after-reconnect", "allow-delayed-start",
	"reconnect-interval", "session-ttl", "expand-env-variables"}

// Load reads and checks a file. Every problem names the file.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("etcd config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("etcd config %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("etcd config %s: larger than %d bytes", path, maxFileSize)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("etcd config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads the YAML (or JSON) text of an etcd.conf.
func Parse(data []byte) (*Config, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return &Config{}, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, errors.New("want a YAML mapping of keys (endpoints, dial-timeout, cert-file, ...)")
	}
	for _, k := range ignoredKeys {
		delete(raw, k)
	}
	// "trusted-ca-file" is etcd's own spelling of ca-file.
	if v, ok := raw["trusted-ca-file"]; ok {
		if _, both := raw["ca-file"]; both {
			return nil, errors.New("ca-file and trusted-ca-file both given: give one")
		}
		raw["ca-file"] = v
		delete(raw, "trusted-ca-file")
	}
	clean, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w (known keys: endpoints, dial-timeout, operation-timeout, insecure-transport, insecure-skip-tls-verify, cert-file, key-file, ca-file, username, password)", err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) check() error {
	for i, e := range c.Endpoints {
		e = strings.TrimSpace(e)
		if e == "" {
			return fmt.Errorf("endpoints[%d]: empty", i)
		}
		c.Endpoints[i] = e
	}
	if c.DialTimeout < 0 || c.OpTimeout < 0 {
		return errors.New("dial-timeout and operation-timeout must not be negative")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("cert-file and key-file go together: give both or neither")
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("password without username")
	}
	return nil
}

// UsesTLS tells whether the client talks TLS: Ligato turns it on when any
// certificate file is named, unless insecure-transport is set.
func (c *Config) UsesTLS() bool {
	if c == nil || c.InsecureTransport {
		return false
	}
	return c.CertFile != "" || c.CAFile != "" || c.InsecureSkipTLSVerify
}

// TLS builds the client's TLS configuration (nil without TLS). The files
// are read now, so that a missing or bad one fails at start.
func (c *Config) TLS() (*tls.Config, error) {
	if !c.UsesTLS() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipTLSVerify} //nolint:gosec // the operator asked for it
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert-file %s / key-file %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca-file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Timeout is the dial timeout, or def when the file sets none.
func (c *Config) Timeout(def time.Duration) time.Duration {
	if c == nil || c.DialTimeout <= 0 {
		return def
	}
	return time.Duration(c.DialTimeout)
}

// ClientConfig returns the client configuration the file describes:
// endpoints (DefaultEndpoint when it names none), dial timeout (def when
// unset), TLS and user/password. The caller adds its logger.
func (c *Config) ClientConfig(def time.Duration) (clientv3.Config, error) {
	if c == nil {
		c = &Config{}
	}
	tc, err := c.TLS()
	if err != nil {
		return clientv3.Config{}, err
	}
	eps := append([]string(nil), c.Endpoints...)
	if len(eps) == 0 {
		eps = []string{DefaultEndpoint}
	}
	return clientv3.Config{
		Endpoints:   eps,
		DialTimeout: c.Timeout(def),
		TLS:         tc,
		Username:    c.Username,
		Password:    c.Password,
	}, nil
}
