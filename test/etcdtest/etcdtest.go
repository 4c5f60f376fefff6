// Package etcdtest runs the system's etcd binary (Debian's etcd-server) as
// an external cluster for tests: loopback only, unique free ports, a temp
// data dir, optionally TLS with client-certificate authentication and
// user/password authentication. Certificates are generated per test.
package etcdtest

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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Options shape the cluster.
type Options struct {
	// TLS serves clients over TLS and requires a client certificate
	// signed by the test CA.
	TLS bool
	// User and Password, when set, enable etcd authentication with this
	// user holding the root role.
	User, Password string
}

// Etcd is one running etcd.
type Etcd struct {
	Endpoint string // host:port
	URL      string // http(s)://host:port
	Dir      string
	// PEM files, with TLS: the CA, and a client certificate and key.
	CAFile, CertFile, KeyFile string
	// OtherCAFile is a CA that did not sign the server: a client trusting
	// only it must fail.
	OtherCAFile string
	opts        Options
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs etcd and returns once it answers; it is stopped at cleanup.
// The test is skipped when no etcd binary is installed.
func Start(t *testing.T, o Options) *Etcd {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd binary not installed (Debian package etcd-server)")
	}
	dir := t.TempDir()
	e := &Etcd{Dir: dir, opts: o}
	cport, pport := freePort(t), freePort(t)
	scheme := "http"
	args := []string{"--name", "etcdtest", "--data-dir", filepath.Join(dir, "data"),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", pport),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", pport),
		"--initial-cluster", fmt.Sprintf("etcdtest=http://127.0.0.1:%d", pport),
		"--log-level", "error"}
	if o.TLS {
		scheme = "https"
		e.writeCerts(t)
		args = append(args, "--cert-file", filepath.Join(dir, "server.pem"), "--key-file", filepath.Join(dir, "server-key.pem"),
			"--trusted-ca-file", e.CAFile, "--client-cert-auth")
	}
	e.Endpoint = fmt.Sprintf("127.0.0.1:%d", cport)
	e.URL = scheme + "://" + e.Endpoint
	args = append(args, "--listen-client-urls", e.URL, "--advertise-client-urls", e.URL)
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	cl := e.rootClient(t, false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cl.Status(ctx, e.Endpoint)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Fatalf("etcd did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if o.User != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cl.UserAdd(ctx, o.User, o.Password); err != nil {
			t.Fatal(err)
		}
		if o.User != "root" {
			if _, err := cl.UserAdd(ctx, "root", o.Password); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.UserGrantRole(ctx, "root", "root"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cl.UserGrantRole(ctx, o.User, "root"); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.AuthEnable(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	return e
}

// Client returns a client with the cluster's credentials, closed at cleanup.
func (e *Etcd) Client(t *testing.T) *clientv3.Client {
	return e.rootClient(t, true)
}

func (e *Etcd) rootClient(t *testing.T, auth bool) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: []string{e.URL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if e.opts.TLS {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		caPEM, _ := os.ReadFile(e.CAFile)
		pool.AppendCertsFromPEM(caPEM)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if auth && e.opts.User != "" {
		cfg.Username, cfg.Password = e.opts.User, e.opts.Password
	}
	cl, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// EtcdConf returns the text of a Ligato etcd.conf for this cluster, with
// extra lines appended.
func (e *Etcd) EtcdConf(extra ...string) string {
	lines := []string{"endpoints:", "  - \"" + e.URL + "\"", "dial-timeout: 5000000000", "insecure-transport: " + fmt.Sprint(!e.opts.TLS)}
	if e.opts.TLS {
		lines = append(lines, "cert-file: "+e.CertFile, "key-file: "+e.KeyFile, "ca-file: "+e.CAFile)
	}
	if e.opts.User != "" {
		lines = append(lines, "username: "+e.opts.User, "password: "+e.opts.Password)
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (e *Etcd) writeCerts(t *testing.T) {
	t.Helper()
	ca := newCA(t, "etcdtest CA")
	other := newCA(t, "etcdtest other CA")
	e.CAFile = filepath.Join(e.Dir, "ca.pem")
	e.OtherCAFile = filepath.Join(e.Dir, "other-ca.pem")
	writePEM(t, e.CAFile, "CERTIFICATE", ca.cert.Raw)
	writePEM(t, e.OtherCAFile, "CERTIFICATE", other.cert.Raw)
	server := issue(t, ca, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	writePEM(t, filepath.Join(e.Dir, "server.pem"), "CERTIFICATE", server.cert.Raw)
	writeKey(t, filepath.Join(e.Dir, "server-key.pem"), server.key)
	client := issue(t, ca, "vppmesh-agent", x509.ExtKeyUsageClientAuth)
	e.CertFile = filepath.Join(e.Dir, "client.pem")
	e.KeyFile = filepath.Join(e.Dir, "client-key.pem")
	writePEM(t, e.CertFile, "CERTIFICATE", client.cert.Raw)
	writeKey(t, e.KeyFile, client.key)
}

func newSerial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t *testing.T, cn string) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return keyPair{cert: cert, key: key}
}

func issue(t *testing.T, ca keyPair, cn string, usage x509.ExtKeyUsage) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return keyPair{cert: cert, key: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t *testing.T, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}
