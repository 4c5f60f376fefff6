package lab

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no lab file makes Parse or NewPlan panic; what Parse accepts
// plans (or fails with an error) and exports without panicking.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../docs/examples/labs/*.yaml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(goodLab))
	f.Add([]byte(meshInline))
	f.Add([]byte("name: x\ntopology:\n  nodes:\n    a: {kind: vpp, vpp: {xconnect: [[a]], bridges: {b: []}}}\n  links:\n    - {type: vxlan, endpoints: []}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		topo, err := Parse(b)
		if err != nil {
			return
		}
		p, err := NewPlan(topo, "/tmp/vml-fuzz")
		if err != nil {
			return
		}
		_, _ = p.Compose()
		_, _ = p.Containerlab()
		_ = Mermaid(topo)
		_ = DOT(topo)
	})
}
