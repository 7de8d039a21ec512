# sngate build, test and release targets. See README.md.

GO       ?= go
FUZZTIME ?= 30s

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

PKG := ./cmd/sngate

.PHONY: all build test deps vet fmt-check lint fuzz bench cross clean

all: build

## build: bin/sngate for this machine
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sngate $(PKG)

## test: install missing test dependencies, vet, gofmt check, race tests
test: deps vet fmt-check
	$(GO) test -race -count=1 ./...

deps:
	./scripts/test-deps.sh

vet:
	$(GO) vet ./...

# Fails, listing them, if any Go file is not gofmt-formatted.
fmt-check:
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$files" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$files"; \
		exit 1; \
	fi

lint: vet fmt-check

## fuzz: every Fuzz target of every package, FUZZTIME each
fuzz:
	@set -e; found=0; \
	for pkg in $$($(GO) list ./...); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list"; exit 1; }; \
		names=$$(echo "$$list" | grep '^Fuzz' || true); \
		for name in $$names; do \
			found=1; \
			echo "== $$pkg $$name ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done; \
	if [ $$found = 0 ]; then echo "no fuzz targets found"; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## cross: static release binaries for the supported boards in dist/
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o dist/sngate-linux-amd64 $(PKG)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o dist/sngate-linux-arm64 $(PKG)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=6 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o dist/sngate-linux-armv6 $(PKG)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o dist/sngate-linux-armv7 $(PKG)
	@ls -l dist/

clean:
	rm -rf bin dist
