package restapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestVPPCommand(t *testing.T) {
	var got []string
	s, err := New(Options{Scheduler: newFake(), VPPCLI: func(_ context.Context, cmd string) (string, error) {
		got = append(got, cmd)
		if cmd == "show bogus" {
			return "", errors.New("unknown input `bogus'")
		}
		return "out of " + cmd + "\n", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post := func(path, body string) (int, string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(PathVPPCLI+"?command=show+interface", ""); code != 200 || !strings.Contains(body, `"output":"out of show interface\n"`) {
		t.Fatalf("query form: %d %s", code, body)
	}
	// Ligato's JSON body.
	if code, body := post(PathVPPCLI, `{"vppclicommand":"show version"}`); code != 200 || !strings.Contains(body, "out of show version") {
		t.Fatalf("ligato form: %d %s", code, body)
	}
	if code, body := post(PathVPPCLI, `{"vppclicommand":"show bogus"}`); code != http.StatusBadGateway || !strings.Contains(body, "bogus") {
		t.Fatalf("vpp error: %d %s", code, body)
	}
	if code, _ := post(PathVPPCLI, `{"vppclicommand":"  "}`); code != http.StatusBadRequest {
		t.Fatalf("empty command: %d", code)
	}
	if code, _ := post(PathVPPCLI, `not json`); code != http.StatusBadRequest {
		t.Fatalf("bad body: %d", code)
	}
	if len(got) != 3 {
		t.Fatalf("VPP saw %v", got)
	}
	// Unwired: 501, not a crash.
	s2, _ := New(Options{Scheduler: newFake()})
	srv2 := httptest.NewServer(s2.Handler())
	defer srv2.Close()
	resp, err := http.Post(srv2.URL+PathVPPCLI+"?command=x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("unwired: %d", resp.StatusCode)
	}
}

func TestCounters(t *testing.T) {
	s, _ := New(Options{Scheduler: newFake(), Counters: func() any {
		return map[string]map[string]int{"interfaces": {"m1": 5}}
	}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + PathVPPCounters)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"m1":5`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}
