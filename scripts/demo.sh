#!/usr/bin/env bash
# vppmesh demo: embedded etcd + vppsim + the agent; two CNFs joined by one
# cross-connect put through agentctl; traffic for a few seconds; then the
# counts from both CNFs, VPP and the agent. Runs as any user: everything
# lives in a private runtime directory that is removed at the end.
# VPP=vpp runs FD.io VPP (VPP_BIN, or vpp on PATH; as root) instead of vppsim,
# with vpp-config/startup-lab.conf.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
SECONDS_OF_TRAFFIC=${DEMO_SECONDS:-5}
RATE=${DEMO_PPS:-200000}
# Deep rings absorb scheduling hiccups of three busy processes on few cores.
RING=${DEMO_RING:-8192}
base=${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}
RUN=$(mktemp -d "$base/vppmesh-demo.XXXXXX")
# Ports of the demo's own etcd and REST API (override if taken).
ETCD_PORT=${DEMO_ETCD_PORT:-23791}
HTTP_PORT=${DEMO_HTTP_PORT:-19191}
export ETCD_ENDPOINTS=127.0.0.1:$ETCD_PORT MICROSERVICE_LABEL=demo AGENT_HTTP_PORT=$HTTP_PORT

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${DEMO_KEEP:-}" ] || rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

IMPL=${VPP:-vppsim}
case $IMPL in
vppsim)
	step "starting vppsim (VPP stand-in) and the agent with an embedded etcd in $RUN"
	"$BIN/vppsim" --socket "$RUN/api.sock" --stats-socket "$RUN/stats.sock" --log-level warn >"$RUN/vppsim.log" 2>&1 &
	pids+=($!)
	;;
vpp)
	vpp=${VPP_BIN:-$(command -v vpp || true)}
	if [ -z "$vpp" ]; then
		echo "demo: VPP=vpp but no FD.io VPP found: set VPP_BIN=/path/to/vpp or put vpp on PATH (FD.io's packages)" >&2
		exit 1
	fi
	[ "$(id -u)" = 0 ] || { echo "demo: FD.io VPP runs as root here (no hugepages, 4k pages)" >&2; exit 1; }
	step "starting FD.io VPP ($vpp, vpp-config/startup-lab.conf) and the agent with an embedded etcd in $RUN"
	plugins=$(dirname "$(readlink -f "$vpp")")/../lib/x86_64-linux-gnu/vpp_plugins
	sed -e "s#RUN#$RUN#g" -e "s#PREFIX#vppmesh-demo-$$#g" vpp-config/startup-lab.conf >"$RUN/startup.conf"
	[ -d "$plugins" ] && sed -i "s#^plugins {#plugins {\n  path $(readlink -f "$plugins")#" "$RUN/startup.conf"
	"$vpp" -c "$RUN/startup.conf" >"$RUN/vpp.out" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ -S "$RUN/api.sock" ] && [ -S "$RUN/stats.sock" ] && break; sleep 0.1; done
	[ -S "$RUN/api.sock" ] || { echo "demo: VPP did not start:" >&2; tail -20 "$RUN/vpp.out" >&2; exit 1; }
	;;
*)
	echo "demo: VPP=$IMPL: want vppsim or vpp" >&2
	exit 1
	;;
esac
"$BIN/vppmesh-agent" --label demo --etcd-endpoints= --vpp-socket "$RUN/api.sock" --vpp-stats-socket "$RUN/stats.sock" --stats-interval 200ms --counters-publish-interval 1s --data-dir "$RUN/etcd" \
	--etcd-listen "http://127.0.0.1:$ETCD_PORT" --etcd-peer "http://127.0.0.1:$((ETCD_PORT + 1))" \
	--http "127.0.0.1:$HTTP_PORT" --socket-dir "$RUN" >"$RUN/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	"$BIN/agentctl" status -o json 2>/dev/null | grep -q '"ready": *true' && break
	sleep 0.1
done
"$BIN/agentctl" status

step "starting two CNFs (memif clients) in receive and send mode"
"$BIN/vppmesh-cnf" sink --socket "$RUN/memif.sock" --id 2 --ring-size "$RING" --log-level warn >"$RUN/sink.json" 2>"$RUN/sink.log" &
sink=$!
pids+=($sink)

step "agentctl kvdb put: one cross-connect between memif id 1 and memif id 2"
xc=$(printf '{"name":"demo-xc","a":{"memif":{"master":true,"id":1,"socket_filename":"%s","ring_size":%d}},"b":{"memif":{"master":true,"id":2,"socket_filename":"%s","ring_size":%d}}}' "$RUN/memif.sock" "$RING" "$RUN/memif.sock" "$RING")
echo "agentctl kvdb put config/vppmesh/v1/xconnect/demo-xc '$xc'"
"$BIN/agentctl" kvdb put config/vppmesh/v1/xconnect/demo-xc "$xc"
# Traffic starts once the receiving CNF's memif is up (Ligato's oper-state key).
for _ in $(seq 100); do
	"$BIN/agentctl" kvdb get /vnf-agent/demo/vpp/status/v2/interface/demo-xc-b 2>/dev/null | grep -q '"oper_status": *"UP"' && break
	sleep 0.1
done
"$BIN/agentctl" kvdb get /vnf-agent/demo/vpp/status/v2/interface/demo-xc-b

step "sending ${SECONDS_OF_TRAFFIC}s of 64-byte frames at up to $RATE pps"
"$BIN/vppmesh-cnf" gen --socket "$RUN/memif.sock" --id 1 --ring-size "$RING" --log-level warn --size 64 --rate "$RATE" \
	--duration "${SECONDS_OF_TRAFFIC}s" --progress >"$RUN/gen.json"
sleep 0.5
kill -INT "$sink"
wait "$sink" 2>/dev/null || true

step "what the CNFs counted"
echo "sender:   $(cat "$RUN/gen.json")"
echo "receiver: $(cat "$RUN/sink.json")"

step "$IMPL's counters (agentctl vpp cli show interface)"
"$BIN/agentctl" vpp cli show interface

sleep 1.2 # one counters period, so the agent has read the last ones
step "the agent's counters per cross-connect (agentctl stats)"
"$BIN/agentctl" stats

step "the agent's view (agentctl values)"
"$BIN/agentctl" values

step "done; stopping everything and removing $RUN"
