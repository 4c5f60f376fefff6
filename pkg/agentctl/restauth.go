package agentctl

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// restAuth are the credentials agentctl sends to the agent's REST API.
type restAuth struct {
	tokenFile string // bearer token, read from a 0600 file
	basic     string // user:password
	caFile    string // HTTPS: CA of the agent's certificate
	certFile  string // HTTPS: client certificate and key
	keyFile   string

	client *http.Client
}

func addRESTAuthFlags(pf *pflag.FlagSet, getenv func(string) string, a *restAuth) {
	pf.StringVar(&a.tokenFile, "http-token-file", getenv("AGENT_HTTP_TOKEN_FILE"), "file holding the REST API bearer token (env AGENT_HTTP_TOKEN_FILE)")
	pf.StringVar(&a.basic, "http-basic-auth", getenv("AGENT_HTTP_BASIC_AUTH"), "user:password for the REST API (env AGENT_HTTP_BASIC_AUTH; prefer the env, flags show in ps)")
	pf.StringVar(&a.caFile, "http-tls-ca", getenv("AGENT_HTTP_TLS_CA"), "use HTTPS, trusting this CA for the agent's certificate (env AGENT_HTTP_TLS_CA)")
	pf.StringVar(&a.certFile, "http-tls-cert", getenv("AGENT_HTTP_TLS_CERT"), "client certificate for the REST API (env AGENT_HTTP_TLS_CERT)")
	pf.StringVar(&a.keyFile, "http-tls-key", getenv("AGENT_HTTP_TLS_KEY"), "client key for the REST API (env AGENT_HTTP_TLS_KEY)")
}

func (a *restAuth) scheme() string {
	if a.caFile != "" || a.certFile != "" {
		return "https"
	}
	return "http"
}

// httpClient builds (once) the client for the REST API.
func (a *restAuth) httpClient() (*http.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	if a.scheme() == "http" {
		a.client = http.DefaultClient
		return a.client, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return nil, fmt.Errorf("--http-tls-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--http-tls-ca %s: no PEM certificate", a.caFile)
		}
	}
	if a.certFile != "" || a.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(a.certFile, a.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--http-tls-cert/--http-tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	a.client = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	return a.client, nil
}

// apply sets the credentials on a request.
func (a *restAuth) apply(req *http.Request) error {
	if a.tokenFile != "" {
		tok, err := restapi.ReadSecretFile(a.tokenFile)
		if err != nil {
			return fmt.Errorf("--http-token-file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if a.basic != "" {
		u, p, ok := strings.Cut(a.basic, ":")
		if !ok {
			return fmt.Errorf("--http-basic-auth: want user:password")
		}
		req.SetBasicAuth(u, p)
	}
	return nil
}
