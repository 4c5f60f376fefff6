package orchestrator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// TestCapsRejectPerKey: a value over the size cap and keys beyond the
// per-prefix cap get a per-key INVALID status naming the limit; the rest
// is applied; both on the initial list and on watch events.
func TestCapsRejectPerKey(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	// Two keys exist before the agent starts: the initial list counts them.
	mustPut(t, cli, ifKey("a", "k0"), memifJSON("k0", 1))
	mustPut(t, cli, ifKey("a", "k1"), memifJSON("k1", 2))
	s := newMemSched()
	r := runOrch(t, cli, "a", s, func(o *Options) { o.MaxValueBytes = 512; o.MaxKeysPerPrefix = 3 })
	waitFor(t, "ready", r.o.Ready)

	big := fmt.Sprintf(`{"name":"big","type":"MEMIF","memif":{"id":9,"socket_filename":"/run/vpp/%s.sock"}}`, strings.Repeat("x", 600))
	mustPut(t, cli, ifKey("a", "big"), big)
	mustPut(t, cli, ifKey("a", "k2"), memifJSON("k2", 3))
	mustPut(t, cli, ifKey("a", "k3"), memifJSON("k3", 4)) // the 4th key of the prefix
	// Another prefix has its own count.
	mustPut(t, cli, "/vnf-agent/a/config/vppmesh/v1/xconnect/x1",
		`{"name":"x1","a":{"memif":{"id":1,"socket_filename":"/run/vpp/m.sock"}},"b":{"memif":{"id":2,"socket_filename":"/run/vpp/m.sock"}}}`)

	waitFor(t, "3 interfaces and the xconnect", func() bool { return len(s.snapshot()) == 4 })
	for rel, want := range map[string]string{
		ifRel("big"): "more than the limit of 512 bytes",
		ifRel("k3"):  "already holds 3 keys",
	} {
		waitFor(t, "status of "+rel, func() bool { _, ok := readStatus(t, cli, "a", rel); return ok })
		ks, _ := readStatus(t, cli, "a", rel)
		if ks.State != kvscheduler.StateInvalid || !strings.Contains(ks.Error, want) {
			t.Errorf("status of %s: %+v, want INVALID with %q", rel, ks, want)
		}
	}
	if _, ok := s.snapshot()[ifRel("k3")]; ok {
		t.Error("the key over the cap reached the scheduler")
	}
	// Updating an applied key is not a new key: allowed at the cap.
	mustPut(t, cli, ifKey("a", "k2"), memifJSON("k2", 5))
	waitFor(t, "k2 updated", func() bool {
		v, ok := s.snapshot()[ifRel("k2")].(*interfaces.Interface)
		return ok && v.GetMemif().GetId() == 5
	})
	// A freed slot admits the key again when it is written again.
	if _, err := cli.Delete(context.Background(), ifKey("a", "k0")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, cli, ifKey("a", "k3"), memifJSON("k3", 4))
	waitFor(t, "k3 applied after a slot freed", func() bool { _, ok := s.snapshot()[ifRel("k3")]; return ok })
}

// TestJunkKeysReportedUpToCap: every junk key used to get its own status
// document; past MaxInvalidStatus they are only counted.
func TestJunkKeysReportedUpToCap(t *testing.T) {
	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	s := newMemSched()
	r := runOrch(t, cli, "a", s, func(o *Options) { o.MaxInvalidStatus = 2 })
	waitFor(t, "ready", r.o.Ready)
	for i := range 5 {
		mustPut(t, cli, fmt.Sprintf("/vnf-agent/a/config/junk/v1/k%d", i), "x")
	}
	waitFor(t, "5 parse errors", func() bool { return r.o.Stats().ParseErrors == 5 })
	waitFor(t, "2 status documents", func() bool { return countPrefix(t, cli, "/vnf-agent/a/status/junk/") == 2 })
	time.Sleep(200 * time.Millisecond)
	if n := countPrefix(t, cli, "/vnf-agent/a/status/junk/"); n != 2 {
		t.Fatalf("%d status documents for junk keys, want 2 (the cap)", n)
	}
	// A reported key going away frees a slot for the next rejection.
	if _, err := cli.Delete(context.Background(), "/vnf-agent/a/config/junk/v1/k0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "k0's status deleted", func() bool { _, ok := readStatus(t, cli, "a", "config/junk/v1/k0"); return !ok })
	mustPut(t, cli, "/vnf-agent/a/config/junk/v1/k9", "x")
	waitFor(t, "k9 reported", func() bool { _, ok := readStatus(t, cli, "a", "config/junk/v1/k9"); return ok })
}
