#!/usr/bin/env bash
# Median ratio of two go-test benchmarks' ns/op, from interleaved rounds,
# so that a machine that changes speed between runs (a shared VM) moves
# both sides of each ratio alike.
#
#   scripts/ratio.sh PKG BENCH_A BENCH_B [ROUNDS] [BENCHTIME]
#
# prints each round's ns/op and A/B, then the median A/B and its range.
# Example:
#   scripts/ratio.sh ./ring 'BenchmarkMPSC/goroutines/mpsc/1p/64$' 'BenchmarkMPSC/goroutines/spsc/1p/64$'
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=$1 a=$2 b=$3 rounds=${4:-11} benchtime=${5:-1000000x}
bin=$(mktemp -d)/bench.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" "$pkg"
dir=$(go list -f '{{.Dir}}' "$pkg")
nsop() { (cd "$dir" && "$bin" -test.run '^$' -test.bench "$1" -test.benchtime "$benchtime" -test.count 1) |
	awk '/ns\/op/ { for (i = 1; i < NF; i++) if ($(i+1) == "ns/op") print $i; exit }'; }
ratios=()
for r in $(seq 1 "$rounds"); do
	if (( r % 2 )); then x=$(nsop "$a"); y=$(nsop "$b"); else y=$(nsop "$b"); x=$(nsop "$a"); fi
	q=$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.3f", x / y }')
	printf 'round %2d  A %9s ns/op  B %9s ns/op  A/B %s\n' "$r" "$x" "$y" "$q"
	ratios+=("$q")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END {
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "median A/B %.3f  (range %.3f-%.3f, %d rounds)\n", m, v[1], v[NR], NR }'
