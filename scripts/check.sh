#!/usr/bin/env bash
# The project's whole test suite: formatting, vet, staticcheck, race tests,
# every benchmark once, every fuzz target briefly, and cross-builds.
# It installs what it needs (python3 for the interop tests) when it can, and
# runs on a fresh machine with nothing installed by hand.
#
#   scripts/check.sh            the full suite (what CI runs)
#   FUZZTIME=30s scripts/check.sh   longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME=${FUZZTIME:-5s}

step() { printf '\n== %s\n' "$*"; }

step "tools"
go version
# Debian's python3 with NumPy and xxhash, for the Python client's tests and
# the interop tests (NumPy and xxhash are optional for the client: the
# tests that need them skip, saying so, where they cannot be installed).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 &&
	! /usr/bin/python3 -c 'import numpy, xxhash' >/dev/null 2>&1; then
	echo "installing Debian's python3, python3-numpy and python3-xxhash"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-numpy python3-xxhash >/dev/null ||
		echo "could not install them: the tests that need them will skip"
fi
if [ -x /usr/bin/python3 ]; then
	export PYTHON=/usr/bin/python3
fi
command -v python3 >/dev/null 2>&1 && python3 --version

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck ($STATICCHECK)"
go run "$STATICCHECK" ./...

step "go test -race"
go test -race -count=1 ./...

step "crash points (-tags ringcrash): a process killed at every step of the protocols"
go test -race -count=1 -tags ringcrash -run 'TestCrashPoints' ./ring/

step "python client (python/)"
scripts/python-test.sh

step "benchmarks, once each"
go test -run '^$' -bench . -benchtime 1x ./...

step "fuzz targets, $FUZZTIME each"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "-- $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done

step "nested module peers/ (shmipc-go, for pingpong -transport shmipc)"
(cd peers && go vet ./... && go build -o /dev/null . && go run "$STATICCHECK" ./...)

if [ -x scripts/natsbridge-test.sh ]; then
	step "nested module natsbridge/ (the NATS JetStream bridge)"
	scripts/natsbridge-test.sh
fi

step "cross-builds"
for target in linux/arm64 darwin/arm64; do
	echo "-- $target"
	GOOS=${target%/*} GOARCH=${target#*/} go build ./...
	GOOS=${target%/*} GOARCH=${target#*/} go vet ./...
done

step "all checks passed"
