// Package metrics exposes the agent's Prometheus metrics (scheduler values
// and transactions, VPP API calls and connection, etcd activity) from its own
// registry, reading the other plugins through small interfaces.
package metrics
