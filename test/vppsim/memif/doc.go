// Package memif is vppmesh's own implementation of the shared-memory packet interface
// (memif protocol 2.0 as in VPP's src/plugins/memif/memif.h), in both roles, for vppsim
// and the test CNF: control channel over a unix SEQPACKET socket, memfd regions, rings and
// an allocation-free burst data path.
package memif
