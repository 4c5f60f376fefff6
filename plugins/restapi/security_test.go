package restapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	interfaces "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// secEnv is a server whose VPP CLI records what it was asked to run.
type secEnv struct {
	srv  *httptest.Server
	cmds atomic.Int32
}

func newSecEnv(t *testing.T, sec Security) *secEnv {
	t.Helper()
	e := &secEnv{}
	s, err := New(Options{
		Scheduler: newFake(),
		VPPCLI: func(ctx context.Context, cmd string) (string, error) {
			e.cmds.Add(1)
			return "ok", nil
		},
		Resync:   func(ctx context.Context) error { return nil },
		Security: sec,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *secEnv) do(t *testing.T, method, path, ctype, body string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestCrossSitePostRefused is the attack of issue 14: a web page on the
// host POSTs text/plain (no preflight) to /vpp/command. None of the
// variants may reach the VPP CLI.
func TestCrossSitePostRefused(t *testing.T) {
	e := newSecEnv(t, Security{})
	const path = PathVPPCommand + "?command=create+vhost-user+socket+/tmp/x+server"
	attacks := []struct {
		name, ctype, body string
		hdr               map[string]string
		want              int
	}{
		{"text/plain with foreign origin", "text/plain", "x", map[string]string{"Origin": "http://evil.example"}, 403},
		{"text/plain, origin stripped", "text/plain", "x", nil, 415},
		{"form post", "application/x-www-form-urlencoded", "a=b", nil, 415},
		{"multipart", "multipart/form-data; boundary=x", "--x--", nil, 415},
		{"DNS rebinding host", "application/json", "{}", map[string]string{"Host": "rebind.example:9191"}, 421},
		{"json with foreign origin", "application/json", "{}", map[string]string{"Origin": "http://evil.example"}, 403},
		{"null origin", "application/json", "{}", map[string]string{"Origin": "null"}, 403},
		{"Sec-Fetch-Site cross-site", "application/json", "{}", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"preflight", "", "", map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, 403},
	}
	for _, a := range attacks {
		method := http.MethodPost
		if a.name == "preflight" {
			method = http.MethodOptions
		}
		if got := e.do(t, method, path, a.ctype, a.body, a.hdr); got != a.want {
			t.Errorf("%s: code %d, want %d", a.name, got, a.want)
		}
		if e.do(t, method, PathResync, a.ctype, a.body, a.hdr) == 200 {
			t.Errorf("%s: resync ran", a.name)
		}
	}
	if n := e.cmds.Load(); n != 0 {
		t.Fatalf("VPP CLI ran %d times for cross-site requests", n)
	}
	// The operator's own tools still work: no Origin, or the same origin.
	if got := e.do(t, http.MethodPost, path, "application/json", "", nil); got != 200 {
		t.Fatalf("plain JSON POST: %d", got)
	}
	if got := e.do(t, http.MethodPost, path, "application/json; charset=utf-8", "", map[string]string{"Origin": e.srv.URL}); got != 200 {
		t.Fatalf("same-origin JSON POST: %d", got)
	}
	if got := e.do(t, http.MethodGet, PathStatus, "", "", map[string]string{"Host": "localhost"}); got != 200 {
		t.Fatalf("GET with Host localhost: %d", got)
	}
	if e.cmds.Load() != 2 {
		t.Fatalf("VPP CLI ran %d times, want 2", e.cmds.Load())
	}
}

func TestTokenAndBasicAuth(t *testing.T) {
	e := newSecEnv(t, Security{BearerToken: "s3cr3t-token", BasicAuth: map[string]string{"ops": "pw"}})
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"none", nil, 401},
		{"wrong token", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"token prefix", map[string]string{"Authorization": "Bearer s3cr3t"}, 401},
		{"token", map[string]string{"Authorization": "Bearer s3cr3t-token"}, 200},
		{"basic wrong", map[string]string{"Authorization": "Basic b3BzOnd4"}, 401}, // ops:wx
		{"basic", map[string]string{"Authorization": "Basic b3BzOnB3"}, 200},       // ops:pw
	} {
		if got := e.do(t, http.MethodGet, PathSchedulerStatus, "", "", c.hdr); got != c.want {
			t.Errorf("GET status, %s: %d, want %d", c.name, got, c.want)
		}
		if got := e.do(t, http.MethodPost, PathVPPCommand+"?command=show+version", "application/json", "", c.hdr); got != c.want {
			t.Errorf("POST command, %s: %d, want %d", c.name, got, c.want)
		}
	}
	if got := e.do(t, http.MethodGet, PathHealthz, "", "", nil); got != 200 {
		t.Errorf("healthz needs no credentials, got %d", got)
	}
	if e.cmds.Load() != 2 {
		t.Fatalf("VPP CLI ran %d times, want 2 (authenticated only)", e.cmds.Load())
	}
}

func TestVPPCommandDisabled(t *testing.T) {
	e := newSecEnv(t, Security{DisableVPPCommand: true})
	if got := e.do(t, http.MethodPost, PathVPPCommand+"?command=show+version", "application/json", "", nil); got != 403 {
		t.Fatalf("disabled /vpp/command: %d, want 403", got)
	}
	if e.cmds.Load() != 0 {
		t.Fatal("VPP CLI ran while disabled")
	}
}

func TestReadSecretFileRefusesWideMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	os.WriteFile(p, []byte("tok\n"), 0o644)
	os.Chmod(p, 0o644)
	if _, err := ReadSecretFile(p); err == nil {
		t.Fatal("a world-readable token file was accepted")
	}
	os.Chmod(p, 0o600)
	if v, err := ReadSecretFile(p); err != nil || v != "tok" {
		t.Fatalf("ReadSecretFile: %q, %v", v, err)
	}
	os.WriteFile(p, []byte("ops:pw\n# c\nbad\n"), 0o600)
	if _, err := ReadBasicAuthFile(p); err == nil || !strings.Contains(err.Error(), ":3") {
		t.Fatalf("bad basic-auth line: %v", err)
	}
}

