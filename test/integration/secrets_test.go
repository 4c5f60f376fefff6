package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/agent"
	"github.com/vppmesh/vppmesh/test/vpptarget"
)

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverShown configures memifs with a secret, at debug log level
// everywhere (agent, govpp, vppsim), and greps every output the agent has
// for it: its logs, every REST endpoint, and the status keys in etcd.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "Sec-9f3a ! {x} Pw"
	logs := &syncBuf{}
	debug := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	routeGovpp(t)
	govppSink.set(debug.Handler())
	t.Cleanup(func() { govppSink.set(logger(t).Handler()) })

	dir := t.TempDir()
	e := &env{t: t, dir: dir, log: debug}
	e.vpp = vpptarget.Start(t, vpptarget.Sim, vpptarget.Options{Logger: debug, SimNoPackets: true})
	e.opts = agent.Options{
		Label: label, VPPSocket: e.vpp.APISocket,
		EtcdListen: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), EtcdPeer: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		HTTPAddr: "127.0.0.1:0", DataDir: filepath.Join(dir, "etcd"), HealthInterval: 200 * time.Millisecond,
		StatsInterval: 100 * time.Millisecond, CountersPublishInterval: 200 * time.Millisecond, LogLevel: slog.LevelDebug,
	}
	e.startAgent()

	sock := filepath.Join(dir, "memif.sock")
	e.put("config/vpp/v2/interfaces/m1", fmt.Sprintf(`{"name":"m1","type":"MEMIF","enabled":true,"memif":{"master":true,"id":1,"socket_filename":%q,"secret":%q}}`, sock, secret))
	e.put("config/vppmesh/v1/xconnect/xs", fmt.Sprintf(`{"name":"xs","a":{"memif":{"master":true,"id":2,"socket_filename":%q,"secret":%q}},"b":{"memif":{"master":true,"id":3,"socket_filename":%q}}}`, sock, secret, sock))
	// A value that fails to parse right after the secret.
	e.put("config/vpp/v2/interfaces/m2", fmt.Sprintf(`{"name":"m2","type":"MEMIF","memif":{"secret":%q,"id":"x"}}`, secret))
	e.put("config/vpp/v2/interfaces/m3", fmt.Sprintf(`{"name":"m3","type":"MEMIF","memif":{"secret":%q`, secret))
	e.waitState("config/vpp/v2/interfaces/m1", "CONFIGURED")
	e.waitState("config/vppmesh/v1/xconnect/xs", "CONFIGURED")
	e.waitState("config/vpp/v2/interfaces/m3", "INVALID")
	time.Sleep(300 * time.Millisecond) // a counters publish period

	outputs := map[string]string{}
	for _, path := range []string{"/scheduler/status", "/values", "/vpp/dump", "/scheduler/dump", "/scheduler/txn-history", "/status", "/vpp/counters", "/metrics"} {
		resp, err := http.Get("http://" + e.agent.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		outputs["GET "+path] = string(b)
	}
	kvs, err := e.etcd.Get(context.Background(), "/vnf-agent/", clientv3WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs.Kvs {
		if strings.Contains(string(kv.Key), "/status/") || strings.Contains(string(kv.Key), "/oper") {
			outputs["etcd "+string(kv.Key)] = string(kv.Value)
		}
	}
	outputs["logs"] = logs.String()

	for where, out := range outputs {
		for _, leak := range []string{secret, "Sec-9f3a"} {
			if i := strings.Index(out, leak); i >= 0 {
				lo, hi := max(0, i-120), min(len(out), i+60)
				t.Errorf("%s shows the memif secret: ...%s...", where, out[lo:hi])
			}
		}
	}
	// The checks saw the real thing: values are rendered, redacted.
	if !strings.Contains(outputs["GET /values"], `"secret":"(redacted)"`) {
		t.Errorf("/values does not show the redacted secret field")
	}
	if !strings.Contains(outputs["logs"], "memif_create") {
		t.Errorf("debug logs do not show govpp's memif_create, so they were not checked")
	}
}

func clientv3WithPrefix() clientv3.OpOption { return clientv3.WithPrefix() }
