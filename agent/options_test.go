package agent

import (
	"log/slog"
	"strings"
	"testing"
)

func TestParseFlagsLigatoEnvironment(t *testing.T) {
	t.Setenv("MICROSERVICE_LABEL", "node7")
	t.Setenv("ETCD_ENDPOINTS", "10.0.0.1:2379, 10.0.0.2:2379")
	t.Setenv("VPPMESH_PARALLELISM", "8")
	o, err := ParseFlags("test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Label != "node7" || len(o.EtcdEndpoints) != 2 || o.EtcdEndpoints[1] != "10.0.0.2:2379" || o.Parallelism != 8 {
		t.Fatalf("options from the environment: %+v", o)
	}
	// Flags win over the environment; an empty --etcd-endpoints means the
	// embedded etcd even when ETCD_ENDPOINTS is set.
	o, err = ParseFlags("test", []string{"--label", "vpp2", "--etcd-endpoints=", "--log-level", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Label != "vpp2" || len(o.EtcdEndpoints) != 0 || o.LogLevel != slog.LevelDebug {
		t.Fatalf("options from flags: %+v", o)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--label", ""},
		{"--label", "a/b"},
		{"--log-level", "loud"},
		{"stray"},
		{"--no-such-flag"},
		{"--vpp-max-memifs", "-1"},
	} {
		if _, err := ParseFlags("test", args); err == nil {
			t.Errorf("%s: accepted", strings.Join(args, " "))
		}
	}
}

func TestParseFlagsMemifCap(t *testing.T) {
	o, err := ParseFlags("test", nil)
	if err != nil || o.MaxMemifs != DefaultMaxMemifs {
		t.Fatalf("default memif cap %d (%v), want %d", o.MaxMemifs, err, DefaultMaxMemifs)
	}
	o, err = ParseFlags("test", []string{"--vpp-max-memifs", "0"})
	if err != nil || o.MaxMemifs != 0 {
		t.Fatalf("--vpp-max-memifs 0: %d %v", o.MaxMemifs, err)
	}
}
