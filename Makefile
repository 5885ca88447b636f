# authgate — see README.md. Every target works on a fresh machine with Go installed;
# Redis-backed tests need redis-server on PATH (.ci/run installs it).
GO       ?= go
BIN      ?= bin
FUZZTIME ?= 30s
DEMO_UPSTREAM ?= 127.0.0.1:9000
# make run prints an admin password: it listens on loopback only.
RUN_LISTEN   ?= 127.0.0.1:8080

.PHONY: run test test-cluster test-faults bench lint build fuzz clean deploy-check

## run: the gateway on the embedded default config (memory store) with a demo upstream
run:
	AUTHGATE_LISTEN=$(RUN_LISTEN) $(GO) run ./cmd/authgate serve --demo-upstream $(DEMO_UPSTREAM)

## test: vet and the race-enabled test suite (Redis tests start their own redis-server)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## deploy-check: the deploy/ artefacts: YAML/JSON parse, promtool on the alert rules, metric names against a live gateway, kustomize render, Dockerfile, systemd unit, Compose
deploy-check:
	$(GO) test -count=1 -v ./deploy/

## test-cluster: the topology suites (build tag cluster): a real Redis Cluster (3 primaries,
## 3 replicas) and a Sentinel set (primary, replica, 3 sentinels) on loopback ports, with
## failovers under load; needs redis-server and redis-cli. Without -race: these suites measure
## latencies (revocation p99), which the race detector inflates several times; make test
## runs the same code with -race. Verbose, so that the measurements (revocation p50/p99, failover
## costs, sizing) are printed.
test-cluster:
	$(GO) test -count=1 -v -tags cluster -timeout 15m -run 'Cluster|Sentinel|Slot|Sizing' ./gateway/store/redistest/ ./gateway/ ./cmd/authgate/

## test-faults: the fault suite (faults/): two built gateways, Redis behind toxiproxy, every
## fault in every mode under load; FAULTS_PARALLEL cases at once, report to FAULTS_REPORT
FAULTS_PARALLEL ?= 2
test-faults:
	$(GO) vet -tags faults ./faults/
	FAULTS_PARALLEL=$(FAULTS_PARALLEL) $(if $(FAULTS_REPORT),FAULTS_REPORT=$(abspath $(FAULTS_REPORT))) $(GO) test -tags faults -count=1 -timeout 20m -parallel $(FAULTS_PARALLEL) -v ./faults/

## bench: bare httputil.ReverseProxy vs authgate, same upstream, same run (SPEC section 10)
bench:
	$(GO) run ./bench

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## build: a static binary in bin/; `authgate version` shows the commit and build date
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     = -X main.buildCommit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/authgate ./cmd/authgate

## fuzz: each parser's fuzzer for FUZZTIME (path cleaning, credentials, API keys, JWTs, X-Forwarded-For, config, management API bodies and JSON decoding, forward-auth headers)
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzCleanPath$$' -fuzztime=$(FUZZTIME) ./policy/
	$(GO) test -run='^$$' -fuzz='^FuzzExtract$$' -fuzztime=$(FUZZTIME) ./gateway/auth/
	$(GO) test -run='^$$' -fuzz='^FuzzClientIP$$' -fuzztime=$(FUZZTIME) ./gateway/ipallow/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./config/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./gateway/apikey/
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./gateway/jwtauth/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./gateway/issuer/
	$(GO) test -run='^$$' -fuzz='^FuzzLocalKeys$$' -fuzztime=$(FUZZTIME) ./gateway/ratelimit/
	$(GO) test -run='^$$' -fuzz='^FuzzManagementJSON$$' -fuzztime=$(FUZZTIME) ./gateway/admin/
	$(GO) test -run='^$$' -fuzz='^FuzzForwardAuthHeaders$$' -fuzztime=$(FUZZTIME) ./gateway/fwdauth/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./gateway/apijson/

clean:
	rm -rf $(BIN) bench/results
