// Package vppconf renders the startup.conf of an FD.io VPP run without
// hugepages (vpp-config/startup-lab.conf): private run directory, 4k pages,
// one main thread, only the plugins the agent uses. The lab runner and the
// tests' launcher (test/vpprun) both start VPP from it.
package vppconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPlugins are the plugins the agent uses.
var DefaultPlugins = []string{"memif", "vhost", "af_packet", "vxlan", "ping"}

// Lab is one VPP instance's startup.conf, lab style.
type Lab struct {
	Dir       string   // run directory: api.sock, stats.sock, cli.sock, vpp.log
	Prefix    string   // api-segment prefix, unique per instance on a host
	Bin       string   // the vpp binary; its installation's plugin path is used
	MainHeap  string   // e.g. "1G"
	Buffers   int      // buffers-per-numa
	StatsSize string   // stats segment size ("" = VPP's default, 32 MiB)
	MainCore  int      // CPU of the main thread
	Plugins   []string // enabled plugins (the rest disabled)
}

// Render writes the startup.conf text.
func (c Lab) Render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unix { nodaemon cli-listen %s log %s runtime-dir %s }\n",
		filepath.Join(c.Dir, "cli.sock"), filepath.Join(c.Dir, "vpp.log"), c.Dir)
	fmt.Fprintf(&b, "api-segment { prefix %s }\n", c.Prefix)
	fmt.Fprintf(&b, "socksvr { socket-name %s }\n", filepath.Join(c.Dir, "api.sock"))
	fmt.Fprintf(&b, "memory { main-heap-size %s main-heap-page-size 4k }\n", c.MainHeap)
	fmt.Fprintf(&b, "buffers { buffers-per-numa %d page-size 4k }\n", c.Buffers)
	if c.StatsSize != "" {
		fmt.Fprintf(&b, "statseg { socket-name %s page-size 4k size %s }\n", filepath.Join(c.Dir, "stats.sock"), c.StatsSize)
	} else {
		fmt.Fprintf(&b, "statseg { socket-name %s page-size 4k }\n", filepath.Join(c.Dir, "stats.sock"))
	}
	fmt.Fprintf(&b, "cpu { main-core %d }\n", c.MainCore)
	b.WriteString("plugins {\n")
	if d := PluginDir(c.Bin); d != "" {
		fmt.Fprintf(&b, "  path %s\n", d)
	}
	b.WriteString("  plugin default { disable }\n")
	for _, p := range c.Plugins {
		fmt.Fprintf(&b, "  plugin %s_plugin.so { enable }\n", p)
	}
	b.WriteString("}\n")
	return b.String()
}

// PluginDir is where the VPP installation of bin keeps its plugins
// (<prefix>/bin/vpp → <prefix>/lib/<multiarch>/vpp_plugins); empty lets VPP
// use its built-in default.
func PluginDir(bin string) string {
	if bin == "" {
		return ""
	}
	real, err := filepath.EvalSymlinks(bin)
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
