package agentctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vppmesh/vppmesh/models"
)

// ligatoSection is one list of Ligato's configurator.Config (the
// vppConfig: / linuxConfig: YAML that Ligato's agentctl config update reads):
// its JSON and proto field names and the key prefix of its model.
type ligatoSection struct {
	group, json, proto string
	prefix             string // agent-relative key prefix Ligato stores it under
	model              string // Ligato's model name, for messages
}

// ligatoSections lists every list of Ligato v3.5's vppConfig and
// linuxConfig. Whether vppmesh supports one is asked of the model
// registry by key prefix, so models added later work without an edit here.
var ligatoSections = []ligatoSection{
	{"vppConfig", "interfaces", "interfaces", "config/vpp/v2/interfaces/", "vpp.interfaces"},
	{"vppConfig", "spans", "spans", "config/vpp/v2/span/", "vpp.span"},
	{"vppConfig", "acls", "acls", "config/vpp/acls/v2/acl/", "vpp.acls.acl"},
	{"vppConfig", "abfs", "abfs", "config/vpp/abfs/v2/abf/", "vpp.abfs.abf"},
	{"vppConfig", "bridgeDomains", "bridge_domains", "config/vpp/l2/v2/bridge-domain/", "vpp.l2.bridge-domain"},
	{"vppConfig", "fibs", "fibs", "config/vpp/l2/v2/fib/", "vpp.l2.fib"},
	{"vppConfig", "xconnectPairs", "xconnect_pairs", "config/vpp/l2/v2/xconnect/", "vpp.l2.xconnect"},
	{"vppConfig", "routes", "routes", "config/vpp/v2/route/", "vpp.route"},
	{"vppConfig", "arps", "arps", "config/vpp/v2/arp/", "vpp.arp"},
	{"vppConfig", "proxyArp", "proxy_arp", "config/vpp/v2/proxyarp-global/", "vpp.proxyarp-global"},
	{"vppConfig", "ipscanNeighbor", "ipscan_neighbor", "config/vpp/v2/ipscanneigh-global/", "vpp.ipscanneigh-global"},
	{"vppConfig", "vrfs", "vrfs", "config/vpp/v2/vrf-table/", "vpp.vrf-table"},
	{"vppConfig", "l3xconnects", "l3xconnects", "config/vpp/v2/l3xconnect/", "vpp.l3xconnect"},
	{"vppConfig", "dhcpProxies", "dhcp_proxies", "config/vpp/v2/dhcp-proxy/", "vpp.dhcp-proxy"},
	{"vppConfig", "teibEntries", "teib_entries", "config/vpp/v2/teib/", "vpp.teib"},
	{"vppConfig", "vrrpEntries", "vrrp_entries", "config/vpp/v2/vrrp/", "vpp.vrrp"},
	{"vppConfig", "nat44Global", "nat44_global", "config/vpp/nat/v2/nat44-global/", "vpp.nat.nat44-global"},
	{"vppConfig", "dnat44s", "dnat44s", "config/vpp/nat/v2/dnat44/", "vpp.nat.dnat44"},
	{"vppConfig", "nat44Interfaces", "nat44_interfaces", "config/vpp/nat/v2/nat44-interface/", "vpp.nat.nat44-interface"},
	{"vppConfig", "nat44Pools", "nat44_pools", "config/vpp/nat/v2/nat44-pool/", "vpp.nat.nat44-pool"},
	{"vppConfig", "ipsecSpds", "ipsec_spds", "config/vpp/ipsec/v2/spd/", "vpp.ipsec.spd"},
	{"vppConfig", "ipsecSas", "ipsec_sas", "config/vpp/ipsec/v2/sa/", "vpp.ipsec.sa"},
	{"vppConfig", "ipsecTunnelProtections", "ipsec_tunnel_protections", "config/vpp/ipsec/v2/tun-protect/", "vpp.ipsec.tun-protect"},
	{"vppConfig", "puntTohosts", "punt_tohosts", "config/vpp/v2/tohost/", "vpp.punt.tohost"},
	{"vppConfig", "puntExceptions", "punt_exceptions", "config/vpp/v2/exception/", "vpp.punt.exception"},
	{"vppConfig", "puntIpredirects", "punt_ipredirects", "config/vpp/v2/ipredirect/", "vpp.punt.ipredirect"},
	{"vppConfig", "stnRules", "stn_rules", "config/vpp/stn/v2/rule/", "vpp.stn.rule"},
	{"vppConfig", "srv6Global", "srv6_global", "config/vpp/srv6/v2/srv6-global/", "vpp.srv6.srv6-global"},
	{"vppConfig", "srv6Localsids", "srv6_localsids", "config/vpp/srv6/v2/localsid/", "vpp.srv6.localsid"},
	{"vppConfig", "srv6Policies", "srv6_policies", "config/vpp/srv6/v2/policy/", "vpp.srv6.policy"},
	{"vppConfig", "srv6Steerings", "srv6_steerings", "config/vpp/srv6/v2/steering/", "vpp.srv6.steering"},
	{"vppConfig", "wgPeers", "wg_peers", "config/vpp/wg/v1/peer/", "vpp.wg.peer"},
	{"vppConfig", "dnsCache", "dns_cache", "config/vpp/v2/dnscache/", "vpp.dns.dnscache"},
	{"linuxConfig", "interfaces", "interfaces", "config/linux/interfaces/v2/interface/", "linux.interfaces.interface"},
	{"linuxConfig", "arpEntries", "arp_entries", "config/linux/l3/v2/arp/", "linux.l3.arp"},
	{"linuxConfig", "routes", "routes", "config/linux/l3/v2/route/", "linux.l3.route"},
	{"linuxConfig", "iptablesRulechains", "iptables_rulechains", "config/linux/iptables/v2/rulechain/", "linux.iptables.rulechain"},
}

