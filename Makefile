# Conductor: `make run` to try it, `make test` for the whole suite.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/conductor
DATA  ?= /var/lib/conductor-dev
SSH_ADDR  ?= 127.0.0.1:2222
HTTP_ADDR ?= 127.0.0.1:8080
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: setup build run test lint bench clean

setup:
	@scripts/setup.sh

build:
	@mkdir -p bin
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/conductor

# A self-contained conductor under $(DATA), with your SSH key as the admin.
run: setup build
	@scripts/run.sh "$(DATA)" "$(SSH_ADDR)" "$(HTTP_ADDR)"

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# Each fuzz target runs a fixed number of inputs (about 5-10 s here): a
# duration (-fuzztime 10s) can fail spuriously with "context deadline
# exceeded" at its end on Go 1.26 (golang/go#75804, fixed in Go 1.27).
test: setup build lint
	GO=$(GO) scripts/gotest.sh -count=1 -timeout 25m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzValidateNames$$' -fuzztime 200000x .
	$(GO) test -run '^$$' -fuzz '^FuzzConfigFilePath$$' -fuzztime 200000x .
	$(GO) test -run '^$$' -fuzz '^FuzzCommandLine$$' -fuzztime 5000x ./gitserver
	$(GO) test -run '^$$' -fuzz '^FuzzAppFromRepoPath$$' -fuzztime 30000x ./gitserver
	$(GO) test -run '^$$' -fuzz '^FuzzSettingsLiteral$$' -fuzztime 50000x ./provision
	$(GO) test -run '^$$' -fuzz '^FuzzSiteConf$$' -fuzztime 100000x ./nginx
	$(GO) test -run '^$$' -fuzz '^FuzzWatcherIni$$' -fuzztime 250000x ./circus
	$(GO) test -run '^$$' -fuzz '^FuzzParseProcfile$$' -fuzztime 20000x ./process
	$(GO) test -run '^$$' -fuzz '^FuzzHealthchecks$$' -fuzztime 20000x ./pybuild

bench: setup build
	bench/deploy.sh

clean:
	rm -rf bin
