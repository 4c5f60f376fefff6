// Package vppsim is a stand-in for FD.io VPP that speaks VPP's binary API over the real
// unix-socket protocol, so govpp clients (and the agent above them) cannot tell it from VPP.
// It moves real packets over memif and vhost-user (L2 cross-connect and bridge domains),
// serves VPP's stats segment, and has fault controls for reliability tests.
package vppsim
