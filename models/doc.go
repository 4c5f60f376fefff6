// Package models maps every configuration model to its etcd key, and turns
// etcd values into typed protobuf messages (Ligato-compatible protobuf JSON).
package models
