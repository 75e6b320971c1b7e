# edge-agent — see README.md. Targets of later parts appear as they are built.
SHELL := /bin/bash
GO ?= go
BIN ?= bin

# Stamps. The build date is the commit's date, not the wall clock, so that
# the same commit builds the same bytes; it also feeds the clock-trust rule.
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
LDFLAGS    := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)

# Debian packages the tests need (package:binary).
TEST_TOOLS := mosquitto:mosquitto mosquitto-clients:mosquitto_sub

.PHONY: build test test-setup lint

## build: the three binaries into ./bin (static, trimmed, stamped)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## test: vet, unit and integration tests with the race detector, and the 32-bit run
test: test-setup
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...
	@# 32-bit, as on ARMv7 gateways: unaligned 64-bit atomics and 2 GiB maps show up here.
	GOARCH=386 CGO_ENABLED=0 $(GO) test -count=1 -timeout 10m ./store/... ./agent/...

test-setup:
	@scripts/ensure-tools $(TEST_TOOLS)

## lint: gofmt, go vet, staticcheck (run as a Go tool from go.mod)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
