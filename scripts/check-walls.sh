#!/usr/bin/env bash
# The walls of DESIGN.md, checked on the import graph of non-test code:
# the product never depends on test/, vppsim never on the agent's packages,
# the scheduler on no model/etcd/govpp, models on no plugin.
set -euo pipefail
mod=github.com/vppmesh/vppmesh
fail=0
deny() { # deny <packages> <regexp> <reason>
	local bad
	bad=$(go list -deps $1 | grep -E "$2" || true)
	if [[ -n $bad ]]; then
		echo "wall broken: $3:"
		echo "$bad" | sed 's/^/  /'
		fail=1
	fi
}
deny "./agent/... ./plugins/... ./models/... ./cmd/vppmesh-agent ./cmd/agentctl ./pkg/..." "^$mod/test/" "the product imports test/"
deny "./test/vppsim/... ./cmd/vppsim" "^$mod/(plugins|models|agent|pkg)(/|$)" "vppsim imports the agent's packages"
deny "./plugins/kvscheduler" "^$mod/models|go.etcd.io|go.fd.io" "kvscheduler imports a model, etcd or govpp"
deny "./models/..." "^$mod/plugins" "models import a plugin"
deny "./plugins/vpp/... ./plugins/xconnect" "go.etcd.io" "a descriptor imports etcd"
deny "./plugins/orchestrator" "go.fd.io/govpp" "the orchestrator imports govpp"
deny "./plugins/mesh/render" "go.etcd.io" "a descriptor imports etcd"
deny "./plugins/mesh" "go.fd.io/govpp" "the mesh controller (orchestrator side) imports govpp"
exit $fail
