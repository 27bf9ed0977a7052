#!/usr/bin/env bash
# bench/e2e/run.sh: end-to-end TCP throughput of greipsec against baselines,
# between two network namespaces joined by a veth pair. See README.md.
#
# Measures, with iperf3 (A -> B, RUNS runs of DURATION seconds, median):
#   1. the bare veth              192.0.2.1      -> 192.0.2.2
#   2. wireguard-go (userspace)   10.254.0.1     -> 10.254.0.2
#   3. greipsec, raw ESP          10.255.0.1     -> 10.255.0.2
#   4. greipsec, ESP-in-UDP       10.255.0.1     -> 10.255.0.2
# and prints a markdown table. Needs root. Exits non-zero if any
# measurement failed; the others are still made and printed.
#
#   RUNS=3 DURATION=10 bench/e2e/run.sh
#
# GREIPSEC=/path/to/greipsec uses that binary instead of building ./cmd/greipsec.

set -uo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WIREGUARD_VERSION=v0.0.0-20260522210424-ecfc5a8d5446 # as in go.mod

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
P=gqe$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n') # unique per run, e.g. gqe3f9a
NA=${P}a NB=${P}b                                  # namespaces
VA=${P}a0 VB=${P}b0                                # veth ends
WA=${P}wa WB=${P}wb                                # wireguard-go interfaces
TMP=""
PIDS=()
CREATED=() # namespaces this run created, and only those are deleted

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer, not '$DURATION'"
[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, TUN, raw sockets)"

# stop_pid PID: SIGTERM, then SIGKILL after 5 s. Only for our own children.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	local pid ns
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	for ns in "${CREATED[@]}"; do
		[[ $ns == "$NA" ]] && ip -n "$NA" link del "$VA" 2>/dev/null
		ip netns del "$ns"
	done
	rm -f "/var/run/wireguard/$WA.sock" "/var/run/wireguard/$WB.sock"
	[[ -n $TMP ]] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start LOG NS CMD...: run CMD in namespace NS in the background, output to
# LOG; its PID is in $STARTED and is stopped on exit.
start() {
	local logf=$1 ns=$2
	shift 2
	ip netns exec "$ns" "$@" >"$logf" 2>&1 &
	STARTED=$!
	PIDS+=("$STARTED")
}

