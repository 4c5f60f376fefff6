package mesh

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// MaxIDLen bounds connection ids: the derived interfaces are named
// "mesh-<id>-a" and "mesh-<id>-b" or "-c", and VPP tags hold 63 bytes.
const MaxIDLen = 56

// ValidName checks a service, endpoint or connection name: 1..MaxIDLen
// bytes of letters, digits, '.', '_' and '-' (they become etcd key
// segments and VPP interface names).
func ValidName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("%s %q is %d bytes, at most %d allowed", what, s, len(s), MaxIDLen)
	}
	for _, c := range s {
		ok := c == '.' || c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !ok {
			return fmt.Errorf("%s %q has %q; use letters, digits, '.', '_' and '-'", what, s, c)
		}
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%s %q is not a name", what, s)
	}
	return nil
}

// ValidateService checks a NetworkService.
func ValidateService(s *vppmeshv1.NetworkService) error {
	if err := ValidName("service name", s.GetName()); err != nil {
		return err
	}
	if s.GetPayload() == vppmeshv1.NetworkService_IP {
		if _, err := ParsePool(s.GetIpPool()); err != nil {
			return fmt.Errorf("service %q: %w", s.GetName(), err)
		}
	} else if s.GetIpPool() != "" {
		return fmt.Errorf("service %q: ip_pool is only for the IP payload", s.GetName())
	}
	return nil
}

// ValidateEndpoint checks a NetworkServiceEndpoint.
func ValidateEndpoint(ep *vppmeshv1.NetworkServiceEndpoint) error {
	if err := ValidName("endpoint name", ep.GetName()); err != nil {
		return err
	}
	if ep.GetNode() == "" {
		return fmt.Errorf("endpoint %q: node is empty", ep.GetName())
	}
	if len(ep.GetNetworkServices()) == 0 {
		return fmt.Errorf("endpoint %q serves no network service", ep.GetName())
	}
	return validLink(fmt.Sprintf("endpoint %q", ep.GetName()), ep.GetMemif(), ep.GetVhostUser())
}

// ValidateConnection checks a Connection.
func ValidateConnection(c *vppmeshv1.Connection) error {
	if err := ValidName("connection id", c.GetId()); err != nil {
		return err
	}
	if c.GetNetworkService() == "" {
		return fmt.Errorf("connection %q: network_service is empty", c.GetId())
	}
	if c.GetNode() == "" {
		return fmt.Errorf("connection %q: node is empty", c.GetId())
	}
	return validLink(fmt.Sprintf("connection %q", c.GetId()), c.GetMemif(), c.GetVhostUser())
}

func validLink(what string, m *ifmodel.MemifLink, v *ifmodel.VhostUserLink) error {
	switch {
	case m == nil && v == nil:
		return fmt.Errorf("%s needs a memif or vhost_user link", what)
	case m != nil && m.GetSocketFilename() == "":
		return fmt.Errorf("%s: memif.socket_filename is empty", what)
	case v != nil && v.GetSocketFilename() == "":
		return fmt.Errorf("%s: vhost_user.socket_filename is empty", what)
	}
	return nil
}

// ParsePool parses an IPv4 pool prefix that holds at least one /31.
func ParsePool(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("ip_pool is empty (an IP service needs one, e.g. 198.51.100.0/24)")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("ip_pool %q: %w", s, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("ip_pool %q: only IPv4 pools are supported", s)
	}
	if p.Bits() > 31 {
		return netip.Prefix{}, fmt.Errorf("ip_pool %q holds no /31", s)
	}
	return p.Masked(), nil
}

// ValidateNode checks a MeshNode: an IPv4 unicast underlay address and an
// uplink interface name.
func ValidateNode(n *vppmeshv1.MeshNode) error {
	if n.GetName() == "" {
		return errors.New("node name is empty")
	}
	a, err := netip.ParseAddr(n.GetVxlanAddress())
	if err != nil {
		return fmt.Errorf("node %q: vxlan_address %q is not an IP address", n.GetName(), n.GetVxlanAddress())
	}
	if !a.Is4() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("node %q: vxlan_address %s is not an IPv4 unicast address", n.GetName(), a)
	}
	if n.GetVxlanUplink() == "" {
		return fmt.Errorf("node %q: vxlan_uplink is empty; name the interface that carries the tunnels", n.GetName())
	}
	if len(n.GetVxlanUplink()) > 63 {
		return fmt.Errorf("node %q: vxlan_uplink is longer than 63 bytes", n.GetName())
	}
	return nil
}

// ParseRxMode reads the --mesh-rx-mode value: polling, interrupt, adaptive
// or default (also the empty string: VPP's own, polling; the mesh sets
// nothing).
func ParseRxMode(s string) (ifmodel.Interface_RxMode_Type, error) {
	switch strings.ToLower(s) {
	case "adaptive":
		return ifmodel.Interface_RxMode_ADAPTIVE, nil
	case "polling":
		return ifmodel.Interface_RxMode_POLLING, nil
	case "interrupt":
		return ifmodel.Interface_RxMode_INTERRUPT, nil
	case "", "default":
		return ifmodel.Interface_RxMode_UNKNOWN, nil
	}
	return 0, fmt.Errorf("mesh rx mode %q: want polling, interrupt, adaptive or default", s)
}
