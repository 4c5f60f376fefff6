package cnf

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseMeshArgs(t *testing.T) {
	cfg, err := ParseMeshArgs([]string{"endpoint", "--name", "ep1", "--service", "fw, vpn", "--labels", "tier=gold,zone=a",
		"--socket", "/run/ep1.sock", "--etcd", "127.0.0.1:1,127.0.0.1:2", "--ttl", "3s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeEndpoint || strings.Join(cfg.Services, "|") != "fw|vpn" || cfg.Labels["zone"] != "a" ||
		len(cfg.Etcd) != 2 || cfg.TTL != 3*time.Second || cfg.Node != "vpp1" {
		t.Fatalf("parsed %+v", cfg)
	}
	for _, bad := range [][]string{
		{"gen"},
		{"client", "--service", "fw", "--socket", "/s"},                                    // no name
		{"client", "--name", "c", "--socket", "/s"},                                        // no service
		{"client", "--name", "c", "--service", "a,b", "--socket", "/s"},                    // two services
		{"client", "--name", "c", "--service", "fw"},                                       // no socket
		{"client", "--name", "c", "--service", "fw", "--socket", "/s", "--labels", "x"},    // bad label
		{"client", "--name", "c", "--service", "fw", "--socket", "/s", "--rate", "0"},      // no rate
		{"endpoint", "--name", "e", "--service", "fw", "--socket", "/s", "--ttl", "100ms"}, // TTL below etcd's second
	} {
		if _, err := ParseMeshArgs(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if !IsMeshMode("client") || !IsMeshMode("endpoint") || IsMeshMode("gen") {
		t.Fatal("IsMeshMode")
	}
}