// TestClientCertTLS serves HTTPS requiring a client certificate: without
// one the handshake fails, with one the API answers.
func TestClientCertTLS(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(n int64) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{leaf(2)}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	var ran atomic.Int32
	s, err := New(Options{Addr: "127.0.0.1:0", Scheduler: newFake(), Security: Security{TLS: srvTLS},
		VPPCLI: func(ctx context.Context, cmd string) (string, error) { ran.Add(1); return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	post := func(certs []tls.Certificate) (int, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}, Timeout: 5 * time.Second}
		resp, err := c.Post("https://"+s.Addr()+PathVPPCommand+"?command=x", "application/json", nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post(nil); err == nil {
		t.Fatalf("no client certificate: code %d, want a failed handshake", code)
	}
	if code, err := post([]tls.Certificate{leaf(3)}); err != nil || code != 200 {
		t.Fatalf("with a client certificate: %d, %v", code, err)
	}
	if ran.Load() != 1 {
		t.Fatalf("VPP CLI ran %d times, want 1", ran.Load())
	}
}

// TestSecretsRedactedForEveryReader: values reach handlers through the
// scheduler wrapper, so every endpoint (and any future renderer) sees the
// secret redacted, while the scheduler's own values stay intact.
func TestSecretsRedactedForEveryReader(t *testing.T) {
	f := newFake()
	m := f.status[1].Value.(*interfaces.Interface)
	m.GetMemif().Secret = "hunter2-memif"
	f.retrieve = func(ctx context.Context) ([]kvscheduler.RetrievedValue, error) {
		return []kvscheduler.RetrievedValue{{Key: keyMemif, Descriptor: "vpp-interface", Value: proto.Clone(m)}}, nil
	}
	s, err := New(Options{Scheduler: f, Security: Security{DisableVPPCommand: true},
		VPPCLI: func(context.Context, string) (string, error) { return "ran", nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{PathValues, PathValues + "?key=" + keyMemif, PathVPPDump, PathLigatoDump + "?key-prefix=config/vpp/v2/interfaces/&view=NB"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), `"secret":"(redacted)"`) {
			t.Errorf("GET %s: %s", path, b)
		}
	}
	if m.GetMemif().GetSecret() != "hunter2-memif" {
		t.Error("redaction changed the scheduler's own value")
	}
	if _, err := s.opts.VPPCLI(context.Background(), "show version"); !errors.Is(err, ErrVPPCommandDisabled) {
		t.Errorf("disabled VPP CLI function: %v", err)
	}
}

// TestReadTimeoutCutsSlowClient: a client that sends headers and then
// trickles nothing of its body is disconnected by the read timeout instead
// of holding a connection and a goroutine forever.
func TestReadTimeoutCutsSlowClient(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", Scheduler: newFake(), Security: Security{ReadTimeout: 300 * time.Millisecond},
		Resync: func(context.Context) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /scheduler/resync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a stalled request open (no read timeout)")
	}
}