# wait_until SECONDS CMD...: retry CMD every 0.1 s until it succeeds.
wait_until() {
	local n=$(($1 * 10))
	shift
	while ((n-- > 0)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

alive() { kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------
# Tools

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v wg >/dev/null || need+=(wireguard-tools)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2 || die "apt-get update failed"
	apt-get install -y -q --no-install-recommends "${need[@]}" >&2 || die "apt-get install ${need[*]} failed"
fi
command -v go >/dev/null || die "go not found in PATH"

TMP=$(mktemp -d /tmp/greipsec-e2e.XXXXXX) || die "mktemp failed"

log "building wireguard-go $WIREGUARD_VERSION"
(cd "$TMP" && GOBIN=$TMP GOFLAGS= go install "golang.zx2c4.com/wireguard@$WIREGUARD_VERSION") >&2 ||
	die "go install golang.zx2c4.com/wireguard@$WIREGUARD_VERSION failed"
mv "$TMP/wireguard" "$TMP/wireguard-go"

GREIPSEC_BUILD=ok
if [[ -n ${GREIPSEC:-} ]]; then
	log "using greipsec binary $GREIPSEC"
	cp "$GREIPSEC" "$TMP/greipsec" || GREIPSEC_BUILD="cannot copy GREIPSEC=$GREIPSEC"
else
	log "building greipsec"
	if ! (cd "$REPO" && go build -o "$TMP/greipsec" ./cmd/greipsec) >"$TMP/build.log" 2>&1; then
		GREIPSEC_BUILD="go build ./cmd/greipsec failed: $(head -c 600 "$TMP/build.log" | tr '\n' ' ')"
	fi
fi
[[ $GREIPSEC_BUILD == ok ]] || log "run.sh: $GREIPSEC_BUILD"

# ---------------------------------------------------------------------------
# The two namespaces: the same as package internal/lab builds.

log "creating namespaces $NA and $NB"
ip netns add "$NA" || die "ip netns add $NA failed"
CREATED+=("$NA")
ip netns add "$NB" || die "ip netns add $NB failed"
CREATED+=("$NB")
ip link add "$VA" netns "$NA" type veth peer name "$VB" netns "$NB" || die "creating veth $VA/$VB failed"
ip -n "$NA" addr add 192.0.2.1/24 dev "$VA" &&
	ip -n "$NA" addr add 2001:db8:255::1/64 dev "$VA" nodad &&
	ip -n "$NB" addr add 192.0.2.2/24 dev "$VB" &&
	ip -n "$NB" addr add 2001:db8:255::2/64 dev "$VB" nodad &&
	ip -n "$NA" link set lo up && ip -n "$NA" link set "$VA" up &&
	ip -n "$NB" link set lo up && ip -n "$NB" link set "$VB" up ||
	die "configuring the veth pair failed"
wait_until 5 ip netns exec "$NA" bash -c "grep -qx up /sys/class/net/$VA/operstate" &&
	wait_until 5 ip netns exec "$NB" bash -c "grep -qx up /sys/class/net/$VB/operstate" ||
	die "veth $VA/$VB did not come up"

start "$TMP/iperf3-server.log" "$NB" iperf3 -s
IPERF_SERVER=$STARTED
wait_until 5 ip netns exec "$NB" bash -c "ss -Hltn sport = :5201 | grep -q ." ||
	die "iperf3 server did not start: $(cat "$TMP/iperf3-server.log")"

# ---------------------------------------------------------------------------
# Measurements

declare -A MEDIAN RUNSOF MTU ERR
IPERF_ERR="" IPERF_BPS=""

# iperf DST SECONDS: one iperf3 run from A to DST; sets IPERF_BPS to the
# receiver's bits/s, or IPERF_ERR. (iperf3 -J may exit 0 after an error.)
iperf() {
	local out rc err
	out=$(timeout $(($2 + 30)) ip netns exec "$NA" iperf3 -c "$1" -t "$2" -J --connect-timeout 3000 2>&1)
	rc=$?
	err=$(jq -r '.error // empty' <<<"$out" 2>/dev/null)
	if ((rc != 0)) || [[ -n $err ]]; then
		IPERF_ERR="iperf3 -c $1: ${err:-exit status $rc: $(head -c 300 <<<"$out")}"
		return 1
	fi
	if ! IPERF_BPS=$(jq -er '.end.sum_received.bits_per_second' <<<"$out" 2>/dev/null); then
		IPERF_ERR="iperf3 -c $1: no end.sum_received.bits_per_second in its output"
		return 1
	fi
}

# median: the median of the numbers on stdin.
median() {
	sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# measure NAME DST IFACE: warm up (and wait for the path) with 1 s runs,
# then RUNS runs of DURATION s; fills MEDIAN, RUNSOF, MTU.
measure() {
	local name=$1 dst=$2 ifc=$3 i all=() tries=0
	MTU[$name]=$(ip -n "$NA" -o link show dev "$ifc" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
	until iperf "$dst" 1; do
		((++tries < 10)) || {
			ERR[$name]="no working TCP connection to $dst through $ifc after $tries tries; last: $IPERF_ERR"
			return 1
		}
		sleep 1
	done
	for ((i = 1; i <= RUNS; i++)); do
		log "$name: run $i/$RUNS"
		iperf "$dst" "$DURATION" || {
			ERR[$name]="run $i: $IPERF_ERR"
			return 1
		}
		all+=("$(awk -v b="$IPERF_BPS" 'BEGIN {printf "%.2f", b / 1e9}')")
		log "$name: ${all[-1]} Gbit/s"
	done
	RUNSOF[$name]=${all[*]}
	MEDIAN[$name]=$(printf '%s\n' "${all[@]}" | median | awk '{printf "%.2f", $1}')
}

# 1. bare veth
log "== bare veth"
measure veth 192.0.2.2 "$VA"

# 2. wireguard-go. The interfaces get per-run names instead of wg0: the UAPI
# socket /var/run/wireguard/IFNAME.sock is shared by all namespaces.
wireguard() {
	local pa pb ka kb
	ka=$(wg genkey) && kb=$(wg genkey) && pa=$(wg pubkey <<<"$ka") && pb=$(wg pubkey <<<"$kb") ||
		{ ERR[wireguard-go]="wg genkey failed"; return 1; }
	printf '%s\n' "$ka" >"$TMP/a.key"
	printf '%s\n' "$kb" >"$TMP/b.key"
	local ns ifc pid
	for ns in "$NA" "$NB"; do
		ifc=$WA
		[[ $ns == "$NB" ]] && ifc=$WB
		start "$TMP/wireguard-go-$ns.log" "$ns" env LOG_LEVEL=error "$TMP/wireguard-go" -f "$ifc"
		pid=$STARTED
		wait_until 10 test -S "/var/run/wireguard/$ifc.sock" && alive "$pid" || {
			ERR[wireguard-go]="wireguard-go $ifc did not start: $(tail -c 400 "$TMP/wireguard-go-$ns.log")"
			return 1
		}
	done
	ip netns exec "$NA" wg set "$WA" private-key "$TMP/a.key" listen-port 51820 \
		peer "$pb" endpoint 192.0.2.2:51820 allowed-ips 10.254.0.2/32 &&
		ip netns exec "$NB" wg set "$WB" private-key "$TMP/b.key" listen-port 51820 \
			peer "$pa" endpoint 192.0.2.1:51820 allowed-ips 10.254.0.1/32 &&
		ip -n "$NA" addr add 10.254.0.1/24 dev "$WA" && ip -n "$NA" link set "$WA" up &&
		ip -n "$NB" addr add 10.254.0.2/24 dev "$WB" && ip -n "$NB" link set "$WB" up ||
		{ ERR[wireguard-go]="configuring wireguard-go failed"; return 1; }
	measure wireguard-go 10.254.0.2 "$WA"
}
log "== wireguard-go"
wireguard
WG_VERSION=$("$TMP/wireguard-go" --version | sed -n 's/^wireguard-go \(v.*\)/\1/p')
for pid in "${PIDS[@]}"; do
	[[ $pid == "$IPERF_SERVER" ]] || stop_pid "$pid"
done
PIDS=("$IPERF_SERVER")

# 3. and 4. greipsec with the example configurations.
greipsec() {
	local name=$1 transport=$2 ns side cfg pid pids=() rc=0 n
	if [[ $GREIPSEC_BUILD != ok ]]; then
		ERR[$name]=$GREIPSEC_BUILD
		return 1
	fi
	for side in a b; do
		cfg=$TMP/manual-$side-$transport.toml
		sed -E "s/^(transport[[:space:]]*=[[:space:]]*)\"esp\"/\1\"$transport\"/" \
			"$REPO/examples/manual-$side.toml" >"$cfg"
		grep -Eq "^transport[[:space:]]*=[[:space:]]*\"$transport\"" "$cfg" ||
			{ ERR[$name]="cannot set transport = \"$transport\" in examples/manual-$side.toml"; return 1; }
		ns=$NA
		[[ $side == b ]] && ns=$NB
		# Each gateway has its own control socket: the namespaces share the file system.
		start "$TMP/greipsec-$name-$side.log" "$ns" "$TMP/greipsec" up -c "$cfg" --control "$TMP/greipsec-$name-$side.sock"
		pid=$STARTED
		pids+=("$pid")
		n=100 # 10 s
		until ip -n "$ns" -o -4 addr show dev gre0 2>/dev/null | grep -q 'inet 10\.255\.0\.'; do
			alive "$pid" && ((--n > 0)) || break
			sleep 0.1
		done
		if ! alive "$pid"; then
			wait "$pid"
			n=$?
			ERR[$name]="greipsec up -c manual-$side.toml (transport $transport) in $ns exited with status $n before gre0 came up: $(tail -n 1 "$TMP/greipsec-$name-$side.log")"
		elif ((n == 0)); then
			ERR[$name]="greipsec up -c manual-$side.toml (transport $transport) in $ns did not bring up gre0 within 10 s"
		fi
		if [[ -n ${ERR[$name]:-} ]]; then
			log "run.sh: ${ERR[$name]}"
			rc=1
			break
		fi
	done
	if ((rc == 0)); then
		measure "$name" 10.255.0.2 gre0 || rc=1
	fi
	for pid in "${pids[@]}"; do
		kill -USR1 "$pid" 2>/dev/null # log its counters
	done
	sleep 0.2
	for pid in "${pids[@]}"; do
		stop_pid "$pid"
	done
	PIDS=("$IPERF_SERVER")
	if ((rc != 0)); then
		for side in a b; do
			[[ -f $TMP/greipsec-$name-$side.log ]] || continue
			log "run.sh: last lines of greipsec up, site $side ($transport):"
			tail -n 12 "$TMP/greipsec-$name-$side.log" | cut -c 1-400 | sed 's/^/    /' >&2
		done
	fi
	return $rc
}
log "== greipsec esp"
greipsec greipsec-esp esp
log "== greipsec udp"
greipsec greipsec-udp udp

# ---------------------------------------------------------------------------
# Report

gbps() { [[ -n ${MEDIAN[$1]:-} ]] && echo "${MEDIAN[$1]}" || echo FAILED; }
ratio() {
	[[ -n ${MEDIAN[$1]:-} && -n ${MEDIAN[$2]:-} ]] &&
		awk -v a="${MEDIAN[$1]}" -v b="${MEDIAN[$2]}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}' ||
		echo n/a
}

failed=0
echo "## greipsec end-to-end TCP throughput"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- kernel: $(uname -r)"
echo "- CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores"
echo "- Go: $(go version | awk '{print $3}')"
echo "- greipsec: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no commit')"
echo "- wireguard-go: ${WG_VERSION:-?} (golang.zx2c4.com/wireguard@$WIREGUARD_VERSION)"
echo "- iperf3: $(iperf3 --version | head -1 | awk '{print $2}'), A -> B, $RUNS runs x ${DURATION} s, median"
echo
echo "| path | inner MTU | median Gbit/s | runs Gbit/s |"
echo "|---|---:|---:|---|"
for name in veth wireguard-go greipsec-esp greipsec-udp; do
	label=$name
	case $name in
	veth) label="bare veth" ;;
	greipsec-esp) label="greipsec, raw ESP" ;;
	greipsec-udp) label="greipsec, ESP-in-UDP" ;;
	esac
	echo "| $label | ${MTU[$name]:-?} | $(gbps "$name") | ${RUNSOF[$name]:-} |"
	if [[ -z ${MEDIAN[$name]:-} ]]; then
		failed=1
	fi
done
echo
echo "| ratio | |"
echo "|---|---:|"
echo "| greipsec raw ESP / wireguard-go | $(ratio greipsec-esp wireguard-go) |"
echo "| greipsec ESP-in-UDP / wireguard-go | $(ratio greipsec-udp wireguard-go) |"
for name in veth wireguard-go greipsec-esp greipsec-udp; do
	if [[ -n ${ERR[$name]:-} ]]; then
		echo
		echo "FAILED $name: ${ERR[$name]}"
	fi
done
exit $failed
