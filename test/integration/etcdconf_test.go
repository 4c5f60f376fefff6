package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/agent"
	"github.com/vppmesh/vppmesh/test/etcdtest"
	"github.com/vppmesh/vppmesh/test/vppsim"
)

// externalAgent starts vppsim and an agent whose options come from
// ParseFlags with ETCD_CONFIG pointing at a Ligato etcd.conf, as a Ligato
// user's deployment sets it.
func externalAgent(t *testing.T, conf string) (*agent.Agent, agent.Options) {
	t.Helper()
	dir := t.TempDir()
	sim, err := vppsim.Start(context.Background(), vppsim.Config{Socket: filepath.Join(dir, "api.sock"), Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	confPath := filepath.Join(dir, "etcd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ETCD_CONFIG", confPath)
	t.Setenv("ETCD_ENDPOINTS", "")
	t.Setenv("MICROSERVICE_LABEL", "")
	opts, err := agent.ParseFlags("test", []string{
		"-microservice-label", label, // Ligato's spelling, one dash
		"--vpp-socket", filepath.Join(dir, "api.sock"),
		"--vpp-stats-socket", filepath.Join(dir, "stats.sock"),
		"--http", "127.0.0.1:0",
		// Where an embedded etcd would go: it must not start.
		"--data-dir", filepath.Join(dir, "embedded"),
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.HealthInterval = 200 * time.Millisecond
	a := agent.New(opts, logger(t))
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if _, err := os.Stat(filepath.Join(dir, "embedded")); err == nil {
		t.Fatal("the agent started an embedded etcd although ETCD_CONFIG names an external one")
	}
	return a, opts
}

// configuredIn waits until the agent reports key CONFIGURED in cl's etcd.
func configuredIn(t *testing.T, cl *clientv3.Client, key string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := cl.Get(context.Background(), root("status/"+strings.TrimPrefix(key, "config/")))
		if err == nil && len(resp.Kvs) == 1 {
			var st struct{ State, Error string }
			_ = json.Unmarshal(resp.Kvs[0].Value, &st)
			if st.State == "CONFIGURED" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not CONFIGURED in the external etcd (last read err %v)", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEtcdConfigExternalPlain(t *testing.T) {
	ext := etcdtest.Start(t, etcdtest.Options{})
	cl := ext.Client(t)
	a, opts := externalAgent(t, ext.EtcdConf("auto-compact: 0", "resync-after-reconnect: false"))
	if len(opts.EtcdEndpoints) != 1 || opts.EtcdEndpoints[0] != ext.URL || opts.Label != label {
		t.Fatalf("options from etcd.conf: endpoints %v label %q", opts.EtcdEndpoints, opts.Label)
	}
	key := "config/vpp/v2/interfaces/loop1"
	if _, err := cl.Put(context.Background(), root(key), `{"name":"loop1","type":"SOFTWARE_LOOPBACK","enabled":true}`); err != nil {
		t.Fatal(err)
	}
	configuredIn(t, cl, key)
	if !a.Ready() {
		t.Fatal("agent not ready")
	}
}

func TestEtcdConfigExternalTLSClientCert(t *testing.T) {
	ext := etcdtest.Start(t, etcdtest.Options{TLS: true})
	cl := ext.Client(t)
	_, opts := externalAgent(t, ext.EtcdConf())
	if opts.Etcd == nil || !opts.Etcd.UsesTLS() {
		t.Fatalf("etcd.conf TLS not read: %+v", opts.Etcd)
	}
	key := "config/vpp/v2/interfaces/loop2"
	if _, err := cl.Put(context.Background(), root(key), `{"name":"loop2","type":"SOFTWARE_LOOPBACK"}`); err != nil {
		t.Fatal(err)
	}
	configuredIn(t, cl, key)
}

func TestEtcdConfigExternalTLSWrongCA(t *testing.T) {
	ext := etcdtest.Start(t, etcdtest.Options{TLS: true})
	conf := strings.Replace(ext.EtcdConf("dial-timeout: 1s"), "dial-timeout: 5000000000\n", "", 1)
	conf = strings.Replace(conf, "ca-file: "+ext.CAFile, "ca-file: "+ext.OtherCAFile, 1)
	dir := t.TempDir()
	p := filepath.Join(dir, "etcd.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := agent.ParseFlags("test", []string{"--etcd-config", p, "--http", "127.0.0.1:0",
		"--vpp-socket", filepath.Join(dir, "api.sock"), "--data-dir", filepath.Join(dir, "embedded")})
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(opts, logger(t))
	err = a.Start(context.Background())
	if err == nil {
		a.Close()
		t.Fatal("agent started against an etcd whose certificate its CA did not sign")
	}
	if !strings.Contains(err.Error(), ext.URL) {
		t.Fatalf("error does not name the endpoint: %v", err)
	}
}

func TestEtcdConfigExternalUserPassword(t *testing.T) {
	ext := etcdtest.Start(t, etcdtest.Options{User: "vppmesh", Password: "s3cret-pw"})
	cl := ext.Client(t)
	_, opts := externalAgent(t, ext.EtcdConf())
	if opts.Etcd.Username != "vppmesh" {
		t.Fatalf("username not read: %+v", opts.Etcd)
	}
	key := "config/vpp/v2/interfaces/loop3"
	if _, err := cl.Put(context.Background(), root(key), `{"name":"loop3","type":"SOFTWARE_LOOPBACK"}`); err != nil {
		t.Fatal(err)
	}
	configuredIn(t, cl, key)
}
