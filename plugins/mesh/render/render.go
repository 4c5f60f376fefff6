// Package render registers the descriptors of the agent's side of a mesh
// connection. The mesh controller gives the scheduler one CrossConnect value
// per connection under models.MeshRenderPrefix; like a hand-written
// CrossConnect it makes no VPP call itself and derives two interfaces
// (memif, vhost-user or VXLAN) and one L2 xconnect each way, so a mesh
// connection uses exactly the VPP calls of the proven cross-connect path.
//
// The endpoint-side interface of a connection is named "<name>-b" or
// "<name>-c" (Names), and a connection that moves to another endpoint gets
// the other name: the new interface and the xconnects to it are then new
// keys that the scheduler creates without first deleting the old endpoint
// interface. The controller keeps that old interface desired for a while as
// a retiring value (RetirePrefix, one Interface each), so a mass heal
// restores traffic in one transaction of creates and the slow deletes come
// in a later one.
package render

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
)

// DescriptorName names the descriptor in history and metrics.
const DescriptorName = "vppmesh-mesh-connection"

// RetireDescriptorName names the descriptor of retiring interfaces.
const RetireDescriptorName = "vppmesh-mesh-retiring"

// RetirePrefix is the scheduler key prefix of a retiring endpoint-side
// interface: RetirePrefix+<interface name> → the Interface, derived as is.
const RetirePrefix = "mesh/retiring/"

// AltSuffix, appended to a rendering's Name, names its endpoint-side
// interface "-c" instead of "-b".
const AltSuffix = "/c"

// Names returns the interfaces a rendering derives: the client's ("-a") and
// the endpoint's ("-b", or "-c" when Name ends with AltSuffix).
func Names(v *vppmeshv1.CrossConnect) (client, endpoint string) {
	if base, ok := strings.CutSuffix(v.GetName(), AltSuffix); ok {
		return base + "-a", base + "-c"
	}
	return v.GetName() + "-a", v.GetName() + "-b"
}

// base is v with the plain cross-connect name (no AltSuffix).
func base(v *vppmeshv1.CrossConnect) *vppmeshv1.CrossConnect {
	name, ok := strings.CutSuffix(v.GetName(), AltSuffix)
	if !ok {
		return v
	}
	return &vppmeshv1.CrossConnect{Name: name, A: v.GetA(), B: v.GetB()}
}

// Derive returns the two interfaces and two xconnect pairs of a rendering.
func Derive(v *vppmeshv1.CrossConnect) []kvscheduler.KeyValue {
	kvs := xconnect.Derive(base(v))
	a, b := Names(v)
	ib, ok := kvs[1].Value.(*ifmodel.Interface)
	if !ok || len(kvs) != 4 {
		return kvs
	}
	ib.Name = b // Derive built it afresh: no shared value is changed
	return []kvscheduler.KeyValue{
		kvs[0],
		{Key: xconnect.InterfacePrefix + b, Value: ib},
		{Key: xconnect.XConnectPrefix + a, Value: &l2model.XConnectPair{ReceiveInterface: a, TransmitInterface: b}},
		{Key: xconnect.XConnectPrefix + b, Value: &l2model.XConnectPair{ReceiveInterface: b, TransmitInterface: a}},
	}
}

// EndpointInterface is the endpoint-side interface a rendering derives.
func EndpointInterface(v *vppmeshv1.CrossConnect) *ifmodel.Interface {
	i, _ := Derive(v)[1].Value.(*ifmodel.Interface)
	return i
}

// Descriptor returns the mesh connection descriptor.
func Descriptor() *kvscheduler.Descriptor[*vppmeshv1.CrossConnect, struct{}] {
	d := xconnect.Descriptor()
	d.Name = DescriptorName
	d.KeyPrefix = models.MeshRenderPrefix
	validate := d.Validate
	d.Validate = func(key string, v *vppmeshv1.CrossConnect) error {
		if strings.Contains(strings.TrimSuffix(v.GetName(), AltSuffix), "/") {
			return fmt.Errorf("%s: name %q has '/' other than a final %q", key, v.GetName(), AltSuffix)
		}
		return validate(key, base(v))
	}
	d.DerivedValues = func(_ string, v *vppmeshv1.CrossConnect) []kvscheduler.KeyValue { return Derive(v) }
	return d
}

// RetireDescriptor returns the descriptor of retiring interfaces: a value
// makes no VPP call and derives the interface itself, so the interface
// stays in VPP, untouched, until the value is deleted.
func RetireDescriptor() *kvscheduler.Descriptor[*ifmodel.Interface, struct{}] {
	return &kvscheduler.Descriptor[*ifmodel.Interface, struct{}]{
		Name:      RetireDescriptorName,
		KeyPrefix: RetirePrefix,
		Validate: func(key string, v *ifmodel.Interface) error {
			if key != RetirePrefix+v.GetName() || !strings.HasPrefix(v.GetName(), "mesh-") {
				return fmt.Errorf("%s: retiring interface %q must be a mesh interface named by its key", key, v.GetName())
			}
			return nil
		},
		Create: func(context.Context, string, *ifmodel.Interface) (struct{}, error) { return struct{}{}, nil },
		Update: func(context.Context, string, *ifmodel.Interface, *ifmodel.Interface, struct{}) (struct{}, error) {
			return struct{}{}, nil
		},
		Delete: func(context.Context, string, *ifmodel.Interface, struct{}) error { return nil },
		DerivedValues: func(_ string, v *ifmodel.Interface) []kvscheduler.KeyValue {
			return []kvscheduler.KeyValue{{Key: xconnect.InterfacePrefix + v.GetName(), Value: proto.Clone(v)}}
		},
	}
}

// Register adds the descriptors to the scheduler.
func Register(s *kvscheduler.Scheduler) error {
	if err := kvscheduler.RegisterDescriptor(s, Descriptor()); err != nil {
		return err
	}
	return kvscheduler.RegisterDescriptor(s, RetireDescriptor())
}
