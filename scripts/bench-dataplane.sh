#!/usr/bin/env bash
# Dataplane benchmark: NDR and PDR (RFC 2544 throughput, as FD.io CSIT runs it)
# of each middle hop — vppsim, dpdk-testpmd io forwarding, real FD.io VPP when
# found — between the same paced generator and sink (vppmesh-cnf), plus the
# generator and sink back to back ("direct": how far the peers go). Rows: memif
# cross-connect 64 B and 1500 B, bridge domain of 2, memif → vhost-user →
# virtio-user. Each search bisects the offered rate over fixed-length trials,
# each rate repeated; loss is counted at the sink and at the middle hop's own
# counters (stats segment, testpmd's report), CPU from /proc/<pid>/stat; the
# middle hop runs alone on CPU 1, the peers on CPU 0 (test/e2e/bench_test.go).
#
# Writes test/e2e/bench-results.json and test/e2e/bench-results.md (measure on
# a quiet machine: nothing else running). BENCH_QUICK=1 runs one short trial
# per row (CI smoke: the counts add up) and leaves the repository untouched.
# Knobs: VPPMESH_BENCH_TRIAL (2s), VPPMESH_BENCH_REPEATS (2),
# VPPMESH_BENCH_SEARCHES (3), VPPMESH_BENCH_HOPS, VPPMESH_BENCH_ROWS.
# Needs dpdk-testpmd (make deps); root puts the peers in network namespaces
# and lets FD.io VPP run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full
[[ -n "${BENCH_QUICK:-}" ]] && mode=quick
out=$(mktemp)
resdir=$PWD/test/e2e
if [[ $mode == quick ]]; then
	resdir=$(mktemp -d)
fi
trap 'rm -f "$out"; [[ $mode == quick ]] && rm -rf "$resdir"' EXIT
timeout=20m
[[ $mode == full ]] && timeout=240m
echo "bench-dataplane: mode $mode (go test ./test/e2e -run TestDataplaneBench)"
if ! VPPMESH_DATAPLANE_BENCH=$mode VPPMESH_BENCH_OUT=$resdir go test -count=1 -timeout "$timeout" -run '^TestDataplaneBench$' -v ./test/e2e >"$out" 2>&1; then
	cat "$out"
	echo "bench-dataplane: FAILED" >&2
	exit 1
fi
cat "$resdir/bench-results.md"
[[ $mode == full ]] && echo "bench-dataplane: wrote test/e2e/bench-results.json and test/e2e/bench-results.md"
exit 0
