package models

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models/vpp/interfaces"
	"github.com/vppmesh/vppmesh/models/vpp/l2"
	"github.com/vppmesh/vppmesh/models/vpp/l3"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// Key layout, relative to the agent's root /vnf-agent/<label>/.
const (
	// ConfigDir holds desired state; everything below it is a model key.
	ConfigDir = "config/"
	// StatusDir mirrors ConfigDir with one status value per config key.
	StatusDir = "status/"
	// InterfaceStatePrefix is Ligato's interface oper-state prefix.
	InterfaceStatePrefix = "vpp/status/v2/interface/"
)

// Model describes one configuration model: its key prefix (relative to the
// agent root, always below ConfigDir) and how to build and name a value.
type Model struct {
	Name      string
	KeyPrefix string
	New       func() proto.Message
	// NameOf returns the part of the key after KeyPrefix for a value.
	NameOf func(proto.Message) string
	// MatchKey, when set, checks a value against the name part of the key
	// it was stored under (and may complete the value from the key, as
	// Ligato does for a route's vrf_id) instead of NameOf(v) == name. For
	// models whose keys Ligato users spell in more than one way.
	MatchKey func(name string, v proto.Message) error
}

var registry = []Model{
	{
		Name:      "vpp.interfaces",
		KeyPrefix: "config/vpp/v2/interfaces/",
		New:       func() proto.Message { return &interfaces.Interface{} },
		NameOf:    func(m proto.Message) string { return m.(*interfaces.Interface).GetName() },
	},
	{
		Name:      "vpp.l2.xconnect",
		KeyPrefix: "config/vpp/l2/v2/xconnect/",
		New:       func() proto.Message { return &l2.XConnectPair{} },
		NameOf:    func(m proto.Message) string { return m.(*l2.XConnectPair).GetReceiveInterface() },
	},
	{
		Name:      "vpp.l2.bridge-domain",
		KeyPrefix: "config/vpp/l2/v2/bridge-domain/",
		New:       func() proto.Message { return &l2.BridgeDomain{} },
		NameOf:    func(m proto.Message) string { return m.(*l2.BridgeDomain).GetName() },
	},
	{
		Name:      "vpp.l2.fib",
		KeyPrefix: "config/vpp/l2/v2/fib/",
		New:       func() proto.Message { return &l2.FIBEntry{} },
		NameOf: func(m proto.Message) string {
			f := m.(*l2.FIBEntry)
			if f.GetBridgeDomain() == "" || f.GetPhysAddress() == "" {
				return ""
			}
			return f.GetBridgeDomain() + "/mac/" + f.GetPhysAddress()
		},
	},
	{
		Name:      "vpp.vrf-table",
		KeyPrefix: "config/vpp/v2/vrf-table/",
		New:       func() proto.Message { return &l3.VrfTable{} },
		NameOf: func(m proto.Message) string {
			v := m.(*l3.VrfTable)
			return fmt.Sprintf("id/%d/protocol/%s", v.GetId(), v.GetProtocol())
		},
	},
	{
		Name:      "vpp.route",
		KeyPrefix: "config/vpp/v2/route/",
		New:       func() proto.Message { return &l3.Route{} },
		NameOf:    func(m proto.Message) string { return RouteName(m.(*l3.Route)) },
		MatchKey:  func(name string, m proto.Message) error { return matchRouteKey(name, m.(*l3.Route)) },
	},
	{
		Name:      "vpp.arp",
		KeyPrefix: "config/vpp/v2/arp/",
		New:       func() proto.Message { return &l3.ARPEntry{} },
		NameOf: func(m proto.Message) string {
			a := m.(*l3.ARPEntry)
			if a.GetInterface() == "" || a.GetIpAddress() == "" {
				return ""
			}
			return a.GetInterface() + "/" + a.GetIpAddress()
		},
	},
	{
		Name:      "vpp.proxyarp-global",
		KeyPrefix: "config/vpp/v2/proxyarp-global/",
		New:       func() proto.Message { return &l3.ProxyARP{} },
		// One value for the whole agent, as in Ligato.
		NameOf: func(proto.Message) string { return "settings" },
	},
	{
		Name:      "vppmesh.xconnect",
		KeyPrefix: "config/vppmesh/v1/xconnect/",
		New:       func() proto.Message { return &vppmeshv1.CrossConnect{} },
		NameOf:    func(m proto.Message) string { return m.(*vppmeshv1.CrossConnect).GetName() },
	},
}

// Models lists every registered model, in a stable order.
func Models() []Model {
	out := make([]Model, len(registry))
	copy(out, registry)
	return out
}

// AgentRoot is the etcd prefix of one agent: /vnf-agent/<label>/.
func AgentRoot(label string) string { return "/vnf-agent/" + label + "/" }

// ErrUnknownModel is returned for a key that no model claims.
var ErrUnknownModel = errors.New("no model registered for key")

// UnsupportedModelError is returned for the key of a Ligato vpp-agent model
// that vppmesh does not implement. errors.Is(err, ErrUnknownModel) holds.
type UnsupportedModelError struct {
	Model     string   // Ligato's model name, e.g. "vpp.acls"
	Supported []string // names of the models vppmesh implements
}

func (e *UnsupportedModelError) Error() string {
	return fmt.Sprintf("model %s is not supported by vppmesh (supported: %s)", e.Model, strings.Join(e.Supported, ", "))
}

