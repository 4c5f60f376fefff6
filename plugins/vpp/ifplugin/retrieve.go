package ifplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/binapi/af_packet"
	interfaces "go.fd.io/govpp/binapi/interface"
	"go.fd.io/govpp/binapi/interface_types"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/memif"
	"go.fd.io/govpp/binapi/tapv2"
	"go.fd.io/govpp/binapi/vhost_user"
	"go.fd.io/govpp/binapi/vxlan"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

// recv drains a dump stream.
func recv[T any](name string, recvFn func() (T, error)) ([]T, error) {
	var out []T
	for {
		d, err := recvFn()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, d)
	}
}

// dumpState is everything VPP reports about interfaces, by sw_if_index.
type dumpState struct {
	ifs     []*interfaces.SwInterfaceDetails
	memifs  map[uint32]*memif.MemifDetails
	sockets map[uint32]string
	taps    map[uint32]*tapv2.SwInterfaceTapV2Details
	afp     map[uint32]*af_packet.AfPacketDetails
	vhosts  map[uint32]*vhost_user.SwInterfaceVhostUserDetails
	vxlans  map[uint32]*vxlan.VxlanTunnelV2Details
}

// missingPlugin reports whether err says VPP does not know a message: its
// plugin is not loaded (govpp's adapter.UnknownMsgError).
func missingPlugin(err error) bool {
	var u *adapter.UnknownMsgError
	// Some govpp paths flatten the error to its text.
	return errors.As(err, &u) || strings.Contains(err.Error(), "unknown message: ")
}

