package orchestrator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// TestWithRealScheduler runs the orchestrator against the real kvscheduler
// with two trivial descriptors, so that the states an etcdctl user reads
// (FAILED, INVALID, PENDING with what is missing, CONFIGURED) are the
// engine's, not a stand-in's.
func TestWithRealScheduler(t *testing.T) {
	sched := kvscheduler.New(kvscheduler.Options{RetryInitial: time.Hour, RetryMax: time.Hour})
	t.Cleanup(sched.Close)
	var mu sync.Mutex
	created := map[string]bool{}
	if err := kvscheduler.RegisterDescriptor(sched, &kvscheduler.Descriptor[*interfaces.Interface, struct{}]{
		Name:      "interface",
		KeyPrefix: "config/vpp/v2/interfaces/",
		Validate: func(_ string, v *interfaces.Interface) error {
			if v.GetMemif() != nil && v.GetMemif().GetId() == 0 {
				return errors.New("memif id must be set")
			}
			return nil
		},
		Create: func(_ context.Context, key string, v *interfaces.Interface) (struct{}, error) {
			if v.GetName() == "broken" {
				return struct{}{}, errors.New("VPP says no")
			}
			mu.Lock()
			created[key] = true
			mu.Unlock()
			return struct{}{}, nil
		},
		Delete: func(_ context.Context, key string, _ *interfaces.Interface, _ struct{}) error {
			mu.Lock()
			delete(created, key)
			mu.Unlock()
			return nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := kvscheduler.RegisterDescriptor(sched, &kvscheduler.Descriptor[*l2.XConnectPair, struct{}]{
		Name:      "xconnect",
		KeyPrefix: "config/vpp/l2/v2/xconnect/",
		Create:    func(context.Context, string, *l2.XConnectPair) (struct{}, error) { return struct{}{}, nil },
		Delete:    func(context.Context, string, *l2.XConnectPair, struct{}) error { return nil },
		Dependencies: func(_ string, v *l2.XConnectPair) []kvscheduler.Dependency {
			return []kvscheduler.Dependency{
				{Label: "rx", Key: ifRel(v.GetReceiveInterface())},
				{Label: "tx", Key: ifRel(v.GetTransmitInterface())},
			}
		},
	}); err != nil {
		t.Fatal(err)
	}

	e := newEtcdSite(t).start(t)
	cli := newTestClient(t, e.Endpoints())
	mustPut(t, cli, ifKey("a", "m1"), memifJSON("m1", 1))
	r := runOrch(t, cli, "a", sched, nil)
	waitFor(t, "ready", r.o.Ready)
	mustPut(t, cli, ifKey("a", "broken"), memifJSON("broken", 2))
	mustPut(t, cli, ifKey("a", "zero"), memifJSON("zero", 0))
	xc := "config/vpp/l2/v2/xconnect/m1"
	mustPut(t, cli, "/vnf-agent/a/"+xc, `{"receive_interface":"m1","transmit_interface":"m9"}`)

	want := map[string]kvscheduler.State{
		ifRel("m1"): kvscheduler.StateConfigured, ifRel("broken"): kvscheduler.StateFailed,
		ifRel("zero"): kvscheduler.StateInvalid, xc: kvscheduler.StatePending,
	}
	for rel, st := range want {
		waitFor(t, "status of "+rel, func() bool { ks, _ := readStatus(t, cli, "a", rel); return ks.State == st })
	}
	if ks, _ := readStatus(t, cli, "a", ifRel("broken")); ks.Error == "" {
		t.Error("FAILED status without error")
	}
	if ks, _ := readStatus(t, cli, "a", ifRel("zero")); ks.Error == "" {
		t.Error("INVALID status without error")
	}
	if ks, _ := readStatus(t, cli, "a", xc); len(ks.Missing) != 1 || ks.Missing[0] != ifRel("m9") {
		t.Errorf("pending xconnect status %+v", ks)
	}

	mustPut(t, cli, ifKey("a", "m9"), memifJSON("m9", 9))
	waitFor(t, "xconnect configured", func() bool { ks, _ := readStatus(t, cli, "a", xc); return ks.State == kvscheduler.StateConfigured })
	if _, err := cli.Delete(context.Background(), ifKey("a", "broken")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "status of deleted key removed", func() bool { _, ok := readStatus(t, cli, "a", ifRel("broken")); return !ok })
	mu.Lock()
	defer mu.Unlock()
	if !created[ifRel("m1")] || !created[ifRel("m9")] || created[ifRel("zero")] {
		t.Fatalf("created %v", created)
	}
}
