// Package render registers the descriptor of the agent's side of a mesh
// connection. The mesh controller gives the scheduler one CrossConnect value
// per connection under models.MeshRenderPrefix; like a hand-written
// CrossConnect it makes no VPP call itself and derives two interfaces
// (memif or vhost-user) and one L2 xconnect each way, so a mesh connection
// uses exactly the VPP calls of the proven cross-connect path.
package render

import (
	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
)

// DescriptorName names the descriptor in history and metrics.
const DescriptorName = "vppmesh-mesh-connection"

// Descriptor returns the mesh connection descriptor.
func Descriptor() *kvscheduler.Descriptor[*vppmeshv1.CrossConnect, struct{}] {
	d := xconnect.Descriptor()
	d.Name = DescriptorName
	d.KeyPrefix = models.MeshRenderPrefix
	return d
}

// Register adds the descriptor to the scheduler.
func Register(s *kvscheduler.Scheduler) error {
	return kvscheduler.RegisterDescriptor(s, Descriptor())
}