func (p *Plugin) dump(ctx context.Context) (*dumpState, error) {
	st := &dumpState{
		memifs: map[uint32]*memif.MemifDetails{}, sockets: map[uint32]string{},
		taps: map[uint32]*tapv2.SwInterfaceTapV2Details{}, afp: map[uint32]*af_packet.AfPacketDetails{},
		vhosts: map[uint32]*vhost_user.SwInterfaceVhostUserDetails{},
	}
	sw, err := p.ifs.SwInterfaceDump(ctx, &interfaces.SwInterfaceDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil {
		return nil, fmt.Errorf("sw_interface_dump: %w", err)
	}
	if st.ifs, err = recv("sw_interface_dump", sw.Recv); err != nil {
		return nil, err
	}
	p.cacheDetails(st.ifs)
	md, err := p.mem.MemifDump(ctx, &memif.MemifDump{})
	if err != nil {
		return nil, fmt.Errorf("memif_dump: %w", err)
	}
	ms, err := recv("memif_dump", md.Recv)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		st.memifs[uint32(m.SwIfIndex)] = m
	}
	sd, err := p.mem.MemifSocketFilenameDump(ctx, &memif.MemifSocketFilenameDump{})
	if err != nil {
		return nil, fmt.Errorf("memif_socket_filename_dump: %w", err)
	}
	socks, err := recv("memif_socket_filename_dump", sd.Recv)
	if err != nil {
		return nil, err
	}
	for _, s := range socks {
		st.sockets[s.SocketID] = s.SocketFilename
	}
	// tap, af_packet and vhost-user live in VPP plugins a deployment may
	// leave out; a VPP without one simply has none of those interfaces.
	td, err := p.tap.SwInterfaceTapV2Dump(ctx, &tapv2.SwInterfaceTapV2Dump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil && !missingPlugin(err) {
		return nil, fmt.Errorf("sw_interface_tap_v2_dump: %w", err)
	}
	var taps []*tapv2.SwInterfaceTapV2Details
	if err == nil {
		if taps, err = recv("sw_interface_tap_v2_dump", td.Recv); err != nil && !missingPlugin(err) {
			return nil, err
		}
	}
	for _, t := range taps {
		st.taps[t.SwIfIndex] = t
	}
	ad, err := p.afp.AfPacketDump(ctx, &af_packet.AfPacketDump{})
	if err != nil && !missingPlugin(err) {
		return nil, fmt.Errorf("af_packet_dump: %w", err)
	}
	var afps []*af_packet.AfPacketDetails
	if err == nil {
		if afps, err = recv("af_packet_dump", ad.Recv); err != nil && !missingPlugin(err) {
			return nil, err
		}
	}
	for _, a := range afps {
		st.afp[uint32(a.SwIfIndex)] = a
	}
	vd, err := p.vhost.SwInterfaceVhostUserDump(ctx, &vhost_user.SwInterfaceVhostUserDump{SwIfIndex: ^interface_types.InterfaceIndex(0)})
	if err != nil && !missingPlugin(err) {
		return nil, fmt.Errorf("sw_interface_vhost_user_dump: %w", err)
	}
	var vhs []*vhost_user.SwInterfaceVhostUserDetails
	if err == nil {
		if vhs, err = recv("sw_interface_vhost_user_dump", vd.Recv); err != nil && !missingPlugin(err) {
			return nil, err
		}
	}
	for _, v := range vhs {
		st.vhosts[uint32(v.SwIfIndex)] = v
	}
	if st.vxlans, err = p.dumpVxlan(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

func (p *Plugin) addresses(ctx context.Context, idx interface_types.InterfaceIndex) ([]string, error) {
	var out []string
	for _, v6 := range []bool{false, true} {
		d, err := p.ipc.IPAddressDump(ctx, &ip.IPAddressDump{SwIfIndex: idx, IsIPv6: v6})
		if err != nil {
			return nil, fmt.Errorf("ip_address_dump sw_if_index %d: %w", idx, err)
		}
		as, err := recv("ip_address_dump", d.Recv)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			out = append(out, a.Prefix.String())
		}
	}
	return canonicalPrefixes(out), nil
}

// addrJob is one agent interface whose addresses Retrieve must read.
type addrJob struct {
	idx interface_types.InterfaceIndex
	v   *ifmodel.Interface
}

// addressDumpsInFlight bounds the concurrent ip_address_dump streams of a
// resync: VPP answers them in order on one socket, so a window of requests
// hides the round trip without flooding its input queue.
const addressDumpsInFlight = 64

// readAddresses fills each job's addresses, with up to addressDumpsInFlight
// interfaces' dumps outstanding at a time; the first error wins.
func (p *Plugin) readAddresses(ctx context.Context, jobs []addrJob) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	sem := make(chan struct{}, addressDumpsInFlight)
	for _, j := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			as, err := p.addresses(ctx, j.idx)
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			j.v.IpAddresses = as
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// retrieve maps VPP's interfaces back to values. Interfaces carrying a tag
// are ours (the tag is the logical name); the rest are FromSB, indexed by
// their VPP name so they can still be referenced (local0, a DPDK NIC).
func (p *Plugin) retrieve(ctx context.Context, desired []kvscheduler.KV[*ifmodel.Interface]) ([]kvscheduler.Retrieved[*ifmodel.Interface, *Metadata], error) {
	st, err := p.dump(ctx)
	if err != nil {
		return nil, err
	}
	want := make(map[string]*ifmodel.Interface, len(desired))
	for _, kv := range desired {
		want[kv.Value.GetName()] = kv.Value
	}
	nameOf := make(map[uint32]string, len(st.ifs)) // a sub-interface's parent may come later
	for _, d := range st.ifs {
		if d.Tag != "" {
			nameOf[uint32(d.SwIfIndex)] = d.Tag
		} else {
			nameOf[uint32(d.SwIfIndex)] = d.InterfaceName
		}
	}
	if f, ok := st.sockets[0]; ok {
		p.sockets.def = f
	}
	refs := map[uint32]int{}
	for _, m := range st.memifs {
		refs[m.SocketID]++
	}
	p.sockets.reset(st.sockets, refs)

	var out []kvscheduler.Retrieved[*ifmodel.Interface, *Metadata]
	var ours []addrJob
	byName := map[string]*entry{}
	owners := map[memifKey]string{}
	vxlanOwners := map[vxlanKey]string{}
	for _, d := range st.ifs {
		idx := uint32(d.SwIfIndex)
		meta := &Metadata{SwIfIndex: idx, InternalName: d.InterfaceName}
		name := d.Tag
		origin := kvscheduler.FromNB
		if name == "" {
			name, origin = d.InterfaceName, kvscheduler.FromSB
		}
		v := &ifmodel.Interface{
			Name:        name,
			Enabled:     d.Flags&interface_types.IF_STATUS_API_FLAG_ADMIN_UP != 0,
			PhysAddress: strings.ToLower(d.L2Address.String()),
		}
		if len(d.Mtu) > 0 {
			v.Mtu = d.Mtu[0]
		}
		switch {
		case d.Type == interface_types.IF_API_TYPE_SUB:
			v.Type = ifmodel.Interface_SUB_INTERFACE
			v.Link = &ifmodel.Interface_Sub{Sub: &ifmodel.SubInterface{
				ParentName: nameOf[uint32(d.SupSwIfIndex)], SubId: d.SubID,
				TagRwOption: ifmodel.SubInterface_TagRewriteOptions(d.VtrOp),
				PushDot1Q:   d.VtrPushDot1q != 0, Tag1: d.VtrTag1, Tag2: d.VtrTag2,
			}}
		case st.memifs[idx] != nil:
			m := st.memifs[idx]
			v.Type = ifmodel.Interface_MEMIF
			v.Link = &ifmodel.Interface_Memif{Memif: &ifmodel.MemifLink{
				Mode:           ifmodel.MemifLink_MemifMode(m.Mode),
				Master:         m.Role == memif.MEMIF_ROLE_API_MASTER,
				Id:             m.ID,
				SocketFilename: st.sockets[m.SocketID],
				RingSize:       m.RingSize,
				BufferSize:     uint32(m.BufferSize),
			}}
			meta.MemifSocketID = m.SocketID
			if origin == kvscheduler.FromNB {
				// An untagged memif is no value's: a desired memif on its
				// socket+id replaces it (see stray.go) instead of failing.
				owners[memifKey{socket: st.sockets[m.SocketID], id: m.ID}] = name
			}
		case st.taps[idx] != nil:
			t := st.taps[idx]
			v.Type = ifmodel.Interface_TAP
			v.Link = &ifmodel.Interface_Tap{Tap: &ifmodel.TapLink{
				Version: 2, HostIfName: t.HostIfName,
				RxRingSize: uint32(t.RxRingSz), TxRingSize: uint32(t.TxRingSz),
				EnableGso:    t.TapFlags&tapv2.TAP_API_FLAG_GSO != 0,
				EnableTunnel: t.TapFlags&tapv2.TAP_API_FLAG_TUN != 0,
			}}
		case st.afp[idx] != nil:
			v.Type = ifmodel.Interface_AF_PACKET
			v.Link = &ifmodel.Interface_Afpacket{Afpacket: &ifmodel.AfpacketLink{HostIfName: st.afp[idx].HostIfName}}
		case st.vhosts[idx] != nil:
			h := st.vhosts[idx]
			v.Type = ifmodel.Interface_VHOST_USER
			v.Link = &ifmodel.Interface_VhostUser{VhostUser: &ifmodel.VhostUserLink{SocketFilename: h.SockFilename, Server: h.IsServer}}
		case st.vxlans[idx] != nil:
			v.Type = ifmodel.Interface_VXLAN_TUNNEL
			v.Link = &ifmodel.Interface_Vxlan{Vxlan: vxlanValue(st.vxlans[idx])}
			meta.VxlanSrc = st.vxlans[idx].SrcAddress.String()
		case strings.HasPrefix(d.InterfaceName, "loop"):
			v.Type = ifmodel.Interface_SOFTWARE_LOOPBACK
		}
		if origin == kvscheduler.FromNB {
			fillUnreported(v, want[name])
			if v.GetVxlan() != nil {
				vxlanOwners[vxlanKeyOf(v.GetVxlan())] = name
			}
			ours = append(ours, addrJob{idx: d.SwIfIndex, v: v})
		}
		byName[name] = &entry{meta: *meta, typ: v.Type, agent: origin == kvscheduler.FromNB}
		out = append(out, kvscheduler.Retrieved[*ifmodel.Interface, *Metadata]{Key: Key(name), Value: v, Metadata: meta, Origin: origin})
	}

	if err := p.readVrfs(ctx, ours, want); err != nil {
		return nil, err
	}

	if err := p.readAddresses(ctx, ours); err != nil {
		return nil, err
	}
	for _, j := range ours {
		if e := byName[j.v.GetName()]; e != nil {
			e.addrs = j.v.GetIpAddresses()
		}
	}

	p.mu.Lock()
	p.foreignMemifs = max(len(st.memifs)-len(owners), 0)
	p.byName, p.byIdx, p.memifOwner = byName, make(map[uint32]string, len(byName)), owners
	p.memifOf = make(map[string]memifKey, len(owners))
	for k, n := range owners {
		p.memifOf[n] = k
	}
	for n, e := range byName {
		p.byIdx[e.meta.SwIfIndex] = n
	}
	p.vxlanOwner, p.vxlanOf = vxlanOwners, make(map[string]vxlanKey, len(vxlanOwners))
	for k, n := range vxlanOwners {
		p.vxlanOf[n] = k
	}
	p.mu.Unlock()
	// Publish what VPP has now, read after the index exists: the state
	// watch dropped events of interfaces it did not know yet (an agent
	// that just started; one killed before publishing what it created),
	// and a state that changed while no agent ran would stay wrong until
	// the next event. Unchanged states are not rewritten by the publisher.
	p.requestStateSnapshot()
	p.log.Info("interfaces retrieved", "count", len(out))
	return out, nil
}

// fillUnreported copies from the desired value what VPP cannot report
// (memif secret and queue counts, vhost feature switches) and what the
// user left to VPP (a zero MAC or MTU), so unchanged config compares equal.
func fillUnreported(got, want *ifmodel.Interface) {
	if want == nil || got.GetType() != want.GetType() {
		return
	}
	if want.GetPhysAddress() == "" {
		got.PhysAddress = ""
	}
	if want.GetMtu() == 0 {
		got.Mtu = 0
	}
	// Not read back (VPP reports them per queue, or not at all): rx modes,
	// and the unnumbered setting, which is checked by its derived value.
	got.RxModes = want.GetRxModes()
	got.Unnumbered = want.GetUnnumbered()
	switch got.GetType() {
	case ifmodel.Interface_MEMIF:
		g, w := got.GetMemif(), want.GetMemif()
		g.Secret = w.GetSecret()
		g.RxQueues, g.TxQueues = w.GetRxQueues(), w.GetTxQueues()
		// FD.io VPP's memif_dump reports the ring and buffer size in use on
		// the connection (1 << run.log2_ring_size, run.buffer_size): 1 and
		// 0 while no peer is connected, and what the peer negotiated once
		// one is. Neither is the configured value, so they are taken from
		// the desired value like the secret.
		g.RingSize, g.BufferSize = w.GetRingSize(), w.GetBufferSize()
	case ifmodel.Interface_TAP:
		g, w := got.GetTap(), want.GetTap()
		g.Version = w.GetVersion()
		g.ToMicroservice = w.GetToMicroservice()
		if w.GetRxRingSize() == 0 && g.RxRingSize == defaultTapRing {
			g.RxRingSize = 0
		}
		if w.GetTxRingSize() == 0 && g.TxRingSize == defaultTapRing {
			g.TxRingSize = 0
		}
	case ifmodel.Interface_AF_PACKET:
		got.GetAfpacket().LinuxInterface = want.GetAfpacket().GetLinuxInterface()
	case ifmodel.Interface_VXLAN_TUNNEL:
		fillVxlan(got.GetVxlan(), want.GetVxlan())
	case ifmodel.Interface_VHOST_USER:
		g, w := got.GetVhostUser(), want.GetVhostUser()
		g.EnableGso, g.EnablePacked, g.EnableEventIdx = w.GetEnableGso(), w.GetEnablePacked(), w.GetEnableEventIdx()
		g.DisableMrgRxbuf, g.DisableIndirectDesc = w.GetDisableMrgRxbuf(), w.GetDisableIndirectDesc()
	}
}
