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
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"l3 not supported (not in L2 mode)", "interface down", "runt frame", "no packet driver",
	"link down", "tx ring full", "tx error", "l2 flood/uu-flood off", "l2 same interface",
	"l2 no flood members",
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
	}
	return DropTxError
}
