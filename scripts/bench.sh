#!/usr/bin/env bash
# Launcher for the vppmesh benchmarks (the driver is Go: cmd/vppmesh-bench,
# test/bench). `make bench` runs every size 5 times; BENCH_QUICK=1 (make
# bench-quick) is the CI smoke: N=100 once, asserting only that the numbers are
# sane. VPP_SOCKET=/run/vpp/api.sock measures a real VPP instead of vppsim.
# Extra arguments go to vppmesh-bench (e.g. --sizes 100,1000 --runs 3).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x bin/vppmesh-agent && -x bin/agentctl && -x bin/vppsim ]] || go build -o bin/ ./cmd/vppmesh-agent ./cmd/agentctl ./cmd/vppsim
go build -o bin/ ./cmd/vppmesh-bench
args=()
[[ -n ${BENCH_QUICK:-} ]] && args+=(--quick)
[[ -n ${VPP_SOCKET:-} ]] && args+=(--vpp-socket "$VPP_SOCKET")
exec bin/vppmesh-bench --bin bin --out test/bench "${args[@]}" "$@"
