package render

import (
	"testing"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

func TestDescriptorDerivesTheCrossConnectPath(t *testing.T) {
	d := Descriptor()
	if d.Name != DescriptorName || d.KeyPrefix != models.MeshRenderPrefix {
		t.Fatalf("descriptor %s at %s", d.Name, d.KeyPrefix)
	}
	v := &vppmeshv1.CrossConnect{Name: "mesh-c1",
		A: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, SocketFilename: "/run/c1.sock"}}},
		B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 4, SocketFilename: "/run/ep.sock"}}}}
	if err := d.Validate(models.MeshRenderPrefix+"c1", v); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, kv := range d.DerivedValues(models.MeshRenderPrefix+"c1", v) {
		got[kv.Key] = true
	}
	for _, k := range []string{
		"config/vpp/v2/interfaces/mesh-c1-a", "config/vpp/v2/interfaces/mesh-c1-b",
		"config/vpp/l2/v2/xconnect/mesh-c1-a", "config/vpp/l2/v2/xconnect/mesh-c1-b",
	} {
		if !got[k] {
			t.Errorf("derived values lack %s: %v", k, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("derived %d values, want 4", len(got))
	}
}
