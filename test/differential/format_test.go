package differential

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.fd.io/govpp/binapi/ethernet_types"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/memif"

	"github.com/vppmesh/vppmesh/test/vppsim"
)

func TestFormatterNormalizes(t *testing.T) {
	l := newLabels()
	l.created(7)
	f := formatter{labels: l, dir: "/tmp/run-x", runtimeDir: "/run/vpp",
		explicitMACs: map[ethernet_types.MacAddress]bool{{0x02, 0xfe, 0, 0, 0, 1}: true}}
	got := f.msg(&interfaces.SwInterfaceDetails{SwIfIndex: 7, SupSwIfIndex: 7, L2Address: ethernet_types.MacAddress{0x02, 0xfe, 9, 9, 9, 9},
		Flags: interface_types.IF_STATUS_API_FLAG_ADMIN_UP, InterfaceName: "memif1/0", Tag: "/tmp/run-x/a.sock"})
	want := `sw_interface_details{sw_if_index=if1 sup_sw_if_index=if1 l2_address=02:fe:<random> ` +
		`flags=IF_STATUS_API_FLAG_ADMIN_UP interface_name="memif1/0" tag="$DIR/a.sock"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// An address the scenario chose is compared as it is; an unknown index stays a number.
	got = f.msg(&interfaces.SwInterfaceSetMacAddress{SwIfIndex: 4000, MacAddress: ethernet_types.MacAddress{0x02, 0xfe, 0, 0, 0, 1}})
	if want := `sw_interface_set_mac_address{sw_if_index=#4000 mac_address=02:fe:00:00:00:01}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = f.msg(&memif.MemifSocketFilenameDetails{SocketID: 0, SocketFilename: "/run/vpp/memif.sock"})
	if want := `memif_socket_filename_details{socket_filename="$RUNTIME/memif.sock"}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Retval is printed even when zero; a reused index takes the new label.
	l.created(7)
	if got := f.msg(&interfaces.CreateLoopbackReply{SwIfIndex: 7}); got != `create_loopback_reply{retval=0 sw_if_index=if2}` {
		t.Errorf("got %s", got)
	}
}

func TestAllowlistMasksOnlyItsText(t *testing.T) {
	line := "/if/names NameVector [local0=local0 if7=VirtualEthernet0/0/1]"
	if got := maskText(line); got != "/if/names NameVector [local0=local0 if7=<allowed D4>]" {
		t.Errorf("masked %q", got)
	}
	if got := maskText("  text: Interface: VirtualEthernet0/0/1 (ifindex 6)"); strings.Contains(got, "allowed") {
		t.Errorf("a line without the prefix was masked: %q", got)
	}
	readme, err := os.ReadFile("../vppsim/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Allowlist {
		kinds := 0
		for _, k := range []string{a.Field, a.Step, a.Stat, a.Text} {
			if k != "" {
				kinds++
			}
		}
		if kinds != 1 {
			t.Errorf("allowance %s has %d kinds, want 1", a.Row, kinds)
		}
		if !strings.Contains(string(readme), "\n| "+a.Row+" | ") {
			t.Errorf("allowance %s has no row in test/vppsim/README.md", a.Row)
		}
	}
}

func TestDiffShowsStepAndChangedLines(t *testing.T) {
	a := "## one\nx\ny\n## two\ns1\ns2\ns3\nsame\nold\ntail\n"
	b := "## one\nx\ny\n## two\ns1\ns2\ns3\nsame\nnew\ntail\n"
	d := Diff("A", a, "B", b)
	for _, want := range []string{"--- A", "+++ B", "@@ ## two", "- old", "+ new", "  same", "  tail"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "  x") || strings.Contains(d, "  s1") {
		t.Errorf("diff shows far context:\n%s", d)
	}
	if Diff("A", a, "B", a) != "" {
		t.Error("equal texts diff")
	}
}

// TestScenarioRepeatsOnVppsim runs the scenario twice against fresh vppsims: the
// transcripts must be equal (the normalization leaves nothing run-dependent) and
// carry the steps' key answers. It needs no VPP, so the scenario code is exercised
// in every test run; the comparison with VPP is TestDifferentialVppsimVsVPP.
func TestScenarioRepeatsOnVppsim(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two scenario runs take a few seconds")
	}
	run := func() *Transcript {
		dir := shortDir(t, "diff-self-")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sim, err := vppsim.Start(ctx, vppsim.Config{Socket: filepath.Join(dir, "api.sock"),
			StatsSocket: filepath.Join(dir, "stats.sock"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		tr, err := Run(ctx, Target{Name: "vppsim", APISocket: sim.SocketPath(), StatsSocket: filepath.Join(dir, "stats.sock"),
			Dir: dir, RuntimeDir: "/run/vpp"})
		if err != nil {
			t.Fatalf("scenario: %v", err)
		}
		return tr
	}
	a, b := run(), run()
	if d := Diff("run 1", a.Text(false), "run 2", b.Text(false)); d != "" {
		t.Fatalf("two vppsim runs differ:\n%s", d)
	}
	text := a.Text(false)
	for _, want := range []string{
		"< create_loopback_instance_reply{retval=-31 sw_if_index=~0}",
		"! sw_interface_event{pid=4242 sw_if_index=if4 flags=IF_STATUS_API_FLAG_LINK_UP}",
		"< bridge_domain_add_del_v2_reply{retval=0 bd_id=7271263}",
		"/if/rx CombinedCounterVector threads=1 len=7 nonzero=[if4] packets=10 bytes=640",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if os.Getenv("DIFF_DUMP") != "" {
		_ = os.WriteFile(os.Getenv("DIFF_DUMP")+".self", []byte(text), 0o644)
	}
}