// supportedModel returns the registered model serving a Ligato key prefix.
func supportedModel(prefix string) (models.Model, bool) {
	m, err := models.ModelForKey(prefix + "x")
	return m, err == nil
}

// supportedNames lists the models vppmesh has, for error messages.
func supportedNames() string {
	var names []string
	for _, m := range models.Models() {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// isLigatoConfig tells whether a parsed YAML/JSON document is Ligato's
// configurator.Config (vppConfig:, linuxConfig:, netallocConfig:).
func isLigatoConfig(doc map[string]any) bool {
	for _, k := range []string{"vppConfig", "vpp_config", "linuxConfig", "linux_config", "netallocConfig", "netalloc_config"} {
		if _, ok := doc[k]; ok {
			return true
		}
	}
	return false
}

// parseLigatoConfig turns Ligato's configurator.Config into key-value
// entries. Every item of a model vppmesh lacks becomes an error entry
// naming the model, and an unknown list is an error, never dropped.
func parseLigatoConfig(doc map[string]any) []importEntry {
	var out []importEntry
	groups := map[string]string{"vppConfig": "vppConfig", "vpp_config": "vppConfig",
		"linuxConfig": "linuxConfig", "linux_config": "linuxConfig", "netallocConfig": "netallocConfig", "netalloc_config": "netallocConfig"}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, gk := range keys {
		group, ok := groups[gk]
		if !ok {
			out = append(out, importEntry{Where: gk, Err: fmt.Errorf("unknown top-level key %q: want vppConfig or linuxConfig", gk)})
			continue
		}
		body, ok := doc[gk].(map[string]any)
		if !ok {
			if doc[gk] != nil {
				out = append(out, importEntry{Where: gk, Err: errors.New("want a mapping of lists (interfaces:, bridgeDomains:, ...)")})
			}
			continue
		}
		if group == "netallocConfig" {
			out = append(out, importEntry{Where: gk, Err: errors.New("netallocConfig is not supported by vppmesh (give addresses in the values themselves)")})
			continue
		}
		fields := make([]string, 0, len(body))
		for f := range body {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		for _, f := range fields {
			out = append(out, sectionEntries(group, f, body[f])...)
		}
	}
	return out
}

func sectionEntries(group, field string, v any) []importEntry {
	where := group + "." + field
	var sec *ligatoSection
	for i := range ligatoSections {
		s := &ligatoSections[i]
		if s.group == group && (s.json == field || s.proto == field) {
			sec = s
			break
		}
	}
	if sec == nil {
		return []importEntry{{Where: where, Err: fmt.Errorf("unknown list %q in %s", field, group)}}
	}
	var items []any
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		items = x
	case map[string]any: // the *-global models are single messages
		items = []any{x}
	default:
		return []importEntry{{Where: where, Err: errors.New("want a list of values")}}
	}
	m, ok := supportedModel(sec.prefix)
	var out []importEntry
	for i, it := range items {
		w := fmt.Sprintf("%s[%d]", where, i)
		if !ok {
			out = append(out, importEntry{Where: w, Err: fmt.Errorf("model %s is not supported by vppmesh (supported: %s)", sec.model, supportedNames())})
			continue
		}
		data, err := json.Marshal(it)
		if err != nil {
			out = append(out, importEntry{Where: w, Err: fmt.Errorf("encode value: %w", err)})
			continue
		}
		msg := m.New()
		if err := protojson.Unmarshal(data, msg); err != nil {
			out = append(out, importEntry{Where: w, Data: data, Err: fmt.Errorf("invalid %s value: %w", m.Name, err)})
			continue
		}
		key, err := models.KeyOf(msg)
		if err != nil {
			out = append(out, importEntry{Where: w, Data: data, Err: err})
			continue
		}
		out = append(out, importEntry{Where: w, Key: key, Data: data})
	}
	return out
}

// resolveModel maps a model argument (Ligato's name such as vpp.interfaces,
// or "all") to a key prefix. ok is false when the argument is no model
// name, so callers may take it as a descriptor or a key prefix.
func resolveModel(arg string) (prefix string, ok bool, err error) {
	if arg == "all" || arg == "" {
		return models.ConfigDir, true, nil
	}
	for _, m := range models.Models() {
		if m.Name == arg {
			return m.KeyPrefix, true, nil
		}
	}
	for _, s := range ligatoSections {
		if s.model == arg {
			if m, ok := supportedModel(s.prefix); ok {
				return m.KeyPrefix, true, nil
			}
			return "", true, fmt.Errorf("model %s is not supported by vppmesh (supported: %s)", arg, supportedNames())
		}
	}
	if strings.Contains(arg, ".") && !strings.Contains(arg, "/") {
		return "", true, fmt.Errorf("unknown model %q (supported: %s, all)", arg, supportedNames())
	}
	return "", false, nil
}
