package ifplugin

import (
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// dependencies lists what an interface waits for: its parent and VRF
// tables (l3Dependencies), a VXLAN tunnel its source interface
// (vxlanDependencies).
func (p *Plugin) dependencies(key string, v *ifmodel.Interface) []kvscheduler.Dependency {
	return append(p.l3Dependencies(key, v), p.vxlanDependencies(key, v)...)
}
