package models

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// The network service mesh lives under global keys, not under one agent's
// root: every agent watches MeshRoot.
const (
	MeshRoot             = "/vppmesh/v1/"
	MeshServicePrefix    = MeshRoot + "service/"
	MeshEndpointPrefix   = MeshRoot + "endpoint/"
	MeshConnectionPrefix = MeshRoot + "connection/"
	MeshStatusPrefix     = MeshRoot + "status/connection/"
	// MeshAllocPrefix holds one key per allocated resource (an IP /31 of a
	// service, a memif id on an endpoint), created in the same etcd
	// transaction as the status that uses it, so that no two agents take
	// the same one.
	MeshAllocPrefix = MeshRoot + "alloc/"
	// MeshAgentPrefix holds one key per running agent, under its lease.
	MeshAgentPrefix = MeshRoot + "agent/"
	// MeshNodePrefix holds one MeshNode per node taking part in
	// cross-node connections (its VXLAN underlay).
	MeshNodePrefix = MeshRoot + "node/"
	// MeshSidePrefix holds the endpoint node's side of each cross-node
	// connection (ConnectionSide).
	MeshSidePrefix = MeshRoot + "status/side/"
)

// MeshKind names one kind of mesh object.
type MeshKind string

const (
	MeshService    MeshKind = "service"
	MeshEndpoint   MeshKind = "endpoint"
	MeshConnection MeshKind = "connection"
	MeshStatus     MeshKind = "status"
	MeshNodeKind   MeshKind = "node"
	MeshSide       MeshKind = "side"
)

// MeshKey returns the etcd key of a mesh object.
func MeshKey(kind MeshKind, name string) string {
	switch kind {
	case MeshService:
		return MeshServicePrefix + name
	case MeshEndpoint:
		return MeshEndpointPrefix + name
	case MeshConnection:
		return MeshConnectionPrefix + name
	case MeshStatus:
		return MeshStatusPrefix + name
	case MeshNodeKind:
		return MeshNodePrefix + name
	case MeshSide:
		return MeshSidePrefix + name
	}
	return ""
}

// ParseMeshKey tells which mesh object a global key holds. ok is false for
// keys of no object kind (alloc, agent, unknown).
func ParseMeshKey(key string) (kind MeshKind, name string, ok bool) {
	for _, k := range []struct {
		prefix string
		kind   MeshKind
	}{
		{MeshStatusPrefix, MeshStatus},
		{MeshSidePrefix, MeshSide},
		{MeshNodePrefix, MeshNodeKind},
		{MeshServicePrefix, MeshService},
		{MeshEndpointPrefix, MeshEndpoint},
		{MeshConnectionPrefix, MeshConnection},
	} {
		if rest, found := strings.CutPrefix(key, k.prefix); found && rest != "" && !strings.Contains(rest, "/") {
			return k.kind, rest, true
		}
	}
	return "", "", false
}

// NewMeshValue returns an empty value of a mesh kind.
func NewMeshValue(kind MeshKind) proto.Message {
	switch kind {
	case MeshService:
		return &vppmeshv1.NetworkService{}
	case MeshEndpoint:
		return &vppmeshv1.NetworkServiceEndpoint{}
	case MeshConnection:
		return &vppmeshv1.Connection{}
	case MeshStatus:
		return &vppmeshv1.ConnectionStatus{}
	case MeshNodeKind:
		return &vppmeshv1.MeshNode{}
	case MeshSide:
		return &vppmeshv1.ConnectionSide{}
	}
	return nil
}

// MeshNameOf returns the name a mesh value is stored under.
func MeshNameOf(v proto.Message) string {
	switch m := v.(type) {
	case *vppmeshv1.NetworkService:
		return m.GetName()
	case *vppmeshv1.NetworkServiceEndpoint:
		return m.GetName()
	case *vppmeshv1.Connection:
		return m.GetId()
	case *vppmeshv1.ConnectionStatus:
		return m.GetId()
	case *vppmeshv1.MeshNode:
		return m.GetName()
	case *vppmeshv1.ConnectionSide:
		return m.GetId()
	}
	return ""
}

// UnmarshalMesh parses a mesh value stored under a global key, with the same
// rules as Unmarshal: unknown fields rejected, the value's own name must be
// the key's.
func UnmarshalMesh(key string, data []byte) (MeshKind, proto.Message, error) {
	kind, name, ok := ParseMeshKey(key)
	if !ok {
		return "", nil, fmt.Errorf("%w: %q", ErrUnknownModel, key)
	}
	v := NewMeshValue(kind)
	if err := unmarshalOpts.Unmarshal(data, v); err != nil {
		return kind, nil, fmt.Errorf("%s: invalid %s value: %w", key, kind, err)
	}
	if got := MeshNameOf(v); got != name {
		return kind, nil, fmt.Errorf("%s: key does not match value: the value names %q", key, got)
	}
	return kind, v, nil
}

// MeshRenderPrefix is the agent-relative scheduler key prefix of the
// agent's side of a mesh connection (a CrossConnect value). It lies outside
// ConfigDir: it is never an etcd config key and gets no per-key status
// document; the connection's status key says how it is doing.
const MeshRenderPrefix = "mesh/connection/"
