package orchestrator

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

func TestAgentRestartLoadsSameState(t *testing.T) {
	site := newEtcdSite(t)
	e := site.start(t)
	cli := newTestClient(t, e.Endpoints())
	mustPut(t, cli, ifKey("a", "m1"), memifJSON("m1", 1))
	mustPut(t, cli, ifKey("a", "m2"), memifJSON("m2", 2))
	s1 := newMemSched()
	r1 := runOrch(t, cli, "a", s1, nil)
	waitFor(t, "ready", r1.o.Ready)
	mustPut(t, cli, ifKey("a", "m3"), memifJSON("m3", 3))
	waitFor(t, "status of m3", func() bool { _, ok := readStatus(t, cli, "a", ifRel("m3")); return ok })
	r1.stop()
	cli.Close()
	e.Close()

	e2 := site.start(t)
	cli2 := newTestClient(t, e2.Endpoints())
	// Deleted while no agent watched: its status key must not linger.
	if _, err := cli2.Delete(context.Background(), ifKey("a", "m2")); err != nil {
		t.Fatal(err)
	}
	s2 := newMemSched()
	r2 := runOrch(t, cli2, "a", s2, nil)
	waitFor(t, "ready", r2.o.Ready)
	first := s2.txnList()[0]
	if first.Kind != kvscheduler.TxnFullResync || len(first.Values) != 2 ||
		first.Values[0].Key != ifRel("m1") || first.Values[1].Key != ifRel("m3") {
		t.Fatalf("restart loaded %+v", first)
	}
	waitFor(t, "stale status of m2 removed", func() bool { _, ok := readStatus(t, cli2, "a", ifRel("m2")); return !ok })
	if _, ok := readStatus(t, cli2, "a", ifRel("m1")); !ok {
		t.Fatal("status of m1 lost")
	}
}

func TestEtcdDownThenUpRecovers(t *testing.T) {
	site := newEtcdSite(t)
	e := site.start(t)
	cli := newTestClient(t, e.Endpoints())
	mustPut(t, cli, ifKey("a", "m1"), memifJSON("m1", 1))
	s := newMemSched()
	r := runOrch(t, cli, "a", s, nil)
	waitFor(t, "ready", r.o.Ready)
	waitFor(t, "status of m1 written", func() bool { return r.o.Stats().StatusWrites == 1 })

	e.Close()
	// Status produced while etcd is down queues instead of blocking.
	r.o.PublishInterfaceState(&interfaces.InterfaceState{Name: "memif1", OperStatus: interfaces.InterfaceState_UP})
	waitFor(t, "a failed status write", func() bool { return r.o.Stats().StatusWriteErrors > 0 })
	if q := r.o.Stats().StatusQueued; q != 1 {
		t.Fatalf("%d writes queued, want 1", q)
	}

	site.start(t)
	waitFor(t, "re-list after reconnect", func() bool { return s.count(kvscheduler.TxnFullResync) >= 2 })
	waitFor(t, "queued state flushed", func() bool {
		_, ok := mustGet(t, cli, "/vnf-agent/a/vpp/status/v2/interface/memif1")
		return ok
	})
	mustPut(t, cli, ifKey("a", "m2"), memifJSON("m2", 2))
	waitFor(t, "watch works again", func() bool { _, ok := s.snapshot()[ifRel("m2")]; return ok })
	// Stop the watch first: etcd waits up to 7s for open watch streams.
	r.stop()
}

func TestExternalEtcdProcess(t *testing.T) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd binary not installed (Debian package etcd-server); external etcd not tested")
	}
	cport, pport := freePort(t), freePort(t)
	curl, purl := fmt.Sprintf("http://127.0.0.1:%d", cport), fmt.Sprintf("http://127.0.0.1:%d", pport)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--name", "ext", "--data-dir", t.TempDir(),
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", "ext="+purl, "--log-level", "warn",
		// Below the orchestrator's 128: status txns must shrink to fit.
		"--max-txn-ops", "20")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if testLogger() == nil {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := NewClient(context.Background(), []string{curl}, time.Second)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			mustPut(t, c, ifKey("ext", "m1"), memifJSON("m1", 1))
			s := newMemSched()
			r := runOrch(t, c, "ext", s, nil)
			waitFor(t, "ready", r.o.Ready)
			mustPut(t, c, ifKey("ext", "m2"), memifJSON("m2", 2))
			waitFor(t, "m2", func() bool { return len(s.snapshot()) == 2 })
			waitFor(t, "status of m2", func() bool {
				ks, ok := readStatus(t, c, "ext", ifRel("m2"))
				return ok && ks.State == kvscheduler.StateConfigured
			})
			if !strings.HasPrefix(keysOf(s.snapshot())[0], "config/") {
				t.Fatal("keys are not agent-relative")
			}
			// Hold the scheduler so that 100 changes arrive as one burst
			// of 100 status writes.
			held, release := s.pause()
			mustPut(t, c, ifKey("ext", "first"), memifJSON("first", 200))
			<-held
			var ops []clientv3.Op
			for i := range 100 {
				name := "x" + itoa(i)
				ops = append(ops, clientv3.OpPut(ifKey("ext", name), memifJSON(name, i+3)))
				if len(ops) == 20 {
					if _, err := c.Txn(context.Background()).Then(ops...).Commit(); err != nil {
						t.Fatal(err)
					}
					ops = nil
				}
			}
			release()
			waitFor(t, "103 status keys", func() bool { return countPrefix(t, c, "/vnf-agent/ext/status/") == 103 })
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("external etcd never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
