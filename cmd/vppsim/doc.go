// Command vppsim runs the VPP stand-in from test/vppsim on a unix socket, with an optional
// HTTP control endpoint for fault injection.
package main
