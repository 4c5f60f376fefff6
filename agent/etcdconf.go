package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"

	"github.com/vppmesh/vppmesh/pkg/etcdconf"
	"github.com/vppmesh/vppmesh/plugins/orchestrator"
)

// govppConf is the part of Ligato's govpp.conf vppmesh reads; its other
// keys (timeouts, health-check tuning) are accepted and ignored.
type govppConf struct {
	BinapiSocketPath string `json:"binapi-socket-path"`
	StatsSocketPath  string `json:"stats-socket-path"`
}

// httpConf is the part of Ligato's http.conf (cn-infra rest) vppmesh reads.
type httpConf struct {
	Endpoint string `json:"endpoint"`
}

// logsConf is the part of Ligato's logs.conf vppmesh reads.
type logsConf struct {
	DefaultLevel string `json:"default-level"`
}

type configFiles struct {
	etcdPath string
	etcd     *etcdconf.Config
	govpp    govppConf
	http     httpConf
	logs     logsConf
	used     []string
}

// pickFunc chooses a file: the flag's value, the environment's (env may
// list alternatives separated by '|'), or the file of that name in
// --config-dir when it exists; "" when none.
type pickFunc func(flagName, flagVal, env, base string) (path string)

// loadFiles reads Ligato's configuration files. A file that was named or
// found but cannot be read or parsed is an error naming it.
func loadFiles(configDir string, pick pickFunc, etcdFlag, govppFlag, httpFlag, logsFlag string) (configFiles, error) {
	var f configFiles
	if configDir != "" {
		st, err := os.Stat(configDir)
		if err != nil {
			return f, fmt.Errorf("--config-dir: %w", err)
		}
		if !st.IsDir() {
			return f, fmt.Errorf("--config-dir %s: not a directory", configDir)
		}
	}
	if p := pick("etcd-config", etcdFlag, etcdconf.EnvVar, "etcd.conf"); p != "" {
		c, err := etcdconf.Load(p)
		if err != nil {
			return f, err
		}
		// Certificates are read now so that a bad one fails at start.
		if _, err := c.TLS(); err != nil {
			return f, fmt.Errorf("etcd config %s: %w", p, err)
		}
		f.etcdPath, f.etcd = p, c
		f.used = append(f.used, p)
	}
	for _, x := range []struct {
		flag, val, env, base string
		into                 any
	}{
		{"govpp-config", govppFlag, "GOVPP_CONFIG|GOVPPMUX_CONFIG", "govpp.conf", &f.govpp},
		{"http-config", httpFlag, "HTTP_CONFIG", "http.conf", &f.http},
		{"logs-config", logsFlag, "LOGS_CONFIG", "logs.conf", &f.logs},
	} {
		p := pick(x.flag, x.val, x.env, x.base)
		if p == "" {
			continue
		}
		if err := loadYAML(p, x.into); err != nil {
			return f, err
		}
		f.used = append(f.used, p)
	}
	return f, nil
}

// loadYAML reads a small YAML file into v; unknown keys are Ligato
// settings vppmesh has no use for and are ignored.
func loadYAML(path string, v any) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, 1<<20+1))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > 1<<20 {
		return fmt.Errorf("config file %s: larger than 1 MiB", path)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("config file %s: parse yaml: %w", path, err)
	}
	if js = bytes.TrimSpace(js); len(js) == 0 || string(js) == "null" {
		return nil
	}
	if err := json.Unmarshal(js, v); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// etcdClient connects to etcd: the embedded one, or the external cluster
// with Ligato's etcd.conf settings (TLS, client certificate, user and
// password, dial timeout) when a file gave them.
func (a *Agent) etcdClient(ctx context.Context, endpoints []string) (*clientv3.Client, error) {
	if a.etcd != nil || a.opts.Etcd == nil {
		return orchestrator.NewClient(ctx, endpoints, 5*time.Second)
	}
	cfg, err := a.opts.Etcd.ClientConfig(5 * time.Second)
	if err != nil {
		return nil, fmt.Errorf("etcd config %s: %w", a.opts.EtcdConfigFile, err)
	}
	cfg.Endpoints = endpoints
	a.log.Info("external etcd from config file", "file", a.opts.EtcdConfigFile, "endpoints", endpoints,
		"tls", cfg.TLS != nil, "client_cert", a.opts.Etcd.CertFile != "", "user", a.opts.Etcd.Username != "")
	return orchestrator.NewClientConfig(ctx, cfg)
}
