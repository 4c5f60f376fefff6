package ifplugin

import (
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

// Descriptor returns the interface descriptor for the scheduler.
func (p *Plugin) Descriptor() *kvscheduler.Descriptor[*ifmodel.Interface, *Metadata] {
	return &kvscheduler.Descriptor[*ifmodel.Interface, *Metadata]{
		Name:               DescriptorName,
		KeyPrefix:          KeyPrefix,
		DerivedValues:      p.derived,
		Validate:           p.validate,
		Equivalent:         p.equivalent,
		Create:             p.create,
		Update:             p.update,
		UpdateWithRecreate: p.updateWithRecreate,
		Delete:             p.delete,
		Retrieve:           p.retrieve,
		Dependencies:       p.dependencies,
	}
}

// Register adds the interface descriptor to the scheduler.
func (p *Plugin) Register(s *kvscheduler.Scheduler) error {
	if err := kvscheduler.RegisterDescriptor(s, p.Descriptor()); err != nil {
		return err
	}
	if err := kvscheduler.RegisterDescriptor(s, p.UnnumberedDescriptor()); err != nil {
		return err
	}
	return kvscheduler.RegisterDescriptor(s, p.RxModesDescriptor())
}
