# dirgate — make targets. `make help` lists them.
GO       ?= go
TESTENV  ?= /tmp/dirgate-testenv.env
BIN      := bin/dirgate
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: help run build test test-unit test-interop testenv-up testenv-down lint fuzz bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

run: build ## build bin/dirgate and serve the bundled demo directory on 127.0.0.1:3890
	$(BIN) serve --demo

build: ## build bin/dirgate
	@echo "building $(BIN): the first build downloads modules and compiles (about half a minute on two idle cores); later ones take seconds"
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dirgate

test: ## install what tests need, start real upstreams, run every test with -race, then the real clients
	scripts/testenv/up.sh
	DIRGATE_TESTENV=$(TESTENV) DIRGATE_REQUIRE_UPSTREAMS=1 $(MAKE) -k --no-print-directory test-unit test-interop; \
	  rc=$$?; scripts/testenv/down.sh; exit $$rc

test-unit: ## run the Go tests (integration tests skip without DIRGATE_TESTENV)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	cd third_party/gldap && $(GO) test -race -count=1 ./...
	cd third_party/asn1-ber && $(GO) test -race -count=1 ./...

test-interop: ## drive dirgate with real clients (OpenLDAP tools, ldap3, HAProxy, openid-client); needs scripts/testenv/up.sh
	scripts/testenv/install.sh interop
	$(GO) vet -tags interop ./integration/interop/
	DIRGATE_TESTENV=$${DIRGATE_TESTENV:-$(TESTENV)} $(GO) test -tags interop -race -count=1 ./integration/interop/

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s} ./filter/
	$(GO) test -run '^$$' -fuzz FuzzQuick -fuzztime $${FUZZTIME:-30s} ./filter/
	$(GO) test -run '^$$' -fuzz FuzzClassAssertions -fuzztime $${FUZZTIME:-30s} ./filter/
	$(GO) test -run '^$$' -fuzz FuzzParseLDIF -fuzztime $${FUZZTIME:-30s} ./demodir/
	$(GO) test -run '^$$' -fuzz FuzzPlainKey -fuzztime $${FUZZTIME:-30s} ./dn/
	$(GO) test -run '^$$' -fuzz FuzzBindAnswer -fuzztime $${FUZZTIME:-30s} ./upstream/
	cd third_party/gldap && $(GO) test -run '^$$' -fuzz FuzzDecodeFilter -fuzztime $${FUZZTIME:-30s} .
	$(GO) test -run '^$$' -fuzz FuzzWireFilter -fuzztime $${FUZZTIME:-30s} ./proxy/
	$(GO) test -run '^$$' -fuzz FuzzFormRequests -fuzztime $${FUZZTIME:-30s} ./oidc/
	$(GO) test -run '^$$' -fuzz FuzzCheckHash -fuzztime $${FUZZTIME:-30s} ./passwd/
	$(GO) test -run '^$$' -fuzz FuzzDecodeSTSError -fuzztime $${FUZZTIME:-30s} ./entra/
	$(GO) test -run '^$$' -fuzz FuzzDecodePage -fuzztime $${FUZZTIME:-30s} ./entra/
	$(GO) test -run '^$$' -fuzz FuzzDecodeErrorBody -fuzztime $${FUZZTIME:-30s} ./cloudapi/
	$(GO) test -run '^$$' -fuzz FuzzCookieCSNs -fuzztime $${FUZZTIME:-30s} ./sync/ldapsource/
	$(GO) test -run '^$$' -fuzz FuzzMetaDataLocalUSN -fuzztime $${FUZZTIME:-30s} ./sync/ldapsource/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePage$$' -fuzztime $${FUZZTIME:-30s} ./google/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeLikeEncodingJSON$$' -fuzztime $${FUZZTIME:-30s} ./google/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $${FUZZTIME:-30s} ./agent/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $${FUZZTIME:-30s} ./cache/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEntry$$' -fuzztime $${FUZZTIME:-30s} ./cache/
	$(GO) test -run '^$$' -fuzz '^FuzzReadRecord$$' -fuzztime $${FUZZTIME:-30s} ./cache/
	$(GO) test -run '^$$' -fuzz '^FuzzIndexRecords$$' -fuzztime $${FUZZTIME:-30s} ./cache/
	$(GO) test -run '^$$' -fuzz '^FuzzParseAgentFile$$' -fuzztime $${FUZZTIME:-30s} ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBindFailure$$' -fuzztime $${FUZZTIME:-30s} ./dirtype/
	$(GO) test -run '^$$' -fuzz '^FuzzSealer$$' -fuzztime $${FUZZTIME:-30s} ./internal/fakecloud/
	$(GO) test -run '^$$' -fuzz '^FuzzTokens$$' -fuzztime $${FUZZTIME:-30s} ./internal/fakeentra/
	$(GO) test -run '^$$' -fuzz '^FuzzParsers$$' -fuzztime $${FUZZTIME:-30s} ./internal/fakegoogle/

bench: ## benchmarks side by side with slapd; writes BENCHMARKS.md
	scripts/bench.sh
