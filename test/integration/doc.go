// Package integration runs the whole agent in-process with an embedded etcd
// against vppsim over the real binary API socket.
package integration
