#!/usr/bin/env bash
# vppmesh two-node demo (root): two network namespaces ("nodes") joined by a
# veth pair on 198.51.100.0/24, a vppsim with an AF_PACKET uplink in each,
# one agent per node (node A's embeds etcd, node B's uses it), one
# CrossConnect per node (memif <-> VXLAN towards the other node), a CNF
# sending on node A and a CNF counting on node B. DEMO_VPP=vpp uses FD.io VPP
# (vpp on PATH) instead of vppsim. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
SECONDS_OF_TRAFFIC=${DEMO_SECONDS:-5}
RATE=${DEMO_PPS:-20000}
VNI=${DEMO_VNI:-7001}
IMPL=${DEMO_VPP:-vppsim}
ETCD_PORT=${DEMO_ETCD_PORT:-23891}
HTTP_A=${DEMO_HTTP_PORT:-19291}
HTTP_B=$((HTTP_A + 1))
[ "$(id -u)" = 0 ] || { echo "demo-vxlan: needs root (network namespaces, packet sockets)" >&2; exit 1; }
command -v ip >/dev/null || { echo "demo-vxlan: needs iproute2 (ip)" >&2; exit 1; }
RUN=$(mktemp -d /tmp/vppmesh-demo-vxlan.XXXXXX)
NS=(vppmesh-demo-vxa-$$ vppmesh-demo-vxb-$$)
VETH=(vxdemo$$a vxdemo$$b)
ADDR=(198.51.100.1 198.51.100.2)

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	[ -n "${DEMO_KEEP:-}" ] || rm -rf "$RUN"
}
trap cleanup EXIT INT TERM
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { local node=$1; shift; "$BIN/agentctl" -e "127.0.0.1:$ETCD_PORT" --service-label "node$node" -H 127.0.0.1 --http-port "$([ "$node" = a ] && echo "$HTTP_A" || echo "$HTTP_B")" "$@"; }

step "two nodes: namespaces ${NS[*]}, veth ${VETH[0]} <-> ${VETH[1]} (no addresses in Linux: VPP owns them)"
for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "${NS[0]}" link add "${VETH[0]}" type veth peer name "${VETH[1]}" netns "${NS[1]}"
for i in 0 1; do
	ip netns exec "${NS[i]}" sh -c "echo 1 > /proc/sys/net/ipv6/conf/${VETH[i]}/disable_ipv6"
	ip -n "${NS[i]}" link set "${VETH[i]}" up
done

for i in 0 1; do
	node=$([ $i = 0 ] && echo a || echo b)
	step "node $node: $IMPL in ${NS[i]} and its agent (label node$node)"
	if [ "$IMPL" = vpp ]; then
		mkdir -p "$RUN/$node"
		sed -e "s#RUN#$RUN/$node#g" -e "s#PREFIX#vppmeshdemo$node$$#" vpp-config/startup-lab.conf >"$RUN/$node/startup.conf" 2>/dev/null ||
			{ echo "demo-vxlan: vpp-config/startup-lab.conf missing" >&2; exit 1; }
		ip netns exec "${NS[i]}" vpp -c "$RUN/$node/startup.conf" >"$RUN/$node-vpp.log" 2>&1 &
		api=$RUN/$node/api.sock stats=$RUN/$node/stats.sock
	else
		api=$RUN/$node-api.sock stats=$RUN/$node-stats.sock
		ip netns exec "${NS[i]}" "$BIN/vppsim" --socket "$api" --stats-socket "$stats" --log-level warn >"$RUN/$node-vppsim.log" 2>&1 &
	fi
	pids+=($!)
	for _ in $(seq 100); do [ -S "$api" ] && break; sleep 0.1; done
	etcd=(--etcd-endpoints "http://127.0.0.1:$ETCD_PORT")
	[ $i = 0 ] && etcd=(--etcd-endpoints= --etcd-listen "http://127.0.0.1:$ETCD_PORT" --etcd-peer "http://127.0.0.1:$((ETCD_PORT + 1))")
	"$BIN/vppmesh-agent" --label "node$node" --vpp-socket "$api" --vpp-stats-socket "$stats" --data-dir "$RUN/$node-data" --socket-dir "$RUN" \
		"${etcd[@]}" --http "127.0.0.1:$([ $i = 0 ] && echo "$HTTP_A" || echo "$HTTP_B")" \
		--stats-interval 200ms --counters-publish-interval 1s >"$RUN/$node-agent.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do ctl "$node" status -o json 2>/dev/null | grep -q '"ready": *true' && break; sleep 0.1; done
	up=$(printf '{"name":"uplink","type":"AF_PACKET","enabled":true,"ip_addresses":["%s/24"],"afpacket":{"host_if_name":"%s"}}' "${ADDR[i]}" "${VETH[i]}")
	echo "agentctl --service-label node$node kvdb put config/vpp/v2/interfaces/uplink '$up'"
	ctl "$node" kvdb put config/vpp/v2/interfaces/uplink "$up"
	xc=$(printf '{"name":"span","a":{"memif":{"master":true,"id":1,"socket_filename":"%s"}},"b":{"vxlan":{"remote":"%s","vni":%d,"uplink":"uplink"}}}' "$RUN/$node-memif.sock" "${ADDR[1 - i]}" "$VNI")
	echo "agentctl --service-label node$node kvdb put config/vppmesh/v1/xconnect/span '$xc'"
	ctl "$node" kvdb put config/vppmesh/v1/xconnect/span "$xc"
done

step "warm-up (ARP), then a CNF on node b counts what a CNF on node a sends for ${SECONDS_OF_TRAFFIC}s at $RATE pps"
ip netns exec "${NS[0]}" "$BIN/vppmesh-cnf" gen --socket "$RUN/a-memif.sock" --id 1 --count 20 --rate 200 --stream 9 --log-level warn >/dev/null
ip netns exec "${NS[1]}" "$BIN/vppmesh-cnf" sink --socket "$RUN/b-memif.sock" --id 1 --ring-size 8192 --log-level warn >"$RUN/sink.json" 2>"$RUN/sink.log" &
sink=$!
pids+=($sink)
sleep 1
ip netns exec "${NS[0]}" "$BIN/vppmesh-cnf" gen --socket "$RUN/a-memif.sock" --id 1 --log-level warn --size 128 --rate "$RATE" \
	--duration "${SECONDS_OF_TRAFFIC}s" >"$RUN/gen.json"
sleep 0.5
kill -INT "$sink"
wait "$sink" 2>/dev/null || true
echo "sender   (node a): $(cat "$RUN/gen.json")"
echo "receiver (node b): $(cat "$RUN/sink.json")"

sleep 1.2 # one counters period
for node in a b; do
	step "node $node: agentctl stats and the VPP's interfaces"
	ctl "$node" stats
	ctl "$node" vpp cli show interface
done
step "done; stopping everything"
