// Package l2plugin renders L2 cross-connects (config/vpp/l2/v2/xconnect/)
// and bridge domains (config/vpp/l2/v2/bridge-domain/, each member interface
// a derived value) into VPP.
package l2plugin
