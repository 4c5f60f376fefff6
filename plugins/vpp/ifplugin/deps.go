package ifplugin

import (
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// dependencies lists what an interface waits for: its parent and VRF
// tables (l3Dependencies). Other link types add theirs here (a VXLAN
// tunnel its source interface).
func (p *Plugin) dependencies(key string, v *ifmodel.Interface) []kvscheduler.Dependency {
	return p.l3Dependencies(key, v)
}
