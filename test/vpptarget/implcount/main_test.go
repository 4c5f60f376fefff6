package main

import (
	"strings"
	"testing"
)

func TestRunCountsPerImplementation(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA/vppsim","Output":"fine\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA/vppsim"}`,
		`{"Action":"output","Package":"p","Test":"TestA/vpp","Output":"vpp broke\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestA/vpp"}`,
		`{"Action":"output","Package":"p","Test":"TestB/sub/vpp","Output":"=== RUN   TestB/sub/vpp\n"}`,
		`{"Action":"output","Package":"p","Test":"TestB/sub/vpp","Output":"    testing.go:40: no FD.io VPP found\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestB/sub/vpp"}`,
		`{"Action":"pass","Package":"p","Test":"TestC"}`,
		`{"Action":"pass","Package":"p","Test":"TestD/vppsim-extra"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}`,
		`{"Action":"fail","Package":"p"}`,
		`# build error line`,
		`{"ImportPath":"q","Action":"build-output","Output":"q/x.go:1:1: syntax error\n"}`,
		`{"ImportPath":"q","Action":"build-fail"}`,
	}, "\n")
	var out strings.Builder
	counts, why, failed, err := runWhy(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if why != "no FD.io VPP found" {
		t.Errorf("skip reason %q", why)
	}
	if !failed {
		t.Error("a failed test was not reported as a failure")
	}
	if c := counts["vppsim"]; c.Pass != 1 || c.Fail != 0 || c.Skip != 0 {
		t.Errorf("vppsim %+v", c)
	}
	if c := counts["vpp"]; c.Pass != 0 || c.Fail != 1 || c.Skip != 1 {
		t.Errorf("vpp %+v", c)
	}
	s := out.String()
	if !strings.Contains(s, "vpp broke") || strings.Contains(s, "fine") || !strings.Contains(s, "FAIL\tp") || !strings.Contains(s, "# build error line") || !strings.Contains(s, "syntax error") {
		t.Errorf("output:\n%s", s)
	}
}
