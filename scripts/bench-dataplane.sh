#!/usr/bin/env bash
# Dataplane benchmark: packets per second through one vppsim memif
# cross-connect (CNF gen -> vppsim -> CNF sink) beside dpdk-testpmd as the
# middle hop between the same two CNFs, in the same run, as a ratio; 64- and
# 1500-byte frames, 1024- and 16384-slot rings; and memif -> vppsim ->
# vhost-user (testpmd virtio-user forwarding) beside testpmd in vppsim's place;
# and two nodes (network namespaces, root): memif -> vppsim -> VXLAN over a veth
# (AF_PACKET) -> vppsim -> memif beside two testpmd forwarding memif <-> af_packet.
# Repeated runs (5), medians. Writes test/e2e/bench-results.json and
# test/e2e/bench-results.md. BENCH_QUICK=1 does one short run of each case
# (CI smoke: completes, numbers sane) and leaves the repository untouched.
# Needs dpdk-testpmd (make deps); root puts the CNFs in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full
[[ -n "${BENCH_QUICK:-}" ]] && mode=quick
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "bench-dataplane: mode $mode (go test ./test/e2e -run TestDataplaneBench)"
if ! VPPMESH_DATAPLANE_BENCH=$mode go test -count=1 -timeout 30m -run '^TestDataplaneBench$' -v ./test/e2e >"$out" 2>&1; then
	cat "$out"
	echo "bench-dataplane: FAILED" >&2
	exit 1
fi
grep -E '^\s+bench_test\.go|^\s*\|' "$out" | sed -E 's/^\s+//'
[[ $mode == full ]] && echo "bench-dataplane: wrote test/e2e/bench-results.json and test/e2e/bench-results.md"
exit 0
