package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func getJSON(t *testing.T, method, url, body string, wantCode int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodGet {
		// The agent refuses state-changing calls without it (SECURITY.md).
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, resp.StatusCode, wantCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, url, err, b)
	}
}

// Ligato's REST paths on a live agent agree with what vppsim has.
func TestLigatoRESTOnLiveAgent(t *testing.T) { forEach(t, ligatoRESTOnLiveAgent) }

func ligatoRESTOnLiveAgent(t *testing.T, e *env) {
	base := "http://" + e.agent.HTTPAddr()
	var probe struct {
		State int `json:"state"`
	}
	getJSON(t, "GET", base+"/readiness", "", 200, &probe)
	if probe.State != 1 {
		t.Fatalf("readiness state %d", probe.State)
	}
	sock := filepath.Join(e.dir, "memif.sock")
	e.put("config/vpp/v2/interfaces/memif1", memif("memif1", 1, sock))
	e.put("config/vpp/v2/interfaces/memif2", memif("memif2", 2, sock))
	e.put("config/vpp/l2/v2/xconnect/memif1", `{"receive_interface":"memif1","transmit_interface":"memif2"}`)
	e.waitState("config/vpp/l2/v2/xconnect/memif1", "CONFIGURED")
	m1, _ := e.vppIf("memif1")
	m2, _ := e.vppIf("memif2")

	var ifs map[string]struct {
		Interface struct{ Name string } `json:"interface"`
		Meta      struct {
			SwIfIndex    uint32 `json:"sw_if_index"`
			InternalName string `json:"internal_name"`
		} `json:"interface_meta"`
	}
	getJSON(t, "GET", base+"/dump/vpp/v2/interfaces/memif", "", 200, &ifs)
	if len(ifs) != 2 {
		t.Fatalf("memif dump: %+v", ifs)
	}
	for _, i := range ifs {
		want := m1
		if i.Interface.Name == "memif2" {
			want = m2
		}
		if i.Meta.SwIfIndex != want.SwIfIndex || i.Meta.InternalName != want.Name {
			t.Fatalf("%s: meta %+v, vppsim %+v", i.Interface.Name, i.Meta, want)
		}
	}
	var xcs map[string]struct {
		Meta struct {
			Rx uint32 `json:"receive_interface_sw_if_idx"`
			Tx uint32 `json:"transmit_interface_sw_if_idx"`
		} `json:"x_connect_meta"`
	}
	getJSON(t, "GET", base+"/dump/vpp/v2/xc", "", 200, &xcs)
	if len(xcs) != 1 {
		t.Fatalf("xc dump: %+v", xcs)
	}
	for _, x := range xcs {
		if x.Meta.Rx != m1.SwIfIndex || x.Meta.Tx != m2.SwIfIndex {
			t.Fatalf("xc meta %+v, vppsim %d→%d", x.Meta, m1.SwIfIndex, m2.SwIfIndex)
		}
	}
	var st []struct {
		Value struct {
			Key   string `json:"key"`
			State int    `json:"state"`
		} `json:"value"`
	}
	getJSON(t, "GET", base+"/scheduler/status?key-prefix=config/vpp/l2/", "", 200, &st)
	if len(st) != 1 || st[0].Value.State != 4 {
		t.Fatalf("scheduler status: %+v", st)
	}
	var out string
	getJSON(t, "POST", base+"/vpp/command", `{"vppclicommand":"show interface"}`, 200, &out)
	if !strings.Contains(out, m1.Name) || !strings.Contains(out, m2.Name) {
		t.Fatalf("vpp command output %q", out)
	}
	var levels []struct{ Logger, Level string }
	getJSON(t, "GET", base+"/log/list", "", 200, &levels)
	if len(levels) == 0 {
		t.Fatal("no loggers listed")
	}
}
