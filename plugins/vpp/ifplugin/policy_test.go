package ifplugin

import (
	"strings"
	"testing"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/sockdir"
)

func TestValidateSocketPolicyAndRanges(t *testing.T) {
	pol, _ := sockdir.New([]string{"/run/vpp", "/run/vppmesh/sockets"})
	p := New(Options{SocketPolicy: pol})
	memif := func(path string, ring uint32, mtu uint32) *ifmodel.Interface {
		return &ifmodel.Interface{Name: "m", Type: ifmodel.Interface_MEMIF, Mtu: mtu,
			Link: &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{Id: 1, SocketFilename: path, RingSize: ring}}}
	}
	vhost := func(path string) *ifmodel.Interface {
		return &ifmodel.Interface{Name: "v", Type: ifmodel.Interface_VHOST_USER,
			Link: &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: path}}}
	}
	for name, c := range map[string]struct {
		v    *ifmodel.Interface
		want string // "" accepts
	}{
		"default memif socket": {memif("", 0, 0), ""},
		"allowed":              {memif("/run/vppmesh/sockets/a.sock", 1024, 1500), ""},
		"max ring and mtu":     {memif("/run/vpp/memif.sock", 1<<14, 9216), ""},
		"docker socket":        {memif("/var/run/docker.sock", 0, 0), "outside the allowed socket directories"},
		"relative":             {memif("memif.sock", 0, 0), "absolute"},
		"dotdot":               {memif("/run/vpp/../../etc/x.sock", 0, 0), "clean path"},
		"ring too large":       {memif("/run/vpp/memif.sock", 1<<15, 0), "ring_size 32768 out of range"},
		"ring 1":               {memif("/run/vpp/memif.sock", 1, 0), "ring_size 1 out of range"},
		"ring not pow2":        {memif("/run/vpp/memif.sock", 1000, 0), "power of two"},
		"mtu too large":        {memif("/run/vpp/memif.sock", 0, 9217), "mtu 9217 out of range"},
		"mtu too small":        {memif("/run/vpp/memif.sock", 0, 10), "mtu 10 out of range"},
		"vhost allowed":        {vhost("/run/vppmesh/sockets/vm1.sock"), ""},
		"vhost api.sock dir":   {vhost("/tmp/x"), "outside"},
	} {
		err := p.validate("k", c.v)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}
