# vppmesh front door. `make help` lists the targets.
GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/vppmesh/vppmesh/agent.Version=$(VERSION) -X github.com/vppmesh/vppmesh/pkg/agentctl.Version=$(VERSION)
FUZZTIME ?= 10s
PROTOS   := $(shell find models -name '*.proto')

.PHONY: help build test race ci deps lint vet proto demo bench bench-agent bench-dataplane bench-quick fuzz faults clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build vppmesh-agent, agentctl, vppsim (and the CNF) into ./bin
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

test: build ## unit, integration and e2e tests (e2e parts that need root or DPDK say what is missing)
	$(GO) test -count=1 -timeout 30m ./...

race: ## the unit and integration tests under the race detector
	$(GO) test -race -count=1 -timeout 20m ./agent/... ./pkg/... ./plugins/... ./test/integration/ ./test/vppsim/... ./test/cnf/

deps: ## install what the tests need (Debian packages as root, Go modules)
	./scripts/ci-deps.sh

ci: deps lint test race ## what CI runs: deps, lint, all tests (and again under -race), a short smoke of every fuzz target and benchmark
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)
	$(MAKE) bench-quick

lint: vet ## gofmt, go vet and the import walls of DESIGN.md
	./scripts/check-walls.sh
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

proto: ## regenerate models/*.pb.go (needs protoc and protoc-gen-go)
	cd models && protoc -I . --go_out=. --go_opt=paths=source_relative $(patsubst models/%,%,$(PROTOS))

demo: build ## the main job: etcd + vppsim + agent + two CNFs + a cross-connect with traffic
	./scripts/demo.sh

bench: build ## benchmarks: agent at scale (test/bench/results.*) and packet paths (test/e2e/bench-results.*)
	./scripts/bench.sh
	./scripts/bench-dataplane.sh

bench-agent: build ## only the agent-at-scale benchmark (etcd → VPP; N = 100, 1k, 10k)
	./scripts/bench.sh

bench-dataplane: build ## only the packet-path benchmark (memif and vhost-user vs dpdk-testpmd)
	./scripts/bench-dataplane.sh

bench-quick: build ## one quick pass of every benchmark (CI smoke: completes, numbers sane; writes nothing committed)
	BENCH_QUICK=1 ./scripts/bench.sh
	BENCH_QUICK=1 ./scripts/bench-dataplane.sh

faults: build ## reliability: N=1000 cross-connects, 500 faults of every kind with churn (FAULTS_N, FAULTS_COUNT, FAULTS_SEED, VPP_IMPL); CI runs each kind once in `make test`
	./scripts/faults.sh

fuzz: ## every fuzz target for FUZZTIME (default 10s)
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

clean:
	rm -rf $(BIN)
