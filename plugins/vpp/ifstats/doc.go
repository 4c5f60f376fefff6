// Package ifstats reads VPP's interface counters from its stats segment
// (govpp's statsclient) and names them by the agent's logical interface
// names.
package ifstats
