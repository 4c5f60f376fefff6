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

// ModelForKey returns the model whose prefix the (agent-relative) key has.
func ModelForKey(key string) (Model, error) {
	for _, m := range registry {
		if strings.HasPrefix(key, m.KeyPrefix) {
			return m, nil
		}
	}
	return Model{}, fmt.Errorf("%w: %q", ErrUnknownModel, key)
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
