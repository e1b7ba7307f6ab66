# cassandra-tls-agent — build, test, benchmark and demo.
GO      ?= go
BIN     := bin/cassandra-tls-agent
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/cassandra-tls-agent/cassandra-tls-agent/internal/version.Version=$(VERSION) \
           -X github.com/cassandra-tls-agent/cassandra-tls-agent/internal/version.Commit=$(COMMIT)

.PHONY: build test unit e2e lint bench demo demo-rotation deps clean fuzz fuzz-smoke soak k8s test-k8s

build: ## static binary in bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cassandra-tls-agent

deps: ## test dependencies: Cassandra jars (Maven), cqlsh + Python driver (pip)
	./test/deps.sh

test: lint deps fuzz-smoke ## the whole suite: unit tests, then end-to-end tests against the real consumers
	$(GO) test -race -count=1 -timeout 20m ./cmd/... ./internal/...
	@# One end-to-end package at a time: each starts real Cassandra nodes, and two
	@# cores shared by a single node and a 3-node cluster only measure contention.
	$(GO) test -race -count=1 -p 1 -timeout 60m ./test/...
	@# Then a real Kubernetes control plane (test/k8s, a module of its own).
	./test/k8s/build.sh
	cd test/k8s && $(GO) test -count=1 -timeout 40m ./...
	@# deploy/'s PromQL through Prometheus' parser (test/promql, a module of its
	@# own; test/k8s's scenario also runs it on a live sidecar scrape).
	cd test/promql && $(GO) test -count=1 ./...

# A real Kubernetes control plane for the tests: etcd, kube-apiserver,
# kube-controller-manager and cert-manager's controllers built from the Go
# module proxy into .cache/k8s/bin, rebuilt only when test/k8s's go.mod,
# go.sum or cmd/ change (cold: ≈ 20 min of CPU, so 10-20 min on 2 cores;
# warm: instant, or ≈ 15 s to relink). Its tests run without -race: they
# drive the API server through client-go from one goroutine each, and the
# race detector would only slow client-go, cert-manager's libraries and
# kustomize down (the binaries under test are separate processes anyway).
k8s: ## build the test control plane into .cache/k8s/bin
	./test/k8s/build.sh

test-k8s: k8s ## the tests against the real control plane only
	cd test/k8s && $(GO) test -count=1 -timeout 40m ./...
	cd test/promql && $(GO) test -count=1 ./...

# Fuzz targets as package:Target (`go test -fuzz` takes one package and one target per run).
# A crasher is saved in the package's testdata/fuzz/Target/ and from then on runs in `go test`.
FUZZ := internal/pki:FuzzParseCertificates internal/pki:FuzzParsePrivateKey internal/pki:FuzzParseCredentialBundle \
        internal/render:FuzzRender \
        internal/cqlshrc:FuzzCqlshrc internal/config:FuzzParse
# The smoke run counts executions instead of timing them: go1.26's fuzz
# coordinator can report "context deadline exceeded" at the end of a timed
# -fuzztime on a loaded machine with no failing input at all (golang/go#75804,
# fixed in go1.27); a count has no deadline to race. 20,000 runs are about 3-10 s
# per target here.
FUZZTIME ?= 20000x

fuzz-smoke: ## every fuzz target for FUZZTIME (20,000 executions each; part of `make test`)
	@set -e; for t in $(FUZZ); do echo "fuzz $$t ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) ./$${t%%:*}; done

fuzz: FUZZTIME = 5m
fuzz: fuzz-smoke ## every fuzz target for 5 minutes each (make fuzz FUZZTIME=1h for longer)

soak: ## the sidecar through 10,000 rotations mixing good and broken inputs (600 in make test)
	SOAK_ROTATIONS=10000 $(GO) test -count=1 -v -timeout 60m -run '^TestSoak$$' ./test/

unit: ## unit tests only (no JDK, no Cassandra)
	$(GO) test -race -count=1 ./internal/...

# staticcheck 2026.2.2 is module version v0.8.2
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## gofmt + go vet + staticcheck, of the main module, test/k8s and test/promql
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd test/k8s && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd test/promql && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

# Not part of `make test`: it takes about 7 minutes on a quiet machine (the first time, ≈ 2.5 more
# to build prometheus-config-reloader from the module proxy into .cache/bench/),
# starts one real Cassandra node for the init and swap → served rows and a
# 3-node cluster (127.0.0.11–13) for the CA rotation row
# (BENCH_FLAGS='-only stores,swap,idle' leaves both out). BENCH_LOCK=FILE runs
# those under flock(1) on FILE too, beside the checkout's own Cassandra lock.
# bench/go-latest.txt is benchstat input (benchstat bench/go-previous.txt
# bench/go-latest.txt); bench/latest.json the table (previous.json the run before).
BENCH_FLAGS ?=
BENCH_LOCK  ?=
bench: build ## Go benchmarks (benchstat format in bench/), then one side-by-side table of whole processes
	@mkdir -p bench
	@[ ! -f bench/go-latest.txt ] || mv bench/go-latest.txt bench/go-previous.txt
	$(GO) test -run '^$$' -bench . -benchmem -count 6 -benchtime 300ms ./internal/... >bench/go-latest.txt || { cat bench/go-latest.txt; exit 1; }
	@grep -E '^(Benchmark|ok|PASS)' bench/go-latest.txt
	./test/bench/build-reloader.sh
	./test/cassandra/fetch.sh
	$(GO) run ./test/bench/table -agent $(BIN) -reloader .cache/bench/prometheus-config-reloader -json bench/latest.json -lock '$(BENCH_LOCK)' $(BENCH_FLAGS)

demo: build ## the main job, end to end, on this machine
	./examples/demo.sh

demo-rotation: deps ## the zero-downtime CA rotation on three local nodes, phase by phase
	@echo "Starting a 3-node Cassandra cluster on 127.0.0.11-13 (a few minutes on 2 cores)…"
	@$(GO) test -count=1 -v -timeout 40m -run 'TestCARotation$$' ./test/cluster/ 2>&1 | \
		grep --line-buffered -E 'PHASE|MEASURED cluster_(start|rotation_convergence|rotation_workload|negative_control)|^(--- |ok|FAIL)' | \
		sed -u -e 's/^ *rotation_test.go:[0-9]*: //'

clean:
	rm -rf bin .cache/demo
