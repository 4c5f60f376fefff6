#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine (run as root):
# DPDK testpmd with the memif / vhost / virtio-user PMDs, etcd, iproute2,
# Docker and docker-compose (the lab's docker runtime and compose export),
# Graphviz (lab pictures, agentctl graph, /scheduler/graph as SVG), python3-jsonschema (containerlab export check), then
# the Go modules. Without root it only checks and says what is missing.
set -euo pipefail
pkgs=(dpdk dpdk-dev librte-net-memif23 librte-net-vhost23 librte-net-virtio23 etcd-server etcd-client iproute2 docker.io docker-compose graphviz python3-jsonschema)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -eq 0 ]]; then
		echo "ci-deps: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "ci-deps: missing Debian packages (install as root): ${missing[*]}" >&2
	fi
fi
go mod download
