package restapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// Security is the REST API's protection. The zero value still refuses
// cross-site requests (foreign Origin, DNS-rebinding Host, state changes
// without application/json); credentials and TLS are opt-in.
type Security struct {
	// BearerToken, when set, is accepted as "Authorization: Bearer <token>".
	BearerToken string
	// BasicAuth maps user names to passwords accepted with HTTP basic auth.
	BasicAuth map[string]string
	// TLS serves HTTPS; with ClientCAs set and ClientAuth at
	// tls.RequireAndVerifyClientCert a verified client certificate is
	// itself the credential.
	TLS *tls.Config
	// AllowedHosts are extra host names accepted in the Host header and in
	// Origin (besides IP literals and "localhost").
	AllowedHosts []string
	// DisableVPPCommand turns POST /vpp/command off: it runs any VPP CLI.
	DisableVPPCommand bool
	// Server timeouts (defaults: 30s read, 5 min write so that a long
	// resync can answer, 2 min idle).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// authRequired reports whether requests must carry credentials.
func (s Security) authRequired() bool {
	return s.BearerToken != "" || len(s.BasicAuth) > 0 || s.clientCertAuth()
}

func (s Security) clientCertAuth() bool {
	return s.TLS != nil && s.TLS.ClientCAs != nil && s.TLS.ClientAuth == tls.RequireAndVerifyClientCert
}

// vppCLIPaths run VPP CLI: Ligato's /vpp/command and vppmesh's /vpp/cli.
// Options.harden also disables the CLI function itself, for any other path.
var vppCLIPaths = map[string]bool{PathVPPCommand: true, "/vpp/cli": true}

// unauthenticated paths: probes must work for kubelet and systemd, and
// they tell nothing but "alive" and "ready".
var openPaths = map[string]bool{PathHealthz: true, PathReadyz: true}

// secure wraps the API with the checks every request passes, in order:
// Host (DNS rebinding), Origin and Sec-Fetch-Site (cross-site requests
// from web pages on the host), method and Content-Type of state-changing
// calls (a "simple" cross-site POST cannot carry application/json), and
// credentials.
func (s *Server) secure(next http.Handler) http.Handler {
	sec := s.opts.Security
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := sec.checkHost(r.Host); err != nil {
			s.writeError(w, r, http.StatusMisdirectedRequest, err)
			return
		}
		if err := sec.checkOrigin(r); err != nil {
			s.writeError(w, r, http.StatusForbidden, err)
			return
		}
		if r.Method == http.MethodOptions {
			// No CORS: a preflight is answered without any grant.
			s.writeError(w, r, http.StatusForbidden, errors.New("cross-origin requests are not allowed"))
			return
		}
		if !openPaths[r.URL.Path] && sec.authRequired() {
			if err := sec.authenticate(r); err != nil {
				if sec.BearerToken != "" {
					w.Header().Set("WWW-Authenticate", `Bearer realm="vppmesh"`)
				} else if len(sec.BasicAuth) > 0 {
					w.Header().Set("WWW-Authenticate", `Basic realm="vppmesh"`)
				}
				s.writeError(w, r, http.StatusUnauthorized, err)
				return
			}
		}
		if r.Method == http.MethodPost {
			if err := checkJSONBody(r); err != nil {
				s.writeError(w, r, http.StatusUnsupportedMediaType, err)
				return
			}
		}
		if sec.DisableVPPCommand && vppCLIPaths[r.URL.Path] {
			s.writeError(w, r, http.StatusForbidden, errors.New("POST /vpp/command is disabled on this agent (--http-disable-vpp-command)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkHost accepts IP literals, "localhost" and AllowedHosts. A web page
// that rebinds its own name to 127.0.0.1 still sends its own name.
func (s Security) checkHost(hostport string) error {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if s.hostAllowed(h) {
		return nil
	}
	return fmt.Errorf("host %q is not allowed (DNS rebinding protection); use an IP address, localhost or a name given with --http-allowed-host", hostport)
}

func (s Security) hostAllowed(h string) bool {
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil || strings.EqualFold(h, "localhost") {
		return true
	}
	for _, a := range s.AllowedHosts {
		if strings.EqualFold(a, h) {
			return true
		}
	}
	return false
}

// checkOrigin refuses requests a browser marks as coming from another site.
// Non-browser clients (curl, agentctl, Prometheus) send no Origin.
func (s Security) checkOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return fmt.Errorf("cross-site request refused (Sec-Fetch-Site: %s)", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q refused", origin)
	}
	if !strings.EqualFold(u.Host, r.Host) || !s.hostAllowed(u.Hostname()) {
		return fmt.Errorf("origin %q refused: only same-origin requests are allowed", origin)
	}
	return nil
}

// checkJSONBody requires Content-Type application/json on state-changing
// requests. Browsers send text/plain, form and multipart bodies cross-site
// without a preflight; application/json needs one, and it is refused.
func checkJSONBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%s %s: Content-Type %q refused, want application/json", r.Method, r.URL.Path, ct)
	}
	return nil
}

// authenticate accepts a verified client certificate, the bearer token or a
// basic-auth user. Comparisons are constant-time.
func (s Security) authenticate(r *http.Request) error {
	if s.clientCertAuth() && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return nil
	}
	auth := r.Header.Get("Authorization")
	if s.BearerToken != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && equalSecret(strings.TrimSpace(tok), s.BearerToken) {
			return nil
		}
	}
	if len(s.BasicAuth) > 0 {
		if user, pass, ok := r.BasicAuth(); ok {
			if want, known := s.BasicAuth[user]; known && equalSecret(pass, want) {
				return nil
			}
		}
	}
	if auth == "" {
		return errors.New("authentication required")
	}
	return errors.New("invalid credentials")
}

