package agentctl

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	vmemif "github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// meshStatus is the live agent's status of a mesh connection (nil: none).
func (l *liveAgent) meshStatus(id string) *vppmeshv1.ConnectionStatus {
	resp, err := l.etcd.Get(context.Background(), models.MeshKey(models.MeshStatus, id))
	if err != nil || len(resp.Kvs) == 0 {
		return nil
	}
	_, v, err := models.UnmarshalMesh(string(resp.Kvs[0].Key), resp.Kvs[0].Value)
	if err != nil {
		return nil
	}
	return v.(*vppmeshv1.ConnectionStatus)
}

// waitMesh waits for a connection status that ok accepts.
func (l *liveAgent) waitMesh(id, what string, ok func(*vppmeshv1.ConnectionStatus) bool) *vppmeshv1.ConnectionStatus {
	l.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := l.meshStatus(id)
		if st != nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("connection %s: no %s; status %v", id, what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// meshKeyExists reports whether a global mesh key is in etcd.
func (l *liveAgent) meshKeyExists(key string) bool {
	resp, err := l.etcd.Get(context.Background(), key)
	return err == nil && len(resp.Kvs) == 1
}

// memifPeer opens the CNF (slave) side of a memif on VPP's socket; it
// dials until VPP's master socket exists.
func memifPeer(t *testing.T, sock string, id uint32) *vmemif.Interface {
	t.Helper()
	i, err := vmemif.NewSlave(sock, vmemif.Config{ID: id, RetryInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = i.Close() })
	return i
}

// peerWhenDecided opens the endpoint's memif peer once the mesh has
// chosen the endpoint of connection id and allocated its memif id there.
func (l *liveAgent) peerWhenDecided(t *testing.T, id, sock string) <-chan *vmemif.Interface {
	ch := make(chan *vmemif.Interface, 1)
	go func() {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if st := l.meshStatus(id); st.GetEndpointLink().GetMemif() != nil {
				i, err := vmemif.NewSlave(sock, vmemif.Config{ID: st.GetEndpointLink().GetMemif().GetId(), RetryInterval: 50 * time.Millisecond,
					Logger: slog.New(slog.DiscardHandler)})
				if err == nil && i.Connect() == nil {
					ch <- i
				}
				close(ch)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(ch)
	}()
	t.Cleanup(func() {
		if i, ok := <-ch; ok && i != nil {
			_ = i.Close()
		}
	})
	return ch
}

// mesh request --wait against the agent's real mesh controller: UP (both
// memif peers connected) exits 0, a connection no agent serves is FAILED
// (exit 1), one whose service no endpoint serves stays PENDING until --timeout (exit 2).
func TestMeshRequestWait(t *testing.T) {
	l := startLiveAgent(t)
	sock := func(n string) string { return filepath.Join(l.dir, n+".sock") }
	if _, _, err := l.run("", "mesh", "service", "fw"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.etcd.Put(context.Background(), models.MeshKey(models.MeshEndpoint, "ep1"),
		`{"name":"ep1","network_services":["fw"],"node":"vpp1","memif":{"socket_filename":"`+sock("ep1")+`"}}`); err != nil {
		t.Fatal(err)
	}

	t.Run("up", func(t *testing.T) {
		memifPeer(t, sock("c1"), 0)
		l.peerWhenDecided(t, "c1", sock("ep1"))
		out, errOut, err := l.run("", "mesh", "request", "fw", "--id", "c1", "--memif-socket", sock("c1"), "--wait")
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") {
			t.Fatalf("request --wait: exit %d %v\n%s%s", exitCode(err), err, out, errOut)
		}
		// It returned on UP, not on the DOWN before the peers connected.
		if st := l.meshStatus("c1"); st.GetState() != vppmeshv1.ConnectionStatus_UP || !st.GetClientLink().GetUp() || !st.GetEndpointLink().GetUp() {
			t.Fatalf("request --wait returned with status %v", st)
		}
		// The same request again changes nothing: the current UP answers.
		start := time.Now()
		out, _, err = l.run("", "mesh", "request", "fw", "--id", "c1", "--memif-socket", sock("c1"), "--wait", "--timeout", "3s")
		if err != nil || !strings.Contains(out, "all 1 keys CONFIGURED") || time.Since(start) > 2500*time.Millisecond {
			t.Fatalf("unchanged request --wait: %v %s", err, out)
		}
	})

	t.Run("failed", func(t *testing.T) {
		// With --ttl too: the lease is revoked when the wait fails, so the
		// connection does not linger for the TTL.
		_, _, err := l.run("", "mesh", "request", "fw", "--id", "c2", "--node", "nowhere", "--memif-socket", sock("c2"), "--wait", "--ttl", "30s")
		if exitCode(err) != ExitFailed || !strings.Contains(err.Error(), models.MeshKey(models.MeshConnection, "c2")+": FAILED") ||
			!strings.Contains(err.Error(), `no agent serves node "nowhere"`) {
			t.Fatalf("request for an unserved node: exit %d, %v", exitCode(err), err)
		}
		if l.meshKeyExists(models.MeshKey(models.MeshConnection, "c2")) {
			t.Fatal("connection under a lease still there after the failed --wait")
		}
	})

	t.Run("pending-timeout", func(t *testing.T) {
		// A service no endpoint serves (an unknown one is FAILED).
		if _, _, err := l.run("", "mesh", "service", "lonely"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, _, err := l.run("", "mesh", "request", "lonely", "--id", "c3", "--memif-socket", sock("c3"), "--wait", "--timeout", "1500ms")
		if exitCode(err) != ExitTimeout || !strings.Contains(err.Error(), models.MeshKey(models.MeshConnection, "c3")+": PENDING: no endpoint serves \"lonely\"") {
			t.Fatalf("request with no endpoint: exit %d, %v", exitCode(err), err)
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Fatalf("returned after %s, before --timeout", d)
		}
		// Without --ttl the connection stays: an endpoint may still come.
		if !l.meshKeyExists(models.MeshKey(models.MeshConnection, "c3")) {
			t.Fatal("connection gone after the timed-out --wait")
		}
	})
}
