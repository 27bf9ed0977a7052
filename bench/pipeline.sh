#!/usr/bin/env bash
# bench/pipeline.sh: the in-process pipeline (BenchmarkPipeline: gateway A's
# TUN -> GRE -> ESP -> in-memory link -> gateway B's TUN, no system calls)
# against this CPU's single-core seal rate (BenchmarkSealOneCore), in one
# run, at GOMAXPROCS 1, 2 and all, for 1400-byte packets; medians of COUNT
# runs of each. Prints a markdown table. No root needed.
#
#   bench/pipeline.sh                      # COUNT=3, BENCHTIME=200000x
#   COUNT=5 BENCHTIME=500000x bench/pipeline.sh
set -euo pipefail

COUNT=${COUNT:-3}
BENCHTIME=${BENCHTIME:-200000x}
[[ $COUNT =~ ^[1-9][0-9]*$ ]] || { echo "pipeline.sh: COUNT must be a positive integer, not '$COUNT'" >&2; exit 1; }
[[ $BENCHTIME =~ ^[1-9][0-9]*(x|s|ms)$ ]] || { echo "pipeline.sh: BENCHTIME must look like 200000x or 2s, not '$BENCHTIME'" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL=$(nproc)
CPUS=$(printf '%s\n' 1 2 "$ALL" | sort -nu | paste -sd, -)
TRANSFORMS='aes256gcm16|aes128gcm16|chacha20poly1305|aes128-sha1|aes256-sha256'
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

cd "$REPO"
echo "running: go test -run '^\$' -bench '^Benchmark(Pipeline|SealOneCore)\$/($TRANSFORMS)/1400\$' -benchtime $BENCHTIME -count $COUNT -cpu $CPUS ./bench/" >&2
go test -run '^$' -bench "^Benchmark(Pipeline|SealOneCore)\$/($TRANSFORMS)/1400\$" \
	-benchtime "$BENCHTIME" -count "$COUNT" -cpu "$CPUS" ./bench/ | tee "$OUT" >&2

echo "## greipsec pipeline against one core's seal rate"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $ALL cores"
echo "- Go: $(go env GOVERSION); greipsec: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
echo "- command: COUNT=$COUNT BENCHTIME=$BENCHTIME bench/pipeline.sh (medians of $COUNT)"
echo
# Lines look like:
#   BenchmarkPipeline/aes256gcm16/1400-2  200000  ...  17.9 Gbit/s ... 0 allocs/op
# with no -N suffix when GOMAXPROCS is 1.
awk -v all="$ALL" '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
/^Benchmark(Pipeline|SealOneCore)\// {
	split($1, p, "/")
	kind = p[1]; sub(/^Benchmark/, "", kind)
	tr = p[2]; size = p[3]; procs = 1
	if (match(size, /-[0-9]+$/)) { procs = substr(size, RSTART + 1); size = substr(size, 1, RSTART - 1) }
	g = ""; allocs = ""
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "Gbit/s") g = $i
		if ($(i+1) == "allocs/op") allocs = $i
	}
	if (g == "") next
	key = kind SUBSEP tr SUBSEP procs
	v[key] = v[key] " " g
	if (kind == "Pipeline") { al[tr SUBSEP procs] = al[tr SUBSEP procs] " " allocs; seen[tr] = 1; ps[procs] = 1 }
	else seal[tr] = seal[tr] " " g
}
END {
	print "| transform | GOMAXPROCS | pipeline Gbit/s | one core sealing, Gbit/s | pipeline / seal | allocs/op |"
	print "|---|---:|---:|---:|---:|---:|"
	n = split("aes256gcm16 aes128gcm16 chacha20poly1305 aes128-sha1 aes256-sha256", order, " ")
	for (k = 1; k <= n; k++) {
		tr = order[k]
		if (!(tr in seen)) continue
		s = median(seal[tr])
		for (procs = 1; procs <= all; procs++) {
			if (!(procs in ps)) continue
			key = "Pipeline" SUBSEP tr SUBSEP procs
			if (!(key in v)) continue
			m = median(v[key])
			printf "| %s | %d%s | %.2f | %.2f | %.0f%% | %s |\n", tr, procs, procs == all ? " (all)" : "", m, s, 100 * m / s, median(al[tr SUBSEP procs])
		}
	}
}' "$OUT"
