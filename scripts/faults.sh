#!/usr/bin/env bash
# The long reliability run (make faults): N cross-connects, FAULTS_COUNT
# faults at random moments with config churn, on every VPP target VPP_IMPL
# selects (vppsim, and FD.io VPP when found). The per-kind counters are
# appended to FAULTS_OUT (test/faults/results.md, the committed results, is NOT touched:
# the table goes to faults-results.md in the current directory).
# The CI smoke is the default `go test ./test/faults` (N=20, each kind once,
# plus TestRestartAfterDumpTimeout). FAULTS_KINDS=a,b limits the kinds;
# FAULTS_SLOW_DUMP_MS=11000 makes agent-restart-slow-vpp outlive the agent's
# 10 s call timeout; FAULTS_LOGDIR=DIR keeps each agent log there.
set -euo pipefail
cd "$(dirname "$0")/.."
export FAULTS_N=${FAULTS_N:-1000}
export FAULTS_COUNT=${FAULTS_COUNT:-500}
export FAULTS_SEED=${FAULTS_SEED:-$RANDOM}
export FAULTS_OUT=${FAULTS_OUT:-$PWD/faults-results.md}
go build -o bin/ ./cmd/vppmesh-agent
export VPPMESH_AGENT_BIN=$PWD/bin/vppmesh-agent
echo "faults: N=$FAULTS_N count=$FAULTS_COUNT seed=$FAULTS_SEED VPP_IMPL=${VPP_IMPL:-default} -> $FAULTS_OUT"
exec go test -count=1 -timeout "${FAULTS_TIMEOUT:-600m}" -v -run 'TestFaults' ./test/faults/
