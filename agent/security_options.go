package agent

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vppmesh/vppmesh/plugins/orchestrator"
	"github.com/vppmesh/vppmesh/plugins/restapi"
	"github.com/vppmesh/vppmesh/plugins/sockdir"
)

// SecurityOptions are the agent's protection settings (SECURITY.md).
type SecurityOptions struct {
	// SocketDirs are the directories memif and vhost-user socket files may
	// be in; empty (in-process embedders) only requires clean absolute
	// paths. ParseFlags defaults them to sockdir.Default.
	SocketDirs []string

	HTTPTokenFile         string // bearer token file (mode 0600)
	HTTPBasicAuthFile     string // user:password lines (mode 0600)
	HTTPCertFile          string // HTTPS certificate
	HTTPKeyFile           string // HTTPS key
	HTTPClientCAFile      string // require client certificates of this CA
	HTTPAllowedHosts      []string
	HTTPDisableVPPCommand bool
	HTTPReadTimeout       time.Duration
	HTTPWriteTimeout      time.Duration
	HTTPIdleTimeout       time.Duration

	// Caps on etcd values (orchestrator.Options).
	MaxValueBytes    int
	MaxKeysPerPrefix int
}

// listFlag is a repeatable string flag.
type listFlag struct {
	vals   *[]string
	wasSet bool
}

func (l *listFlag) String() string {
	if l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.wasSet {
		*l.vals = nil // the first use replaces the default
		l.wasSet = true
	}
	*l.vals = append(*l.vals, v)
	return nil
}

func addSecurityFlags(fs *flag.FlagSet, s *SecurityOptions) {
	s.SocketDirs = append([]string(nil), sockdir.Default...)
	fs.Var(&listFlag{vals: &s.SocketDirs}, "socket-dir", "directory memif and vhost-user socket files may be in; repeatable (default "+strings.Join(sockdir.Default, " and ")+")")
	fs.StringVar(&s.HTTPTokenFile, "http-token-file", os.Getenv("VPPMESH_HTTP_TOKEN_FILE"), "require this bearer token (file, mode 0600) on the REST API (env VPPMESH_HTTP_TOKEN_FILE)")
	fs.StringVar(&s.HTTPBasicAuthFile, "http-basic-auth-file", "", "require HTTP basic auth with the user:password lines of this file (mode 0600)")
	fs.StringVar(&s.HTTPCertFile, "http-tls-cert", "", "serve the REST API over HTTPS with this certificate")
	fs.StringVar(&s.HTTPKeyFile, "http-tls-key", "", "key of --http-tls-cert")
	fs.StringVar(&s.HTTPClientCAFile, "http-client-ca", "", "require REST clients to present a certificate signed by this CA (needs --http-tls-cert)")
	fs.Var(&listFlag{vals: &s.HTTPAllowedHosts}, "http-allowed-host", "host name accepted in REST Host/Origin headers besides IP addresses and localhost; repeatable")
	fs.BoolVar(&s.HTTPDisableVPPCommand, "http-disable-vpp-command", false, "turn POST /vpp/command (any VPP CLI) off")
	fs.DurationVar(&s.HTTPReadTimeout, "http-read-timeout", 30*time.Second, "REST request read timeout")
	fs.DurationVar(&s.HTTPWriteTimeout, "http-write-timeout", 0, "REST response write timeout (default: resync timeout + 30s)")
	fs.DurationVar(&s.HTTPIdleTimeout, "http-idle-timeout", 2*time.Minute, "REST keep-alive idle timeout")
	fs.IntVar(&s.MaxValueBytes, "max-value-bytes", orchestrator.DefaultMaxValueBytes, "largest config value accepted from etcd; larger ones are rejected per key")
	fs.IntVar(&s.MaxKeysPerPrefix, "max-keys-per-prefix", orchestrator.DefaultMaxKeysPerPrefix, "most config keys accepted per model (interfaces, cross-connects, ...); more are rejected per key")
}

func (s *SecurityOptions) check() error {
	if _, err := sockdir.New(s.SocketDirs); err != nil {
		return fmt.Errorf("--socket-dir: %w", err)
	}
	if s.MaxValueBytes < 0 || s.MaxKeysPerPrefix < 0 {
		return errors.New("--max-value-bytes and --max-keys-per-prefix must not be negative")
	}
	if s.MaxValueBytes > orchestrator.DefaultClientRecvLimit/2 {
		return fmt.Errorf("--max-value-bytes %d: at most %d (the etcd client's receive limit)", s.MaxValueBytes, orchestrator.DefaultClientRecvLimit/2)
	}
	if (s.HTTPCertFile == "") != (s.HTTPKeyFile == "") {
		return errors.New("--http-tls-cert and --http-tls-key go together")
	}
	if s.HTTPClientCAFile != "" && s.HTTPCertFile == "" {
		return errors.New("--http-client-ca needs --http-tls-cert and --http-tls-key")
	}
	return nil
}

// socketPolicy is the policy for the descriptors.
func (s *SecurityOptions) socketPolicy() (sockdir.Policy, error) {
	return sockdir.New(s.SocketDirs)
}

// restSecurity reads the credential files and TLS material.
func (s *SecurityOptions) restSecurity() (restapi.Security, error) {
	sec := restapi.Security{
		AllowedHosts:      s.HTTPAllowedHosts,
		DisableVPPCommand: s.HTTPDisableVPPCommand,
		ReadTimeout:       s.HTTPReadTimeout,
		WriteTimeout:      s.HTTPWriteTimeout,
		IdleTimeout:       s.HTTPIdleTimeout,
	}
	var err error
	if s.HTTPTokenFile != "" {
		if sec.BearerToken, err = restapi.ReadSecretFile(s.HTTPTokenFile); err != nil {
			return sec, fmt.Errorf("--http-token-file: %w", err)
		}
	}
	if s.HTTPBasicAuthFile != "" {
		if sec.BasicAuth, err = restapi.ReadBasicAuthFile(s.HTTPBasicAuthFile); err != nil {
			return sec, fmt.Errorf("--http-basic-auth-file: %w", err)
		}
	}
	if s.HTTPCertFile != "" {
		if sec.TLS, err = restapi.ServerTLS(s.HTTPCertFile, s.HTTPKeyFile, s.HTTPClientCAFile); err != nil {
			return sec, err
		}
	}
	return sec, nil
}
