package agentctl

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vppmesh/vppmesh/models"
)

func TestMeshRequestListClose(t *testing.T) {
	h := newHarness(t)
	h.mustRun("mesh", "service", "fw", "--payload", "ip", "--ip-pool", "198.51.100.0/24")
	if v, ok := h.get(models.MeshServicePrefix + "fw"); !ok || !strings.Contains(v, `"ip_pool":"198.51.100.0/24"`) {
		t.Fatalf("service: %q", v)
	}
	h.mustRun("mesh", "request", "fw", "--id", "c1", "--label", "tenant=blue", "--memif-socket", "/run/c1.sock", "--memif-secret", "s3cr3t")
	v, ok := h.get(models.MeshConnectionPrefix + "c1")
	if !ok || !strings.Contains(v, `"node":"vpp1"`) || !strings.Contains(v, `"tenant":"blue"`) {
		t.Fatalf("connection: %q", v)
	}
	// A status as an agent writes it.
	if _, err := h.etcd.Put(context.Background(), models.MeshStatusPrefix+"c1",
		`{"id":"c1","state":"UP","network_service":"fw","endpoint":"ep1","endpoint_node":"vpp1","client_node":"vpp1",
		"client_link":{"interface":"mesh-c1-a","memif":{"socket_filename":"/run/c1.sock"},"up":true},
		"endpoint_link":{"interface":"mesh-c1-b","memif":{"id":3,"socket_filename":"/run/ep1.sock"},"up":true},
		"ip_context":{"client_ip":"198.51.100.0/31","endpoint_ip":"198.51.100.1/31"},"heals":2}`); err != nil {
		t.Fatal(err)
	}
	// A cross-node connection (endpoint on vpp2, over VXLAN) as the client's
	// agent writes it, without its connection key.
	if _, err := h.etcd.Put(context.Background(), models.MeshStatusPrefix+"c9",
		`{"id":"c9","state":"PENDING","network_service":"fw","endpoint":"ep2","endpoint_node":"vpp2","client_node":"vpp1",
		"vxlan":{"vni":8388609,"client_address":"198.51.100.1","endpoint_address":"198.51.100.2"},"error":"wiring on node vpp2"}`); err != nil {
		t.Fatal(err)
	}
	out := h.mustRun("mesh", "connections")
	for _, want := range []string{"c1", "fw", "UP", "mesh-c1-b(memif 3) up", "198.51.100.0/31", "2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("connections table lacks %q:\n%s", want, out)
		}
	}
	// Columns by header: the endpoint, its node, and the VNI only when the
	// connection crosses nodes.
	cells := meshTable(t, out)
	for id, want := range map[string][3]string{"c1": {"ep1", "vpp1", "-"}, "c9": {"ep2", "vpp2", "8388609"}} {
		row := cells[id]
		if got := [3]string{row["ENDPOINT"], row["ENDPOINT_NODE"], row["VNI"]}; got != want {
			t.Errorf("%s: ENDPOINT, ENDPOINT_NODE, VNI = %q, want %q\n%s", id, got, want, out)
		}
	}
	if _, err := h.etcd.Delete(context.Background(), models.MeshStatusPrefix+"c9"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Fatal("memif secret printed")
	}
	js := h.mustRun("mesh", "connections", "-o", "json")
	var rows []MeshConnection
	if err := json.Unmarshal([]byte(js), &rows); err != nil || len(rows) != 1 || rows[0].ID != "c1" || len(rows[0].Status) == 0 {
		t.Fatalf("json: %v %s", err, js)
	}
	if strings.Contains(js, "s3cr3t") {
		t.Fatal("memif secret in json output")
	}
	h.mustRun("mesh", "close", "c1")
	if _, ok := h.get(models.MeshConnectionPrefix + "c1"); ok {
		t.Fatal("connection still there after close")
	}
	if _, _, err := h.run("mesh", "close", "c1"); err == nil {
		t.Fatal("closing a missing connection succeeded")
	}
	// Bad input is refused before it reaches etcd.
	for _, args := range [][]string{
		{"mesh", "request", "fw", "--id", "a/b", "--memif-socket", "/x"},
		{"mesh", "request", "fw", "--id", "c2"},
		{"mesh", "request", "fw", "--id", "c2", "--memif-socket", "/x", "--label", "novalue"},
		{"mesh", "service", "s", "--payload", "carrier-pigeon"},
	} {
		if _, _, err := h.run(args...); err == nil {
			t.Errorf("agentctl %v accepted", args)
		}
	}
}

// register keeps the endpoint alive while it runs and removes it when it
// ends.
func TestMeshRegisterKeepsLease(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := NewRootCommand(func(k string) string { return h.env[k] })
		var out, errb bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errb)
		root.SetArgs([]string{"mesh", "register", "ep1", "--service", "fw", "--label", "color=blue", "--memif-socket", "/run/ep1.sock", "--ttl", "1s"})
		done <- root.ExecuteContext(ctx)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := h.get(models.MeshEndpointPrefix + "ep1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("endpoint not registered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // past the TTL: kept alive
	if _, ok := h.get(models.MeshEndpointPrefix + "ep1"); !ok {
		t.Fatal("endpoint expired while register ran")
	}
	out := h.mustRun("mesh", "endpoints")
	if !strings.Contains(out, "ep1") || !strings.Contains(out, "color=blue") || !strings.Contains(out, "memif /run/ep1.sock") {
		t.Fatalf("endpoints table:\n%s", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, ok := h.get(models.MeshEndpointPrefix + "ep1"); ok {
		t.Fatal("endpoint still registered after register ended")
	}
}

// meshTable parses `mesh connections` output into id → column → cell. Cells
// are separated by two or more spaces (tabwriter's padding); the header's
// column offsets cut each row, so an empty-looking cell cannot shift others.
func meshTable(t *testing.T, out string) map[string]map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("no rows:\n%s", out)
	}
	header := lines[0]
	var names []string
	var starts []int
	for i := 0; i < len(header); {
		if header[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(header) && header[j] != ' ' {
			j++
		}
		names, starts = append(names, header[i:j]), append(starts, i)
		i = j
	}
	rows := map[string]map[string]string{}
	for _, l := range lines[1:] {
		r := []rune(l)
		row := map[string]string{}
		for k, name := range names {
			from, to := starts[k], len(r)
			if k+1 < len(starts) {
				to = starts[k+1]
			}
			if from > len(r) {
				break
			}
			row[name] = strings.TrimSpace(string(r[from:min(to, len(r))]))
		}
		rows[row["ID"]] = row
	}
	return rows
}
