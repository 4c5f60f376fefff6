package lab

import "github.com/vppmesh/vppmesh/pkg/vppconf"

// VPPStartupConf is the startup.conf of a vpp node run on real VPP: the
// stanzas of vpp-config/startup-lab.conf (no hugepages, no DPDK, sockets in
// run) with run and prefix filled in.
func VPPStartupConf(vppBin, run, prefix string) string {
	return vppconf.Lab{Dir: run, Prefix: prefix, Bin: vppBin, MainHeap: "1G", Buffers: 16384,
		Plugins: vppconf.DefaultPlugins}.Render()
}
