// Package vppsim is a stand-in for FD.io VPP that speaks VPP's binary API over the real
// unix-socket protocol, so govpp clients (and the agent above them) cannot tell it from VPP.
// It keeps an interface table with L2 state, a per-interface packet I/O hook and fault controls.
package vppsim
