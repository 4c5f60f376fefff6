// Package govppmux owns the agent's connection to VPP: it connects over the
// binary API socket, checks message compatibility, health-checks with
// control_ping, reconnects with backoff forever and counts API calls.
package govppmux
