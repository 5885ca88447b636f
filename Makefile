# authgate — see README.md. Every target works on a fresh machine with Go installed;
# Redis-backed tests need redis-server on PATH (.ci/run installs it).
GO       ?= go
BIN      ?= bin
FUZZTIME ?= 30s
DEMO_UPSTREAM ?= 127.0.0.1:9000

.PHONY: run test bench lint build fuzz clean deploy-check

## run: the gateway on the embedded default config (memory store) with a demo upstream
run:
	$(GO) run ./cmd/authgate serve --demo-upstream $(DEMO_UPSTREAM)

## test: vet and the race-enabled test suite (Redis tests start their own redis-server)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## deploy-check: the deploy/ artefacts: YAML/JSON parse, promtool on the alert rules, metric names against a live gateway, kustomize render, Dockerfile, systemd unit, Compose
deploy-check:
	$(GO) test -count=1 -v ./deploy/

## bench: bare httputil.ReverseProxy vs authgate, same upstream, same run (SPEC section 10)
bench:
	$(GO) run ./bench

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## build: a static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/authgate ./cmd/authgate

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
