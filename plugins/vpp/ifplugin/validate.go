package ifplugin

import (
	"errors"
	"fmt"
	"net/netip"

	"go.fd.io/govpp/binapi/ethernet_types"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
)

// MaxNameLen is the longest logical name: it is stored as VPP's 64-byte tag.
const MaxNameLen = 63

// ErrNotSupported marks a Ligato feature vppmesh does not implement.
var ErrNotSupported = errors.New("not supported")

func (p *Plugin) validate(key string, v *ifmodel.Interface) error {
	name := v.GetName()
	switch {
	case name == "":
		return fmt.Errorf("%s: interface name is empty", key)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s: interface name is %d bytes, VPP tags hold at most %d", key, len(name), MaxNameLen)
	}
	if err := unsupported(v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if err := validateRxModes(v.GetRxModes()); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if mac := v.GetPhysAddress(); mac != "" {
		if _, err := ethernet_types.ParseMacAddress(mac); err != nil {
			return fmt.Errorf("%s: phys_address %q: %w", key, mac, err)
		}
	}
	for _, a := range v.GetIpAddresses() {
		if _, err := netip.ParsePrefix(a); err != nil {
			return fmt.Errorf("%s: ip_addresses: %q is not an address with prefix length: %w", key, a, err)
		}
	}
	if err := validateLink(v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if v.GetType() == ifmodel.Interface_MEMIF {
		mk := p.memifKeyOf(v.GetMemif())
		p.mu.RLock()
		other, taken := p.memifOwner[mk]
		p.mu.RUnlock()
		if taken && other != name {
			return fmt.Errorf("%s: memif id %d on socket %q is already used by interface %q", key, mk.id, mk.socket, other)
		}
	}
	return nil
}

func unsupported(v *ifmodel.Interface) error {
	switch {
	case v.GetSetDhcpClient():
		// The VPP build vppmesh runs against has no dhcp plugin.
		return fmt.Errorf("set_dhcp_client is %w (vppmesh does not drive VPP's dhcp plugin; give ip_addresses)", ErrNotSupported)
	case v.GetUnnumbered() != nil && v.GetUnnumbered().GetInterfaceWithIp() == "":
		return fmt.Errorf("unnumbered.interface_with_ip is empty")
	case v.GetUnnumbered() != nil && v.GetUnnumbered().GetInterfaceWithIp() == v.GetName():
		return fmt.Errorf("unnumbered: interface cannot borrow its own address")
	case v.GetUnnumbered() != nil && len(v.GetIpAddresses()) > 0:
		return fmt.Errorf("unnumbered interface must not have ip_addresses of its own")
	case len(v.GetRxPlacements()) > 0:
		return fmt.Errorf("rx_placements is %w", ErrNotSupported)
	case v.GetIp6Nd() != nil:
		return fmt.Errorf("ip6_nd is %w", ErrNotSupported)
	}
	return nil
}

func validateLink(v *ifmodel.Interface) error {
	t := v.GetType()
	linkOK := func(ok bool) error {
		if v.GetLink() != nil && !ok {
			return fmt.Errorf("type %s does not match the link given (%T)", t, v.GetLink())
		}
		return nil
	}
	switch t {
	case ifmodel.Interface_SOFTWARE_LOOPBACK:
		return linkOK(false)
	case ifmodel.Interface_SUB_INTERFACE:
		if err := linkOK(v.GetSub() != nil); err != nil {
			return err
		}
		return validateSub(v)
	case ifmodel.Interface_MEMIF:
		if err := linkOK(v.GetMemif() != nil); err != nil {
			return err
		}
		m := v.GetMemif()
		switch {
		case m.GetMode() == ifmodel.MemifLink_PUNT_INJECT:
			return fmt.Errorf("memif mode PUNT_INJECT is %w", ErrNotSupported)
		case m.GetRingSize() != 0 && m.GetRingSize()&(m.GetRingSize()-1) != 0:
			return fmt.Errorf("memif ring_size %d is not a power of two", m.GetRingSize())
		case m.GetBufferSize() > 0xffff:
			return fmt.Errorf("memif buffer_size %d exceeds 65535", m.GetBufferSize())
		case m.GetRxQueues() > 255 || m.GetTxQueues() > 255:
			return fmt.Errorf("memif rx_queues/tx_queues %d/%d exceed 255", m.GetRxQueues(), m.GetTxQueues())
		case len(m.GetSecret()) > 24:
			return fmt.Errorf("memif secret is longer than 24 bytes")
		case len(m.GetSocketFilename()) > 107:
			return fmt.Errorf("memif socket_filename is longer than a unix socket path (107 bytes)")
		}
	case ifmodel.Interface_TAP:
		if err := linkOK(v.GetTap() != nil); err != nil {
			return err
		}
		tp := v.GetTap()
		switch {
		case tp.GetVersion() == 1:
			return fmt.Errorf("tap version 1 is %w (VPP removed it; use 2)", ErrNotSupported)
		case tp.GetRxRingSize() > 0xffff || tp.GetTxRingSize() > 0xffff:
			return fmt.Errorf("tap ring sizes exceed 65535")
		case len(tp.GetHostIfName()) > 63:
			return fmt.Errorf("tap host_if_name is longer than 63 bytes")
		}
	case ifmodel.Interface_AF_PACKET:
		if err := linkOK(v.GetAfpacket() != nil); err != nil {
			return err
		}
		switch {
		case v.GetAfpacket().GetHostIfName() == "":
			return fmt.Errorf("af_packet needs afpacket.host_if_name")
		case v.GetAfpacket().GetLinuxInterface() != "":
			return fmt.Errorf("afpacket linux_interface is %w", ErrNotSupported)
		case len(v.GetAfpacket().GetHostIfName()) > 63:
			return fmt.Errorf("afpacket host_if_name is longer than 63 bytes")
		}
	case ifmodel.Interface_VHOST_USER:
		if err := linkOK(v.GetVhostUser() != nil); err != nil {
			return err
		}
		switch {
		case v.GetVhostUser().GetSocketFilename() == "":
			return fmt.Errorf("vhost_user needs vhost_user.socket_filename")
		case len(v.GetVhostUser().GetSocketFilename()) > 255:
			return fmt.Errorf("vhost_user socket_filename is longer than 255 bytes")
		}
	default:
		return fmt.Errorf("interface type %s is %w", t, ErrNotSupported)
	}
	return nil
}

func (p *Plugin) memifKeyOf(m *ifmodel.MemifLink) memifKey {
	return memifKey{socket: p.sockets.normalize(m.GetSocketFilename()), id: m.GetId()}
}
