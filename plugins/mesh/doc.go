// Package mesh is the network service mesh controller: the orchestrator-side
// part that reads and writes the global mesh keys in etcd
// (/vppmesh/v1/service, endpoint, connection, status/connection) and feeds
// the agent's own side of every connection into the kvscheduler as a
// derived-value parent (a CrossConnect at RenderPrefix+<id>). It never calls
// VPP: the render subpackage registers the descriptor that does, through
// the interface and xconnect descriptors.
//
// The agent on the client's node owns a connection: it selects an endpoint
// (Select), allocates the endpoint's memif id and, for an IP service, a /31
// of the service's pool, and records the decision in the status key with one
// etcd transaction guarded by the status key's revision and by the
// allocation keys' absence, so that no two agents decide the same
// connection or take the same resource. Everything else (state, links,
// heals) follows from the decision and from what the scheduler and VPP
// report.
package mesh
