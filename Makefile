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

test: setup build lint
	$(GO) test -count=1 -timeout 25m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzValidateNames$$' -fuzztime 10s .
	$(GO) test -run '^$$' -fuzz '^FuzzCommandLine$$' -fuzztime 10s ./gitserver
	$(GO) test -run '^$$' -fuzz '^FuzzAppFromRepoPath$$' -fuzztime 5s ./gitserver
	$(GO) test -run '^$$' -fuzz '^FuzzSettingsLiteral$$' -fuzztime 10s ./provision
	$(GO) test -run '^$$' -fuzz '^FuzzSiteConf$$' -fuzztime 10s ./nginx
	$(GO) test -run '^$$' -fuzz '^FuzzWatcherIni$$' -fuzztime 10s ./circus
	$(GO) test -run '^$$' -fuzz '^FuzzParseProcfile$$' -fuzztime 5s ./process

bench: setup build
	bench/deploy.sh

clean:
	rm -rf bin
