// Package e2e holds vppmesh's end-to-end tests: real processes (agent with
// embedded etcd, vppsim, memif CNFs, dpdk-testpmd) in network namespaces, with
// frames counted at both ends, and the dataplane benchmark driver.
package e2e
