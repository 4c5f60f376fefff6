package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// vppPlugins are the plugins a lab's real VPP loads: what the agent uses.
var vppPlugins = []string{"memif", "vhost", "af_packet", "vxlan", "ping"}

// VPPStartupConf is the startup.conf of a vpp node run on real VPP: the
// stanzas of vpp-config/startup-lab.conf (no hugepages, no DPDK, sockets in
// run) with run and prefix filled in.
func VPPStartupConf(vppBin, run, prefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "unix { nodaemon cli-listen %s log %s runtime-dir %s }\n",
		filepath.Join(run, "cli.sock"), filepath.Join(run, "vpp.log"), run)
	fmt.Fprintf(&b, "api-segment { prefix %s }\n", prefix)
	fmt.Fprintf(&b, "socksvr { socket-name %s }\n", filepath.Join(run, "api.sock"))
	b.WriteString("memory { main-heap-size 1G main-heap-page-size 4k }\n")
	b.WriteString("buffers { buffers-per-numa 16384 page-size 4k }\n")
	fmt.Fprintf(&b, "statseg { socket-name %s page-size 4k }\n", filepath.Join(run, "stats.sock"))
	b.WriteString("cpu { main-core 0 }\n")
	b.WriteString("plugins {\n")
	if d := vppPluginDir(vppBin); d != "" {
		fmt.Fprintf(&b, "  path %s\n", d)
	}
	b.WriteString("  plugin default { disable }\n")
	for _, p := range vppPlugins {
		fmt.Fprintf(&b, "  plugin %s_plugin.so { enable }\n", p)
	}
	b.WriteString("}\n")
	return b.String()
}

// vppPluginDir finds the plugin directory of the VPP installation vppBin
// belongs to (<prefix>/bin/vpp → <prefix>/lib/<arch>/vpp_plugins); empty
// leaves VPP's built-in default.
func vppPluginDir(vppBin string) string {
	real, err := filepath.EvalSymlinks(vppBin)
	if err != nil {
		return ""
	}
	prefix := filepath.Dir(filepath.Dir(real))
	for _, d := range []string{"lib/x86_64-linux-gnu/vpp_plugins", "lib/aarch64-linux-gnu/vpp_plugins", "lib64/vpp_plugins", "lib/vpp_plugins"} {
		p := filepath.Join(prefix, d)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
	}
	return ""
}
