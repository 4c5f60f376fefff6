// Package kvscheduler is a generic engine that keeps a southbound (VPP) equal
// to a desired set of key-values: it plans changes in dependency order, keeps
// values PENDING until their dependencies exist, retries failures with
// backoff and resyncs by diffing retrieved state against desired state.
package kvscheduler
