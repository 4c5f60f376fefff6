# vppmesh front door. `make help` lists the targets.
GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/vppmesh/vppmesh/agent.Version=$(VERSION) -X github.com/vppmesh/vppmesh/pkg/agentctl.Version=$(VERSION)
FUZZTIME ?= 10s
PROTOS   := $(shell find models -name '*.proto')

.PHONY: help build test race ci deps lint vet proto demo demo-vxlan bench bench-agent bench-dataplane bench-mesh bench-quick fuzz faults clean images lab lab-docker lab-docker-all

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build vppmesh-agent, agentctl, vppsim (and the CNF) into ./bin
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

test: build ## unit, integration and e2e tests, on vppsim and FD.io VPP when found (VPP_IMPL=vppsim|vpp|both); counts per implementation at the end
	GO=$(GO) ./scripts/test.sh

race: ## the unit and integration tests under the race detector
	$(GO) test -race -count=1 -timeout 20m ./agent/... ./pkg/... ./plugins/... ./test/integration/ ./test/vppsim/... ./test/cnf/

deps: ## install what the tests need (Debian packages as root, Go modules)
	./scripts/ci-deps.sh

ci: deps lint test race ## what CI runs: deps, lint, all tests (and again under -race), a short smoke of every fuzz target and benchmark
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)
	$(MAKE) bench-quick
	$(MAKE) lab-docker

lint: vet ## gofmt, go vet and the import walls of DESIGN.md
	./scripts/check-walls.sh
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

proto: ## regenerate models/*.pb.go (needs protoc and protoc-gen-go)
	cd models && protoc -I . --go_out=. --go_opt=paths=source_relative $(patsubst models/%,%,$(PROTOS))

demo: build ## the main job: etcd + vppsim + agent + two CNFs + a cross-connect with traffic
	./scripts/demo.sh

demo-vxlan: build ## two nodes (network namespaces, root) over VXLAN: a CNF on each, traffic A→B (DEMO_VPP=vpp: FD.io VPP)
	./scripts/demo-vxlan.sh

bench: build ## benchmarks: agent at scale (test/bench/results.*) and packet paths (test/e2e/bench-results.*)
	./scripts/bench.sh
	./scripts/bench-dataplane.sh

bench-agent: build ## only the agent-at-scale benchmark (etcd → VPP; N = 100, 1k, 10k)
	./scripts/bench.sh

bench-dataplane: build ## only the packet-path NDR/PDR search (vppsim, dpdk-testpmd, FD.io VPP; quiet machine)
	./scripts/bench-dataplane.sh

bench-mesh: ## network services: request → UP, endpoint removed/hung → UP elsewhere at 10/100/500 connections, cross-node rows (test/integration/mesh-bench-results.json)
	VPPMESH_MESH_BENCH=full $(GO) test -count=1 -timeout 30m -run '^TestMeshBench$$' -v ./test/integration | grep -E 'mesh_bench_test|^(ok|FAIL)'

bench-quick: build ## one quick pass of every benchmark (CI smoke: completes, numbers sane; writes nothing committed)
	BENCH_QUICK=1 ./scripts/bench.sh
	BENCH_QUICK=1 ./scripts/bench-dataplane.sh
	VPPMESH_MESH_BENCH=quick $(GO) test -count=1 -timeout 5m -run '^TestMeshBench$$' ./test/integration

faults: build ## reliability: N=1000 cross-connects, 500 faults of every kind with churn (FAULTS_N, FAULTS_COUNT, FAULTS_SEED, VPP_IMPL); CI runs each kind once in `make test`
	./scripts/faults.sh

fuzz: ## every fuzz target for FUZZTIME (default 10s)
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

images: ## the lab's images, built locally FROM scratch from static binaries (vppmesh/agent, vppsim, cnf :lab)
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/static/ ./cmd/vppmesh-agent ./cmd/agentctl ./cmd/vppsim ./cmd/vppmesh-cnf
	$(GO) run ./cmd/vppmesh-lab images --dockerfiles docker --context $(BIN)/static

lab: build ## every example lab up and down in network namespaces, traffic checked per link (root)
	LAB_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 10m -run 'TestLab' -v ./pkg/lab/

lab-docker: images ## the cross-connect lab (--network none, a veth pair moved in by PID) and the network-service lab in Docker, then down
	LAB_DOCKER=1 $(GO) test -count=1 -timeout 5m -run 'TestLabDocker' -v ./pkg/lab/

lab-docker-all: images ## every memif/vxlan/mesh example lab in Docker and their compose exports (longer than the CI smoke)
	LAB_DOCKER=all $(GO) test -count=1 -timeout 10m -run 'TestLabDocker' -v ./pkg/lab/

clean:
	rm -rf $(BIN)
