// Package orchestrator moves desired state from etcd into the kvscheduler and
// writes per-key status and interface oper state back to etcd; it also runs
// the embedded etcd server the agent uses by default. It never calls VPP.
package orchestrator
