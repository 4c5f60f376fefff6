// Package ifplugin renders config/vpp/v2/interfaces/ values (loopback, memif,
// tap, af_packet, vhost-user) into VPP, maps them back by their tag on
// resync, and reports interface oper state from VPP's interface events.
package ifplugin
