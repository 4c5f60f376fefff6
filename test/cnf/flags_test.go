package cnf

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

func TestParseArgs(t *testing.T) {
	var out bytes.Buffer
	cfg, err := ParseArgs(strings.Fields("gen --socket /tmp/x.sock --id 7 --role master --secret s3 --mode ip "+
		"--ring-size 4096 --buffer-size 1024 --queues 2 --rate 1000 --size 1500 --count 10 --duration 2s "+
		"--stream 9 --src-mac 02:00:00:00:00:0a --dst-mac 02:00:00:00:00:0b --progress --stats-file /tmp/s.json"), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Options: Options{Mode: ModeGen, IPMode: true, Batch: 64, Spins: 64, Rate: 1000, Size: 1500, Stream: 9,
			SrcMAC: [6]byte{2, 0, 0, 0, 0, 10}, DstMAC: [6]byte{2, 0, 0, 0, 0, 11}, Linger: 500 * time.Millisecond,
			Count: 10, Duration: 2 * time.Second, MaxFrame: 9216},
		Socket: "/tmp/x.sock", Role: memif.RoleMaster,
		Memif: memif.Config{ID: 7, AppName: "vppmesh-cnf", Secret: "s3", Mode: memif.ModeIP, Log2RingSize: 12,
			BufferSize: 1024, NumS2M: 2, NumM2S: 2, RetryInterval: 250 * time.Millisecond},
		Progress: true, ProgressInterval: time.Second, StatsFile: "/tmp/s.json", StatsInterval: time.Second,
	}
	if cfg.Options != want.Options || cfg.Socket != want.Socket || cfg.Role != want.Role ||
		cfg.Memif.ID != want.Memif.ID || cfg.Memif.Secret != want.Memif.Secret || cfg.Memif.Mode != want.Memif.Mode ||
		cfg.Memif.Log2RingSize != want.Memif.Log2RingSize || cfg.Memif.BufferSize != want.Memif.BufferSize ||
		cfg.Memif.NumS2M != 2 || cfg.Memif.NumM2S != 2 || cfg.Progress != want.Progress || cfg.StatsFile != want.StatsFile {
		t.Fatalf("parsed\n%+v\nwant\n%+v", cfg, want)
	}

	def, err := ParseArgs([]string{"sink"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if def.Role != memif.RoleSlave || def.Memif.Mode != memif.ModeEthernet || def.Memif.Log2RingSize != 10 ||
		def.Socket != "/run/vpp/memif.sock" || def.Memif.NumS2M != 1 {
		t.Fatalf("defaults: %+v", def)
	}

	for _, bad := range []string{
		"", "--socket x", "bounce", "gen --role boss", "gen --mode punt", "gen --ring-size 1000",
		"gen --ring-size 32768", "gen --buffer-size 1001", "gen --queues 0", "gen --size 63", "gen --size 9001",
		"gen --src-mac zz", "gen --dst-mac 02:00:00:00:00:00:00:01", "gen --secret 0123456789012345678901234",
		"gen --rate -5", "gen --id 4294967296", "sink extra", "gen --log-level loud", "gen --nope",
	} {
		if _, err := ParseArgs(strings.Fields(bad), &out); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if strings.Contains(out.String(), "0123456789012345678901234") {
		t.Fatal("a secret reached the usage output")
	}
}

// TestSummaryJSONShape pins the keys the demo and the e2e tests parse.
func TestSummaryJSONShape(t *testing.T) {
	b, err := json.Marshal(&Summary{Mode: "sink", Sent: 1, Received: 2, Lost: 3, Reordered: 4, Duplicates: 5, Bytes: 6, PPS: 7.5, DurationS: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{"sent": 1, "received": 2, "lost": 3, "reordered": 4, "duplicates": 5, "bytes": 6, "pps": 7.5, "duration_s": 0.25} {
		got, ok := m[k].(float64)
		if !ok || got != v {
			t.Errorf("key %q = %v, want %v", k, m[k], v)
		}
	}
	if m["mode"] != "sink" {
		t.Errorf("mode = %v", m["mode"])
	}
}

func TestSecretFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseArgs([]string{"sink", "--secret-file", p}, io.Discard)
	if err != nil || cfg.Memif.Secret != "from-file" {
		t.Fatalf("--secret-file: %q, %v", cfg.Memif.Secret, err)
	}
	if _, err := ParseArgs([]string{"sink", "--secret-file", p, "--secret", "x"}, io.Discard); err == nil {
		t.Error("--secret with --secret-file accepted")
	}
	os.Chmod(p, 0o644)
	if _, err := ParseArgs([]string{"sink", "--secret-file", p}, io.Discard); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secret file: %v", err)
	}
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte(strings.Repeat("s", 25)), 0o600)
	if _, err := ParseArgs([]string{"sink", "--secret-file", p}, io.Discard); err == nil {
		t.Error("25-byte secret from a file accepted")
	}
}