// Is makes an UnsupportedModelError an ErrUnknownModel.
func (e *UnsupportedModelError) Is(target error) bool { return target == ErrUnknownModel }

// ligatoOnly lists Ligato vpp-agent v3.5 models vppmesh does not implement
// (name and key prefix relative to the agent root), so that their keys get
// an error naming the model rather than a bare "unknown key". Longer
// prefixes first where one is inside another.
var ligatoOnly = []struct{ name, prefix string }{
	{"vpp.ipscanneigh-global", "config/vpp/v2/ipscanneigh-global"},
	{"vpp.dhcp-proxy", "config/vpp/v2/dhcp-proxy/"},
	{"vpp.l3xconnect", "config/vpp/v2/l3xconnect/"},
	{"vpp.teib", "config/vpp/v2/teib/"},
	{"vpp.ip6nd", "config/vpp/v2/ip6nd/"},
	{"vpp.vrrp", "config/vpp/v2/vrrp/"},
	{"vpp.span", "config/vpp/v2/span/"},
	{"vpp.stn", "config/vpp/stn/v2/"},
	{"vpp.acls", "config/vpp/acls/v2/"},
	{"vpp.abfs", "config/vpp/abfs/v2/"},
	{"vpp.nat", "config/vpp/nat/v2/"},
	{"vpp.ipsec", "config/vpp/ipsec/v2/"},
	{"vpp.punt", "config/vpp/v2/tohost/"},
	{"vpp.punt", "config/vpp/v2/ipredirect/"},
	{"vpp.punt", "config/vpp/v2/exception/"},
	{"vpp.srv6", "config/vpp/srv6/v2/"},
	{"vpp.ipfix", "config/vpp/ipfix/v2/"},
	{"vpp.dns", "config/vpp/v2/dnscache/"},
	{"vpp.wireguard", "config/vpp/wg/v1/"},
	{"linux.interfaces", "config/linux/interfaces/v2/"},
	{"linux.l3", "config/linux/l3/v2/"},
	{"linux.iptables", "config/linux/iptables/v2/"},
	{"linux.namespace", "config/linux/namespace/v2/"},
	{"netalloc", "config/netalloc/v1/"},
}

// ModelForKey returns the model whose prefix the (agent-relative) key has.
// A key of a Ligato model vppmesh lacks gets an *UnsupportedModelError
// that names the model and lists the supported ones.
func ModelForKey(key string) (Model, error) {
	for _, m := range registry {
		if strings.HasPrefix(key, m.KeyPrefix) {
			return m, nil
		}
	}
	for _, l := range ligatoOnly {
		if strings.HasPrefix(key, l.prefix) {
			return Model{}, &UnsupportedModelError{Model: l.name, Supported: ModelNames()}
		}
	}
	return Model{}, fmt.Errorf("%w: %q (supported: %s)", ErrUnknownModel, key, strings.Join(ModelNames(), ", "))
}

// ModelNames lists the names of the supported models, in registry order.
func ModelNames() []string {
	out := make([]string, 0, len(registry))
	for _, m := range registry {
		out = append(out, m.Name)
	}
	return out
}

// ModelForValue returns the model of a message's type.
func ModelForValue(v proto.Message) (Model, error) {
	name := v.ProtoReflect().Descriptor().FullName()
	for _, m := range registry {
		if m.New().ProtoReflect().Descriptor().FullName() == name {
			return m, nil
		}
	}
	return Model{}, fmt.Errorf("no model registered for message %s", name)
}

// KeyOf builds the agent-relative key of a value.
func KeyOf(v proto.Message) (string, error) {
	m, err := ModelForValue(v)
	if err != nil {
		return "", err
	}
	name := m.NameOf(v)
	if name == "" {
		return "", fmt.Errorf("%s value has an empty name", m.Name)
	}
	return m.KeyPrefix + name, nil
}

var unmarshalOpts = protojson.UnmarshalOptions{DiscardUnknown: false}

// Unmarshal parses a value stored under an agent-relative key. It accepts
// snake_case and lowerCamel field names and enum names or numbers, rejects
// unknown fields, and rejects a value whose own key differs from key.
func Unmarshal(key string, data []byte) (proto.Message, error) {
	m, err := ModelForKey(key)
	if err != nil {
		return nil, err
	}
	v := m.New()
	if err := unmarshalOpts.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("%s: invalid %s value: %w", key, m.Name, err)
	}
	if m.MatchKey != nil {
		if err := m.MatchKey(strings.TrimPrefix(key, m.KeyPrefix), v); err != nil {
			return nil, fmt.Errorf("%s: key does not match value: %w", key, err)
		}
		return v, nil
	}
	if want := m.KeyPrefix + m.NameOf(v); want != key {
		return nil, fmt.Errorf("%s: key does not match value: the value's key is %q", key, want)
	}
	return v, nil
}

var marshalOpts = protojson.MarshalOptions{UseProtoNames: true}

// Marshal encodes a value as protobuf JSON with Ligato's (snake_case) names.
func Marshal(v proto.Message) ([]byte, error) { return marshalOpts.Marshal(v) }

// StatusKey maps an agent-relative config key to its status key.
func StatusKey(configKey string) string {
	return StatusDir + strings.TrimPrefix(configKey, ConfigDir)
}

// Prefixes returns every model prefix, sorted.
func Prefixes() []string {
	out := make([]string, 0, len(registry))
	for _, m := range registry {
		out = append(out, m.KeyPrefix)
	}
	sort.Strings(out)
	return out
}
