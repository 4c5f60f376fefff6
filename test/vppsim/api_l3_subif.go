package vppsim

import (
	"go.fd.io/govpp/api"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/l2"
)

// Return values of VPP 25.10's sub-interface calls (seen on the real thing).
const (
	errVlanSubifExists     int32 = -56
	errInvalidSubSwIfIndex int32 = -98
)

// subSpec is a sub-interface's place under its parent.
type subSpec struct {
	parent       uint32
	parentKind   ifKind
	id           uint32
	tags         uint8
	outer, inner uint16
	flags        interface_types.SubIfFlags
}

// rxModeSet is the rx modes set per queue (key ^0: all queues).
type rxModeSet = map[uint32]interface_types.RxMode

// vtrSpec is an interface's VLAN tag rewrite (l2_interface_vlan_tag_rewrite).
type vtrSpec struct {
	op, pushDot1q, tag1, tag2 uint32
}

func (ifc *iface) dropSub(idx uint32) {
	for i, s := range ifc.subs {
		if s == idx {
			ifc.subs = append(ifc.subs[:i:i], ifc.subs[i+1:]...)
			return
		}
	}
}

func registerSubifHandlers(h map[string]handlerFunc) {
	on(h, func(st *state, c *client, m *interfaces.CreateVlanSubif) []api.Message {
		rep := &interfaces.CreateVlanSubifReply{SwIfIndex: ^interface_types.InterfaceIndex(0)}
		flags := interface_types.SUB_IF_API_FLAG_ONE_TAG | interface_types.SUB_IF_API_FLAG_EXACT_MATCH
		idx, rv := st.createSub(uint32(m.SwIfIndex), m.VlanID, flags, uint16(m.VlanID), 0, errVlanSubifExists)
		if rv == 0 {
			rep.SwIfIndex = interface_types.InterfaceIndex(idx)
			c.log.Info("vlan sub-interface created", "sw_if_index", idx, "parent", uint32(m.SwIfIndex), "vlan", m.VlanID)
		}
		rep.Retval = rv
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.CreateSubif) []api.Message {
		rep := &interfaces.CreateSubifReply{SwIfIndex: ^interface_types.InterfaceIndex(0)}
		idx, rv := st.createSub(uint32(m.SwIfIndex), m.SubID, m.SubIfFlags, m.OuterVlanID, m.InnerVlanID, errSubifAlreadyExists)
		if rv == 0 {
			rep.SwIfIndex = interface_types.InterfaceIndex(idx)
		}
		rep.Retval = rv
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *interfaces.DeleteSubif) []api.Message {
		rep := &interfaces.DeleteSubifReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil || ifc.sub == nil {
			rep.Retval = errInvalidSubSwIfIndex
			return []api.Message{rep}
		}
		st.remove(ifc)
		c.log.Info("sub-interface deleted", "sw_if_index", ifc.idx, "name", ifc.name)
		return []api.Message{rep}
	})
	on(h, func(st *state, c *client, m *l2.L2InterfaceVlanTagRewrite) []api.Message {
		rep := &l2.L2InterfaceVlanTagRewriteReply{}
		ifc := st.get(uint32(m.SwIfIndex))
		if ifc == nil {
			rep.Retval = errInvalidSwIfIndex
			return []api.Message{rep}
		}
		ifc.vtr = vtrSpec{op: m.VtrOp, pushDot1q: m.PushDot1q, tag1: m.Tag1, tag2: m.Tag2}
		return []api.Message{rep}
	})
}

// createSub adds <parent>.<id>; a second sub-interface with the same id on
// the parent is refused with dupErr.
func (st *state) createSub(parentIdx, id uint32, flags interface_types.SubIfFlags, outer, inner uint16, dupErr int32) (uint32, int32) {
	parent := st.get(parentIdx)
	if parent == nil || parent.sub != nil {
		return 0, errInvalidSwIfIndex
	}
	for _, s := range parent.subs {
		if o := st.get(s); o != nil && o.sub != nil && o.sub.id == id {
			return 0, dupErr
		}
	}
	var tags uint8
	switch {
	case flags&interface_types.SUB_IF_API_FLAG_TWO_TAGS != 0:
		tags = 2
	case flags&interface_types.SUB_IF_API_FLAG_ONE_TAG != 0:
		tags = 1
	}
	ifc := &iface{name: parent.name + "." + itoa(id), kind: kindSub,
		sub: &subSpec{parent: parent.idx, parentKind: parent.kind, id: id, tags: tags, outer: outer, inner: inner, flags: flags}}
	st.add(ifc)
	ifc.mtu = [4]uint32{} // VPP reports no MTU of its own on a sub-interface
	ifc.linkMtu = parent.linkMtu
	ifc.linkUp = parent.linkUp
	parent.subs = append(parent.subs, ifc.idx)
	return ifc.idx, 0
}

// subDetails is sw_interface_details of a sub-interface, as VPP fills it:
// its parent's device type, a zero MAC, no MTU.
func subDetails(ifc *iface) *interfaces.SwInterfaceDetails {
	s := ifc.sub
	return &interfaces.SwInterfaceDetails{
		SwIfIndex:        interface_types.InterfaceIndex(ifc.idx),
		SupSwIfIndex:     s.parent,
		Flags:            interface_types.IfStatusFlags(ifc.flags()),
		Type:             interface_types.IF_API_TYPE_SUB,
		LinkMtu:          ifc.linkMtu,
		Mtu:              ifc.mtu[:],
		SubID:            s.id,
		SubNumberOfTags:  s.tags,
		SubOuterVlanID:   s.outer,
		SubInnerVlanID:   s.inner,
		SubIfFlags:       s.flags,
		VtrOp:            ifc.vtr.op,
		VtrPushDot1q:     ifc.vtr.pushDot1q,
		VtrTag1:          ifc.vtr.tag1,
		VtrTag2:          ifc.vtr.tag2,
		InterfaceName:    ifc.name,
		InterfaceDevType: devTypes[s.parentKind],
		Tag:              ifc.tag,
	}
}
