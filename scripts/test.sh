#!/usr/bin/env bash
# Runs the test suite (unit, integration, e2e) and prints, at the end, how many
# tests ran against each VPP implementation (vppsim, FD.io VPP; see
# test/vpptarget). VPP_IMPL=vppsim|vpp|both picks them (default: both when a
# VPP is found: VPP_BIN, `vpp` on PATH, or VPP_SOCKET).
# Extra arguments go to `go test` (default: ./...).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)
"$GO" build -o bin/ ./test/vpptarget/implcount
"$GO" test -count=1 -timeout "${TEST_TIMEOUT:-30m}" -json "${pkgs[@]}" | ./bin/implcount
