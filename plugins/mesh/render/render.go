// Package render registers the descriptors of the agent's side of a mesh
// connection. The mesh controller gives the scheduler one CrossConnect value
// per connection under models.MeshRenderPrefix; like a hand-written
// CrossConnect it makes no VPP call itself and derives two interfaces
// (memif, vhost-user or VXLAN) and one L2 xconnect each way, so a mesh
// connection uses exactly the VPP calls of the proven cross-connect path.
//
// The endpoint-side interface is named "-b" or "-c" (package naming): a
// moved connection's new path is created while its old interface is kept
// by a retiring value (RetireDescriptor), deleted in a later transaction.
package render

import (
	"context"
	"fmt"
	"strings"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/mesh/naming"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
)

// DescriptorName names the descriptor in history and metrics.
const DescriptorName = "vppmesh-mesh-connection"

// RetireDescriptorName names the descriptor of retiring interfaces.
const RetireDescriptorName = "vppmesh-mesh-retiring"

// Shared with the controller (see package naming).
const (
	AltSuffix    = naming.AltSuffix
	RetirePrefix = naming.RetirePrefix
)

// Names returns the interfaces a rendering derives (naming.Names).
func Names(v *vppmeshv1.CrossConnect) (client, endpoint string) { return naming.Names(v) }

func base(v *vppmeshv1.CrossConnect) *vppmeshv1.CrossConnect { return naming.Base(v) }

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
// (naming.Retiring: Name the interface's name, B its link) makes no VPP
// call and derives the interface, so the interface stays in VPP, untouched,
// until the value is deleted.
func RetireDescriptor() *kvscheduler.Descriptor[*vppmeshv1.CrossConnect, struct{}] {
	return &kvscheduler.Descriptor[*vppmeshv1.CrossConnect, struct{}]{
		Name:      RetireDescriptorName,
		KeyPrefix: RetirePrefix,
		Validate: func(key string, v *vppmeshv1.CrossConnect) error {
			if key != RetirePrefix+v.GetName() || !strings.HasPrefix(v.GetName(), "mesh-") {
				return fmt.Errorf("%s: retiring interface %q must be a mesh interface named by its key", key, v.GetName())
			}
			if v.GetA() != nil || v.GetB().GetLink() == nil {
				return fmt.Errorf("%s: a retiring interface has its link in b only", key)
			}
			return nil
		},
		Create: func(context.Context, string, *vppmeshv1.CrossConnect) (struct{}, error) { return struct{}{}, nil },
		Update: func(context.Context, string, *vppmeshv1.CrossConnect, *vppmeshv1.CrossConnect, struct{}) (struct{}, error) {
			return struct{}{}, nil
		},
		Delete: func(context.Context, string, *vppmeshv1.CrossConnect, struct{}) error { return nil },
		DerivedValues: func(_ string, v *vppmeshv1.CrossConnect) []kvscheduler.KeyValue {
			i := retiringInterface(v)
			return []kvscheduler.KeyValue{{Key: xconnect.InterfacePrefix + i.GetName(), Value: i}}
		},
	}
}

// retiringInterface is the interface a retiring value stands for: the one
// its rendering derived.
func retiringInterface(v *vppmeshv1.CrossConnect) *ifmodel.Interface {
	i, _ := xconnect.Derive(&vppmeshv1.CrossConnect{Name: "r", A: v.GetB(), B: v.GetB()})[1].Value.(*ifmodel.Interface)
	i.Name = v.GetName()
	return i
}

// Register adds the descriptors to the scheduler.
func Register(s *kvscheduler.Scheduler) error {
	if err := kvscheduler.RegisterDescriptor(s, Descriptor()); err != nil {
		return err
	}
	return kvscheduler.RegisterDescriptor(s, RetireDescriptor())
}
