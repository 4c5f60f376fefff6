// Package cnf is vppmesh's traffic CNF: a memif program that generates sequenced frames,
// sinks and checks them (loss, duplicates, reordering per stream) or reflects them, used
// by the demo and the end-to-end tests against vppsim.
package cnf
