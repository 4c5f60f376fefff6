package models

import (
	"strings"
	"testing"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

func TestMeshKeys(t *testing.T) {
	for _, c := range []struct {
		key  string
		kind MeshKind
		name string
		ok   bool
	}{
		{"/vppmesh/v1/service/fw", MeshService, "fw", true},
		{"/vppmesh/v1/endpoint/ep1", MeshEndpoint, "ep1", true},
		{"/vppmesh/v1/connection/c1", MeshConnection, "c1", true},
		{"/vppmesh/v1/status/connection/c1", MeshStatus, "c1", true},
		{"/vppmesh/v1/node/node-a", MeshNodeKind, "node-a", true},
		{"/vppmesh/v1/status/side/c1", MeshSide, "c1", true},
		{"/vppmesh/v1/connection/", "", "", false},
		{"/vppmesh/v1/connection/a/b", "", "", false},
		{"/vppmesh/v1/alloc/ip/fw/198.51.100.0", "", "", false},
		{"/vnf-agent/vpp1/config/x", "", "", false},
	} {
		kind, name, ok := ParseMeshKey(c.key)
		if kind != c.kind || name != c.name || ok != c.ok {
			t.Errorf("ParseMeshKey(%q) = %q %q %v", c.key, kind, name, ok)
		}
		if c.ok && MeshKey(kind, name) != c.key {
			t.Errorf("MeshKey(%q, %q) = %q", kind, name, MeshKey(kind, name))
		}
	}
}

func TestUnmarshalMesh(t *testing.T) {
	_, v, err := UnmarshalMesh("/vppmesh/v1/service/fw", []byte(`{"name":"fw","payload":"IP","ipPool":"198.51.100.0/24",
		"matches":[{"source_selector":{"a":"b"},"routes":[{"destination_selector":{"c":"d"},"weight":2}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	svc := v.(*vppmeshv1.NetworkService)
	if svc.GetPayload() != vppmeshv1.NetworkService_IP || svc.GetMatches()[0].GetRoutes()[0].GetWeight() != 2 {
		t.Fatalf("parsed %v", svc)
	}
	for key, data := range map[string]string{
		"/vppmesh/v1/service/fw":          `{"name":"other"}`,           // key and value disagree
		"/vppmesh/v1/connection/c1":       `{"id":"c1","bogus":1}`,      // unknown field
		"/vppmesh/v1/endpoint/e":          `{"name":"e","memif":{"id":`, // malformed
		"/vppmesh/v1/status/connection/c": `{"id":"c","state":"WEIRD"}`, // unknown enum
		"/vppmesh/v1/nothing/x":           `{}`,
	} {
		if _, _, err := UnmarshalMesh(key, []byte(data)); err == nil {
			t.Errorf("%s %s accepted", key, data)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error mentions a secret: %v", err)
		}
	}
}
