// Package faults is vppmesh's reliability suite: a steady state of N
// cross-connects (plus a bridge domain of vhost-user interfaces) held by an
// agent process on an external etcd, while faults of every kind are
// injected at random moments with config churn running at the same time.
// After each fault the suite waits for convergence and checks VPP against
// what etcd holds (tags, admin state, xconnects, bridge members), the
// status keys, that interfaces whose config did not change kept their
// sw_if_index, and that the agent's goroutines, fds and memory are back
// near their baseline. It counts, per fault kind, injected, survived,
// config lost, untouched flaps and time to converge.
//
// `go test ./test/faults` is the smoke (every kind once, small N);
// `make faults` (scripts/faults.sh) is the long run: FAULTS_N,
// FAULTS_COUNT, FAULTS_SEED, FAULTS_OUT, VPP_IMPL.
package faults
