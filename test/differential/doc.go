// Package differential plays one scripted govpp scenario against vppsim and against a
// real FD.io VPP 25.10 and compares what both answered: replies and retvals (good and
// bad arguments), the tables dumped after each step, the sw_interface_events received
// and the stats segment's interface and system entries. Outputs are normalized
// (sw_if_indexes by creation order, private directories, random MACs, pids, build
// dates) and must be equal; the differences vppsim keeps on purpose are listed in
// Allowlist, each with its row in test/vppsim/README.md.
package differential
