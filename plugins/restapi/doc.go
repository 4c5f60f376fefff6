// Package restapi serves the agent's HTTP API: health and readiness probes,
// version, scheduler value status and transaction history, resync, the VPP
// dump and Prometheus metrics, with Ligato vpp-agent's paths kept as aliases.
package restapi
