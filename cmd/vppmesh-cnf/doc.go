// Command vppmesh-cnf is the traffic CNF of test/cnf: it plugs into a memif (of vppsim,
// VPP or another CNF) to generate, sink and check, or reflect sequenced frames, and prints
// a JSON summary on stdout.
package main
