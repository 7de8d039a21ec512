# sngate build, test and release targets. See README.md.

GO       ?= go
FUZZTIME ?= 30s

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

PKG := ./cmd/sngate

.PHONY: all build test deps vet fmt-check lint fuzz bench cross clean
.PHONY: deb

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

# Debian packages (see images/README.md). nfpm is run with `go run` at a
# pinned version and does not enter go.mod.
NFPM_VERSION   ?= v2.45.2
NFPM           ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
DEB_VERSION    ?= $(shell ./images/deb/debversion.sh '$(VERSION)')
DEB_ARCHES     ?= amd64 arm64 armhf
DEB_MAINTAINER ?= sngate developers <sngate@users.noreply.github.com>
# Where the packages and the binaries in them go.
DEB_DIST       ?= dist
# File times in the packages: the commit's, so that a commit always gives
# the same bytes (https://reproducible-builds.org/specs/source-date-epoch/).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)

## deb: dist/sngate_VERSION_ARCH.deb for amd64, arm64 and armhf (ARMv7)
deb:
	@set -e; \
	version='$(DEB_VERSION)'; \
	if [ -z "$$version" ]; then echo "deb: no Debian version (set DEB_VERSION=)" >&2; exit 1; fi; \
	mkdir -p '$(DEB_DIST)'; \
	for arch in $(DEB_ARCHES); do \
		case $$arch in \
		amd64) goarch=amd64 goarm= bin=sngate-linux-amd64 ;; \
		arm64) goarch=arm64 goarm= bin=sngate-linux-arm64 ;; \
		armhf) goarch=arm goarm=7 bin=sngate-linux-armv7 ;; \
		*) echo "deb: unknown architecture $$arch (amd64, arm64, armhf)" >&2; exit 1 ;; \
		esac; \
		echo "== sngate $$version $$arch"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$goarch GOARM=$$goarm $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o '$(DEB_DIST)'/$$bin $(PKG); \
		rm -f '$(DEB_DIST)'/sngate_*_$$arch.deb; \
		SNGATE_DEB_ARCH=$$arch SNGATE_DEB_VERSION=$$version SNGATE_DEB_BIN='$(DEB_DIST)'/$$bin \
		SNGATE_DEB_MAINTAINER='$(DEB_MAINTAINER)' SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' \
			$(NFPM) package -f images/deb/nfpm.yaml -p deb -t '$(DEB_DIST)'/; \
	done; \
	ls -l '$(DEB_DIST)'/sngate_*.deb
