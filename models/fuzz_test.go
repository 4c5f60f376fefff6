package models

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzUnmarshal feeds etcd values (outside bytes) to every model's parser.
// It must never panic; what it accepts must marshal and parse back equal,
// under the key it names.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"name":"m1","type":"MEMIF","enabled":true,"memif":{"master":true,"id":1,"socket_filename":"/run/vpp/memif.sock","secret":"s"}}`,
		`{"name":"v1","type":"VHOST_USER","vhost_user":{"socket_filename":"/run/vpp/v.sock","server":true},"mtu":1500}`,
		`{"receive_interface":"a","transmit_interface":"b"}`,
		`{"name":"bd1","interfaces":[{"name":"a"},{"name":"b","bridged_virtual_interface":true}]}`,
		`{"name":"x1","a":{"memif":{"id":1}},"b":{"vhost_user":{"socket_filename":"/run/vpp/v.sock"}}}`,
		`{"name":"m1","ip_addresses":["198.51.100.1/24"],"phys_address":"02:00:00:00:00:01"}`,
		`{"name":"\u0000","type":7}`, `{`, `null`, `[]`, ``,
	} {
		for i := range Models() {
			f.Add(uint8(i), seed)
		}
	}
	ms := Models()
	f.Fuzz(func(t *testing.T, which uint8, data string) {
		m := ms[int(which)%len(ms)]
		// The key names the value it holds; try the name the value claims
		// and a fixed one, as an attacker may write either.
		for _, key := range []string{m.KeyPrefix + "m1", m.KeyPrefix + guessName(data)} {
			v, err := Unmarshal(key, []byte(data))
			if err != nil {
				continue
			}
			b, err := Marshal(v)
			if err != nil {
				t.Fatalf("%s: accepted value does not marshal: %v", key, err)
			}
			v2, err := Unmarshal(key, b)
			if err != nil {
				t.Fatalf("%s: re-marshalled %s does not parse: %v", key, b, err)
			}
			if !proto.Equal(v, v2) {
				t.Fatalf("%s: round trip changed the value: %v != %v", key, v, v2)
			}
		}
	})
}

// guessName pulls the "name" string out of a JSON text, roughly.
func guessName(s string) string {
	i := strings.Index(s, `"name":"`)
	if i < 0 {
		return "x"
	}
	rest := s[i+len(`"name":"`):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return "x"
}
