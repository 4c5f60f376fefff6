// Package naming holds what the mesh controller and the render descriptors
// share about the scheduler values of a mesh connection: the names of its
// derived interfaces and the retiring-interface keys. It imports neither
// etcd nor govpp, so both sides of the import walls may use it.
//
// The endpoint-side interface of a connection is named "<name>-b" or
// "<name>-c", and a connection that moves to another endpoint gets the
// other name: the new interface and the xconnects to it are then new keys
// that the scheduler creates without first deleting the old endpoint
// interface (the scheduler runs a transaction's deletes before its
// creates). The controller hands the old interface to a retiring value
// (RetirePrefix) in the move's transaction and deletes that value in a
// later one.
package naming

import (
	"strings"

	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// AltSuffix, appended to a rendering's Name, names its endpoint-side
// interface "-c" instead of "-b".
const AltSuffix = "/c"

// RetirePrefix is the scheduler key prefix of a retiring endpoint-side
// interface: RetirePrefix+<interface name> → a CrossConnect whose Name is
// the interface's name and whose B is the link it was created with (A
// unset).
const RetirePrefix = "mesh/retiring/"

// Names returns the interfaces a rendering derives: the client's ("-a") and
// the endpoint's ("-b", or "-c" when Name ends with AltSuffix).
func Names(v *vppmeshv1.CrossConnect) (client, endpoint string) {
	if base, ok := strings.CutSuffix(v.GetName(), AltSuffix); ok {
		return base + "-a", base + "-c"
	}
	return v.GetName() + "-a", v.GetName() + "-b"
}

// Base returns v with the plain cross-connect name (no AltSuffix).
func Base(v *vppmeshv1.CrossConnect) *vppmeshv1.CrossConnect {
	name, ok := strings.CutSuffix(v.GetName(), AltSuffix)
	if !ok {
		return v
	}
	return &vppmeshv1.CrossConnect{Name: name, A: v.GetA(), B: v.GetB()}
}

// Retiring is the retiring value of the endpoint-side interface of v.
func Retiring(v *vppmeshv1.CrossConnect) (key string, r *vppmeshv1.CrossConnect) {
	_, b := Names(v)
	return RetirePrefix + b, &vppmeshv1.CrossConnect{Name: b, B: v.GetB()}
}
