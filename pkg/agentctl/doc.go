// Package agentctl implements the agentctl command line: etcd key-value
// access with model validation, bulk import, and views of a running agent's
// REST API. It speaks Ligato vpp-agent agentctl's flags and verbs.
package agentctl
