// Package bench measures the vppmesh agent at scale against VPP (or vppsim):
// bulk apply versus a pipelined govpp floor, put-to-programmed latency,
// restarts, churn and memory footprint; cmd/vppmesh-bench and `make bench` run it.
package bench
