#!/usr/bin/env bash
# Measures where FD.io VPP stops taking memifs (it crashes; see README,
# "Running against FD.io VPP"). Starts private VPPs in /tmp/vpp-memifprobe and
# takes each down on purpose: run by hand, on a quiet machine, never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./test/vpprun/memifprobe "$@"
