// Package l3plugin renders Ligato's L3 models into VPP: VRF tables,
// static routes and static ARP / IP neighbor entries. Each is a scheduler
// descriptor whose dependencies (interface, VRF table) make a value wait
// PENDING instead of failing.
package l3plugin