// equalSecret compares hashes so that neither content nor length leaks
// through timing.
func equalSecret(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// ReadSecretFile reads a token or password file: it must not be readable by
// group or others, and its content is trimmed of surrounding whitespace.
func ReadSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s: mode %v lets other users read the secret; chmod 600 it", path, fi.Mode().Perm())
	}
	if fi.Size() > 64<<10 {
		return "", fmt.Errorf("%s: %d bytes, too large for a secret", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return v, nil
}

// ReadBasicAuthFile reads "user:password" lines (blank lines and # comments
// skipped) from a file only its owner can read.
func ReadBasicAuthFile(path string) (map[string]string, error) {
	content, err := ReadSecretFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for i, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, p, ok := strings.Cut(line, ":")
		if !ok || u == "" || p == "" {
			return nil, fmt.Errorf("%s:%d: want user:password", path, i+1)
		}
		users[u] = p
	}
	return users, nil
}

// ServerTLS builds the HTTPS config: certificate and key, and with clientCA
// a required, verified client certificate.
func ServerTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("REST TLS certificate: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("REST client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("REST client CA %s: no PEM certificate", clientCA)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Redacted replaces secrets in what the API shows.
const Redacted = "(redacted)"

// RedactSecrets returns m, or a copy of m with every non-empty string field
// named "secret" (memif secrets, at any depth) replaced by Redacted. Values
// without one are returned as they are, without copying.
func RedactSecrets(m proto.Message) proto.Message {
	if m == nil || !m.ProtoReflect().IsValid() || !hasSecret(m.ProtoReflect()) {
		return m
	}
	c := proto.Clone(m)
	redactMsg(c.ProtoReflect())
	return c
}

func isSecretField(fd protoreflect.FieldDescriptor) bool {
	return fd.Name() == "secret" && fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap()
}

// hasSecret reports whether a secret is set anywhere in m.
func hasSecret(m protoreflect.Message) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case isSecretField(fd):
			found = v.String() != ""
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = hasSecret(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				found = hasSecret(mv.Message())
				return !found
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			found = hasSecret(v.Message())
		}
		return !found
	})
	return found
}

func redactMsg(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case isSecretField(fd):
			if v.String() != "" {
				m.Set(fd, protoreflect.ValueOfString(Redacted))
			}
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				redactMsg(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				redactMsg(mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			redactMsg(v.Message())
		}
		return true
	})
}

// redactingScheduler hands every handler values whose secrets are already
// redacted, so no rendering path (vppmesh's or Ligato's) can show one.
// Embedding keeps every other method of Scheduler.
type redactingScheduler struct{ Scheduler }

func (r redactingScheduler) Status() []kvscheduler.ValueStatus {
	// A copy: the scheduler may hand out a slice it keeps.
	in := r.Scheduler.Status()
	if in == nil {
		return nil
	}
	sts := make([]kvscheduler.ValueStatus, len(in))
	copy(sts, in)
	for i := range sts {
		sts[i].Value = RedactSecrets(sts[i].Value)
	}
	return sts
}

func (r redactingScheduler) StatusOf(key string) (kvscheduler.ValueStatus, bool) {
	st, ok := r.Scheduler.StatusOf(key)
	st.Value = RedactSecrets(st.Value)
	return st, ok
}

func (r redactingScheduler) Retrieve(ctx context.Context) ([]kvscheduler.RetrievedValue, error) {
	got, err := r.Scheduler.Retrieve(ctx)
	if got == nil {
		return nil, err
	}
	vals := make([]kvscheduler.RetrievedValue, len(got))
	copy(vals, got)
	for i := range vals {
		vals[i].Value = RedactSecrets(vals[i].Value)
	}
	return vals, err
}

// ErrVPPCommandDisabled answers VPP CLI requests when
// Security.DisableVPPCommand is set.
var ErrVPPCommandDisabled = errors.New("the VPP CLI passthrough is disabled on this agent (--http-disable-vpp-command)")

// harden applies the options that wrap other options: redaction of every
// value the API reads, and the VPP CLI switch (whatever path calls it).
func (o *Options) harden() {
	if o.Scheduler != nil {
		if _, done := o.Scheduler.(redactingScheduler); !done {
			o.Scheduler = redactingScheduler{o.Scheduler}
		}
	}
	if o.Security.DisableVPPCommand && o.VPPCLI != nil {
		o.VPPCLI = func(context.Context, string) (string, error) { return "", ErrVPPCommandDisabled }
	}
}

// warnIfExposed warns when the API listens beyond loopback without
// credentials: anyone who reaches the port can read the configuration and
// run VPP CLI.
func (s *Server) warnIfExposed(addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() || s.opts.Security.authRequired() {
		return
	}
	s.log.Warn("rest api reachable beyond loopback without credentials; set --http-token-file, --http-basic-auth-file or --http-client-ca",
		"addr", addr.String())
}
