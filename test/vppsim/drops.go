package vppsim

import "errors"

// DropReason says why a frame was dropped; each interface counts drops per reason
// (VPP's error counters, shown by "show errors").
type DropReason uint8

// Drop reasons. Forwarding decisions and frames for a down (admin or link) or
// driverless egress count on the receiving interface, as VPP's error-drop does;
// device transmit failures (ring full, error) on the sending one.
const (
	DropNotL2        DropReason = iota // interface not in xconnect or bridge mode
	DropAdminDown                      // interface administratively down
	DropRunt                           // shorter than an Ethernet (or IP) header
	DropNoDriver                       // egress has no packet driver
	DropLinkDown                       // egress peer not connected
	DropTxFull                         // egress ring stayed full after the retries
	DropTxError                        // egress driver failed
	DropBridgeFilter                   // flooding or unknown-unicast flooding off
	DropReflect                        // bridge destination is the receiving interface
	DropNoMembers                      // flood found no other member
	// The IPv4/VXLAN path (vxlan.go).
	DropL2NotForUs       // L3 port: destination MAC neither ours nor group
	DropUnknownEtherType // L3 port: neither IPv4 nor ARP
	DropARPMalformed     // ARP not Ethernet/IPv4 or short
	DropARPNotForUs      // ARP target is not our address
	DropIP4Malformed     // bad IPv4 or UDP header or length
	DropIP4Checksum      // IPv4 header checksum wrong
	DropIP4NotForUs      // IPv4 destination is not our address (no forwarding)
	DropIP4Fragment      // fragments are not reassembled
	DropIP4UnknownProto  // not UDP
	DropUDPNoListener    // UDP port other than 4789
	DropUDPChecksum      // non-zero UDP checksum wrong (e.g. left to an offload)
	DropVxlanBadHeader   // VXLAN I flag clear or no inner Ethernet header
	DropVxlanNoTunnel    // no tunnel for source, destination and VNI
	DropNoRoute          // tunnel destination not on an attached prefix
	DropARPPending       // neighbour not resolved; ARP request sent
	DropRxOverflow       // af_packet: the socket's receive buffer was full (kernel drop)
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"l3 not supported (not in L2 mode)", "interface down", "runt frame", "no packet driver",
	"link down", "tx ring full", "tx error", "l2 flood/uu-flood off", "l2 same interface",
	"l2 no flood members",
	"ethernet dst mac mismatch", "ethernet unknown ethertype", "arp malformed packet",
	"arp address not local", "ip4 malformed", "ip4 bad checksum", "ip4 destination not local",
	"ip4 fragment", "ip4 unknown protocol", "udp no listener for dst port", "ip4 bad udp checksum",
	"vxlan bad header", "vxlan no such tunnel", "ip4 no route", "ip4 arp resolving",
	"af_packet rx socket overflow",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Errors a Driver's Transmit may return to name its drop reason.
var (
	ErrLinkDown = errors.New("vppsim: link down")
	ErrTxFull   = errors.New("vppsim: tx ring full")
)

func reasonOf(err error) DropReason {
	switch {
	case errors.Is(err, ErrLinkDown):
		return DropLinkDown
	case errors.Is(err, ErrTxFull):
		return DropTxFull
	case errors.Is(err, ErrNoRoute):
		return DropNoRoute
	case errors.Is(err, ErrARPPending):
		return DropARPPending
	}
	return DropTxError
}
