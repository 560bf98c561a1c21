#!/usr/bin/env bash
# The test command of README.md: formatting, vet, staticcheck and the test
# suite with the race detector. Needs only Go (1.26+) and network access to
# the Go module proxy for the first run.
#
#   ./test.sh                          everything (what CI runs)
#   ./test.sh ./internal/session/      the checks and tests of some packages
#   ./test.sh --quick [packages]       no race detector, -short: a fast loop
#   TESTFLAGS='-run TestX -v' ./test.sh ./internal/gateway/
set -euo pipefail
cd "$(dirname "$0")"
export PATH="/usr/local/go/bin:$PATH"

quick=0
if [ "${1:-}" = "--quick" ] || [ "${1:-}" = "-q" ]; then
	quick=1
	shift
fi
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)

# Every module of the build graph in the local cache: the container image
# test builds the gateway inside the engine from that cache, offline.
go mod download

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet "${pkgs[@]}"

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 "${pkgs[@]}"

# shellcheck disable=SC2086 # TESTFLAGS is a list of flags
if [ "$quick" = 1 ]; then
	echo "== go test -short (quick: no race detector)"
	go test -short -count=1 -timeout 10m ${TESTFLAGS:-} "${pkgs[@]}"
else
	echo "== go test -race"
	go test -race -count=1 -timeout 20m ${TESTFLAGS:-} "${pkgs[@]}"
fi
