package sockdir

import "testing"

func TestPolicy(t *testing.T) {
	p, err := New([]string{"/run/vpp", "/srv/socks/"})
	if err != nil {
		t.Fatal(err)
	}
	for path, ok := range map[string]bool{
		"/run/vpp/memif.sock":      true,
		"/srv/socks/a/vh.sock":     true,
		"/run/vpp":                 false, // the directory itself
		"/run/vpp/../docker.sock":  false,
		"/run/vpp//x.sock":         false,
		"/run/vppx/memif.sock":     false, // a sibling sharing the prefix
		"/var/run/docker.sock":     false,
		"run/vpp/memif.sock":       false,
		"":                         false,
		"/run/vpp/a\x00b":          false,
		"/srv/socks/../../etc/pwd": false,
	} {
		if err := p.Check("socket_filename", path); (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", path, err, ok)
		}
	}
	if _, err := New([]string{"relative"}); err == nil {
		t.Error("a relative socket dir was accepted")
	}
	if err := (Policy{}).Check("f", "/anything/x.sock"); err != nil {
		t.Errorf("zero policy: %v", err)
	}
	if err := (Policy{}).Check("f", "/a/../x.sock"); err == nil {
		t.Error("zero policy accepted an unclean path")
	}
}
