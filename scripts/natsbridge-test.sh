#!/usr/bin/env bash
# Tests of the nested module natsbridge/ (the ring <-> NATS bridge): vet and
# the race tests, with nats-server running inside the test process (no
# server to install). scripts/check.sh calls it.
#
#   scripts/natsbridge-test.sh
set -euo pipefail
cd "$(dirname "$0")/../natsbridge"
go vet ./...
go test -race -count=1 ./...
