package orchestrator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestEmbeddedRefusesCrossSiteWrite is the attack of issue 14: a web page
// POSTs text/plain (no CORS preflight) to the JSON gateway, with a foreign
// Origin and a DNS-rebinding Host. No key may be written, and no CORS
// header may let the page read an answer.
func TestEmbeddedRefusesCrossSiteWrite(t *testing.T) {
	site := newEtcdSite(t)
	e := site.start(t)
	cli := newTestClient(t, e.Endpoints())
	// {"key":"a2V5","value":"cHduZWQ="} puts key "key" = "pwned".
	body := `{"key":"a2V5","value":"cHduZWQ="}`
	for _, host := range []string{fmt.Sprintf("rebind.example:%d", site.cport), fmt.Sprintf("127.0.0.1:%d", site.cport)} {
		for _, path := range []string{"/v3/kv/put", "/v3beta/kv/put", "/v3alpha/kv/put"} {
			req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d%s", site.cport, path), strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = host
			req.Header.Set("Content-Type", "text/plain")
			req.Header.Set("Origin", "http://evil.example")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("POST %s Host %s: status 200, want a refusal", path, host)
			}
			if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Errorf("POST %s Host %s: Access-Control-Allow-Origin %q, want none", path, host, v)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "key")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("cross-site POST wrote key=%q", resp.Kvs[0].Value)
	}
	// The Host check itself: loopback names pass, a rebinding name does not.
	for host, want := range map[string]int{
		fmt.Sprintf("localhost:%d", site.cport):      http.StatusOK,
		fmt.Sprintf("127.0.0.1:%d", site.cport):      http.StatusOK,
		fmt.Sprintf("rebind.example:%d", site.cport): http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/health", site.cport), nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /health Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// A preflight gets no CORS grant either.
	req, _ := http.NewRequest(http.MethodOptions, fmt.Sprintf("http://127.0.0.1:%d/v3/kv/range", site.cport), nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if v := r2.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("preflight: Access-Control-Allow-Origin %q, want none", v)
	}
}

// shortTempDir keeps unix socket paths under the 108-byte limit.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestEmbeddedUnixSocket(t *testing.T) {
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "run", "etcd.sock")
	// A live listener at the path must not be taken over.
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	live, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cfg := EmbeddedConfig{DataDir: filepath.Join(dir, "data"), ClientURL: "unix://" + sock,
		PeerURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), Logger: testLogger()}
	if e, err := StartEmbedded(context.Background(), cfg); err == nil {
		e.Close()
		t.Fatal("StartEmbedded took over a live socket")
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Fatalf("the live listener was disturbed: %v", err)
	} else {
		c.Close()
	}
	live.Close() // Go removes its own socket file on Close
	// A stale socket (nobody listening) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	e, err := StartEmbedded(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	for _, p := range []string{sock} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: socket mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	cli := newTestClient(t, e.Endpoints())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put over the unix socket: %v", err)
	}
}

func TestEnsurePrivateDirTightensExisting(t *testing.T) {
	d := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(d); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(d)
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v after EnsurePrivateDir, want 0700", fi.Mode().Perm())
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(d, link); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if err := EnsurePrivateDir(f); err == nil {
		t.Error("EnsurePrivateDir accepted a regular file")
	}
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
type testPKI struct{ ca, srvCert, srvKey, cliCert, cliKey, otherCert, otherKey string }

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	mk := func(name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		kb, _ := x509.MarshalECPrivateKey(key)
		cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
		return cert, key, cf, kf
	}
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sec test ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	ca, caKey, caFile, _ := mk("ca", caT, nil, nil)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	}
	var p testPKI
	p.ca = caFile
	_, _, p.srvCert, p.srvKey = mk("server", leaf(2, "server", x509.ExtKeyUsageServerAuth), ca, caKey)
	_, _, p.cliCert, p.cliKey = mk("client", leaf(3, "client", x509.ExtKeyUsageClientAuth), ca, caKey)
	// A certificate from another CA (self-signed).
	_, _, p.otherCert, p.otherKey = mk("other", leaf(4, "other", x509.ExtKeyUsageClientAuth), nil, nil)
	return p
}

func TestEmbeddedTLSClientCertAuth(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	cport := freePort(t)
	e, err := StartEmbedded(context.Background(), EmbeddedConfig{
		DataDir:   filepath.Join(dir, "data"),
		ClientURL: fmt.Sprintf("https://127.0.0.1:%d", cport),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		TLS:       &EmbeddedTLS{CertFile: pki.srvCert, KeyFile: pki.srvKey, TrustedCAFile: pki.ca},
		Logger:    testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	caPEM, _ := os.ReadFile(pki.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	put := func(certFile, keyFile string) error {
		tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if certFile != "" {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), TLS: tc, DialTimeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = cli.Put(ctx, "tls-key", "v")
		return err
	}
	if err := put("", ""); err == nil {
		t.Error("a client without a certificate could write")
	}
	if err := put(pki.otherCert, pki.otherKey); err == nil {
		t.Error("a client with a certificate of another CA could write")
	}
	if err := put(pki.cliCert, pki.cliKey); err != nil {
		t.Errorf("a client with a certificate of the trusted CA: %v", err)
	}
}

func TestEmbeddedRejectsBadClientURLs(t *testing.T) {
	for _, u := range []string{"unix://rel/path.sock", "unix:///a/../b.sock", "ftp://127.0.0.1:1", "https://127.0.0.1:1"} {
		_, err := StartEmbedded(context.Background(), EmbeddedConfig{DataDir: t.TempDir(), ClientURL: u})
		if err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}
