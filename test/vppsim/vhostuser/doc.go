// Package vhostuser is a vhost-user backend (the device side, as in VPP's
// vhost-user interfaces) with split virtqueues and a burst packet API, so that
// vppsim can serve VMs and DPDK virtio-user frontends over a unix socket.
package vhostuser
