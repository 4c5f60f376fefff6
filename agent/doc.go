// Package agent wires vppmesh's plugins into one process and owns their start
// and stop order: etcd, VPP connection, scheduler and descriptors,
// orchestrator, REST and metrics.
package agent
