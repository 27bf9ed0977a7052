#!/usr/bin/env bash
# bench/e2e/run.sh: end-to-end throughput, packet rate and latency of
# greipsec against baselines, between two network namespaces joined by a
# veth pair. See README.md.
#
# Paths (A -> B):
#   bare veth                     192.0.2.1      -> 192.0.2.2
#   wireguard-go (userspace)      10.254.0.1     -> 10.254.0.2, IPv4 and IPv6 outer
#   greipsec, raw ESP             10.255.0.1     -> 10.255.0.2, IPv4 and IPv6 outer
#   greipsec, ESP-in-UDP          10.255.0.1     -> 10.255.0.2, IPv4 and IPv6 outer
# and, with a user-space network stack on both sides instead of a TUN
# device, iperf3 through a TCP port forward on each side (A's host port ->
# A's stack -> tunnel -> B's stack -> B's host port 5201), as wireproxy-style
# tools run, no TUN and no privilege needed:
#   wireguard-go netstack         127.0.0.1:15201 -> 10.253.0.2:5201 -> 127.0.0.1:5201
#      (bench/e2e/wgnetstack: golang.zx2c4.com/wireguard/tun/netstack, built
#      from the Go module proxy in this run)
#   greipsec netstack             127.0.0.1:15202 -> 10.255.0.2:5201 -> 127.0.0.1:5201
#      (inner = "netstack", ESP-in-UDP, IKE on port 4500, [[tunnel.forward]])
#
# Measurements, each RUNS times, median:
#   TCP Gbit/s (iperf3) with each count of parallel streams in STREAMS, every path;
#   UDP packets/s received (iperf3 -u -b 0) at each payload in UDP_SIZES, IPv4 outer;
#   ping RTT (PINGS pings, 10 ms apart), idle and under a 1-stream TCP load, IPv4 outer;
#   the raw IP ceiling: bare protocol-50 packets (and UDP datagrams) from A
#   to B with sendmmsg/recvmmsg (bench/e2e/rawceil), no crypto, no TUN.
# It prints markdown tables. Needs root. Exits non-zero if any measurement
# failed; the others are still made and printed.
#
#   bench/e2e/run.sh                      # RUNS=3 DURATION=10 STREAMS="1 4"
#   QUICK=1 bench/e2e/run.sh              # RUNS=1 DURATION=1 PINGS=50: only checks that all works
#   NETSTACK_ONLY=1 bench/e2e/run.sh      # only the two netstack paths, TCP
#   GREIPSEC=/path/to/greipsec bench/e2e/run.sh   # that binary instead of building ./cmd/greipsec
#
# Knobs: RUNS, DURATION (TCP seconds), STREAMS (list), UDP_DURATION (UDP and
# ceiling seconds, default DURATION but at most 5), UDP_SIZES (list of UDP
# payload bytes, default "64 1372"), PINGS (default 200).

set -uo pipefail

T0=$SECONDS
# The command line, with the settings given in the environment, for the header.
CMDLINE=""
for v in QUICK RUNS DURATION STREAMS UDP_DURATION UDP_SIZES PINGS NETSTACK_ONLY GREIPSEC; do
	[[ -n ${!v+set} ]] && CMDLINE+="$v=$(printf '%q' "${!v}") "
done
CMDLINE+="$0${*:+ $*}"

QUICK=${QUICK:-}
[[ -z $QUICK || $QUICK == 1 ]] || { echo "run.sh: QUICK must be 1 or empty, not '$QUICK'" >&2; exit 1; }
if [[ -n $QUICK ]]; then
	RUNS=${RUNS:-1} DURATION=${DURATION:-1} PINGS=${PINGS:-50}
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
STREAMS=${STREAMS:-1 4}
UDP_SIZES=${UDP_SIZES:-64 1372}
PINGS=${PINGS:-200}
NETSTACK_ONLY=${NETSTACK_ONLY:-}
CEIL_SIZE=1400
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

posint() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
posint "$RUNS" || die "RUNS must be a positive integer, not '$RUNS'"
posint "$DURATION" || die "DURATION must be a positive integer, not '$DURATION'"
UDP_DURATION=${UDP_DURATION:-$((DURATION < 5 ? DURATION : 5))}
posint "$UDP_DURATION" || die "UDP_DURATION must be a positive integer, not '$UDP_DURATION'"
posint "$PINGS" || die "PINGS must be a positive integer, not '$PINGS'"
[[ -n ${STREAMS// /} ]] || die "STREAMS must list stream counts, e.g. \"1 4\""
for s in $STREAMS; do
	posint "$s" && ((s <= 128)) || die "STREAMS must list integers from 1 to 128, not '$s'"
done
[[ -n ${UDP_SIZES// /} ]] || die "UDP_SIZES must list UDP payload sizes, e.g. \"64 1372\""
for s in $UDP_SIZES; do
	posint "$s" && ((s >= 16 && s <= 1372)) || die "UDP_SIZES must list payload bytes from 16 to 1372 (an inner packet of at most 1400), not '$s'"
done
[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, TUN, raw sockets)"
[[ -z $NETSTACK_ONLY || $NETSTACK_ONLY == 1 ]] || die "NETSTACK_ONLY must be 1 or empty, not '$NETSTACK_ONLY'"

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

# stop_all_but_server: stop every process started since the iperf3 server.
stop_all_but_server() {
	local pid
	TUNNEL_PIDS=()
	for pid in "${PIDS[@]}"; do
		[[ $pid == "$IPERF_SERVER" ]] || stop_pid "$pid"
	done
	PIDS=("$IPERF_SERVER")
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
command -v ping >/dev/null || need+=(iputils-ping)
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
WG_VERSION=$("$TMP/wireguard-go" --version | sed -n 's/^wireguard-go \(v.*\)/\1/p')

# wgnetstack is its own module (bench/e2e/wgnetstack/go.mod, which pins
# the same wireguard-go), built from the module proxy, not from greipsec's
# module graph.
log "building bench/e2e/wgnetstack (golang.zx2c4.com/wireguard/tun/netstack)"
WGNS_BUILD=ok
if ! (cd "$REPO/bench/e2e/wgnetstack" && GOWORK=off GOFLAGS=-mod=mod go build -o "$TMP/wgnetstack" .) >"$TMP/wgns-build.log" 2>&1; then
	WGNS_BUILD="go build ./bench/e2e/wgnetstack failed: $(head -c 600 "$TMP/wgns-build.log" | tr '\n' ' ')"
	log "run.sh: $WGNS_BUILD"
fi

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

RAWCEIL_BUILD=ok
if [[ -z $NETSTACK_ONLY ]]; then
	log "building bench/e2e/rawceil"
	if ! (cd "$REPO" && go build -o "$TMP/rawceil" ./bench/e2e/rawceil) >"$TMP/rawceil-build.log" 2>&1; then
		RAWCEIL_BUILD="go build ./bench/e2e/rawceil failed: $(head -c 600 "$TMP/rawceil-build.log" | tr '\n' ' ')"
		log "run.sh: $RAWCEIL_BUILD"
	fi
fi

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
# Measurements. The results are keyed "PATH/what", e.g. TCP[greipsec-esp4/4]
# is the median Gbit/s of 4 streams through raw ESP over IPv4. A missing key
# is a failed measurement; FAILS says why.

declare -A TCP TCPRUNS PPS PPSRUNS LOSS RTT CEIL CEILRUNS MTU HWM
FAILS=()
IPERF_ERR="" IPERF_BPS="" UDP_RX_PPS="" UDP_LOSS=""

fail() { FAILS+=("$1: $2"); log "run.sh: $1: $2"; }

# median: the median of the numbers on stdin.
median() {
	sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# iperf_json DST PORT ARGS...: one iperf3 -J run from A; its output in
# IPERF_OUT, or IPERF_ERR. (iperf3 -J may exit 0 after an error.)
iperf_json() {
	local dst=$1 port=$2 rc err
	shift 2
	# stdout only: iperf3 writes warnings (e.g. "UDP block size exceeds
	# TCP MSS") to stderr.
	IPERF_OUT=$(timeout $((DURATION + UDP_DURATION + 30)) ip netns exec "$NA" iperf3 -c "$dst" -p "$port" -J --connect-timeout 3000 "$@" 2>"$TMP/iperf3-client.err")
	rc=$?
	err=$(jq -r '.error // empty' <<<"$IPERF_OUT" 2>/dev/null)
	if ((rc != 0)) || [[ -n $err ]]; then
		IPERF_ERR="iperf3 -c $dst $*: ${err:-exit status $rc: $(head -c 300 <<<"$IPERF_OUT") $(head -c 300 "$TMP/iperf3-client.err")}"
		return 1
	fi
}

# iperf_tcp DST PORT ARGS...: a TCP run; IPERF_BPS is the receiver's bits/s.
iperf_tcp() {
	iperf_json "$@" || return 1
	IPERF_BPS=$(jq -er '.end.sum_received.bits_per_second' <<<"$IPERF_OUT" 2>/dev/null) || {
		IPERF_ERR="iperf3 -c $1: no end.sum_received.bits_per_second in its output"
		return 1
	}
}

# iperf_udp DST SIZE: a UDP run at unlimited rate with SIZE-byte payloads;
# UDP_RX_PPS is what the receiver got per second, UDP_LOSS its loss in %.
iperf_udp() {
	iperf_json "$1" 5201 -u -b 0 -l "$2" -t "$UDP_DURATION" || return 1
	UDP_RX_PPS=$(jq -er '.end.sum_received | (.packets - .lost_packets) / .seconds' <<<"$IPERF_OUT" 2>/dev/null) &&
		UDP_LOSS=$(jq -er '.end.sum_received.lost_percent' <<<"$IPERF_OUT" 2>/dev/null) || {
		IPERF_ERR="iperf3 -u -c $1 -l $2: no receiver's rate in end.sum_received: $(jq -c '.end.sum_received' <<<"$IPERF_OUT" 2>/dev/null | head -c 300)"
		return 1
	}
}

# rtt DST: PINGS pings from A, 10 ms apart; RTT_MED and RTT_P99 in ms,
# RTT_LOST the number not answered.
rtt() {
	local out n
	out=$(ip netns exec "$NA" ping -n -c "$PINGS" -i 0.01 -W 2 "$1" 2>&1 | sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' | sort -g)
	n=$(grep -c . <<<"$out")
	((n > 0)) || return 1
	RTT_MED=$(median <<<"$out" | awk '{printf "%.3f", $1}')
	RTT_P99=$(awk -v n="$n" 'BEGIN {k = int(n * 0.99); if (k < n * 0.99) k++} NR == k {printf "%.3f", $1}' <<<"$out")
	RTT_LOST=$((PINGS - n))
}

# gbit BITS_PER_S: in Gbit/s, 2 decimals.
gbit() { awk -v b="$1" 'BEGIN {printf "%.2f", b / 1e9}'; }
# kpps PPS: in thousands, 1 decimal.
kpps() { awk -v p="$1" 'BEGIN {printf "%.1f", p / 1e3}'; }

# warm NAME DST PORT: wait for the path to carry TCP, with short runs (which
# also warm it up), at most 10 tries.
warm() {
	local name=$1 tries=0 len=(-t 1)
	[[ -n $QUICK ]] && len=(-n 10M)
	until iperf_tcp "$2" "$3" "${len[@]}"; do
		((++tries < 10)) || {
			fail "$name" "no working TCP connection to $2:$3 after $tries tries; last: $IPERF_ERR"
			return 1
		}
		sleep 1
	done
}

# TUNNEL_PIDS are the tunnel's processes in A and B, for the peak RSS.
TUNNEL_PIDS=()

# hwm_reset: reset the peak resident memory (VmHWM) of TUNNEL_PIDS
# (proc(5), /proc/PID/clear_refs, 5).
hwm_reset() {
	local pid
	for pid in "${TUNNEL_PIDS[@]}"; do
		echo 5 >"/proc/$pid/clear_refs" 2>/dev/null
	done
}

# hwm KEY: record the peak resident memory (VmHWM, MiB) of TUNNEL_PIDS
# since hwm_reset, "A / B".
hwm() {
	local pid v out=()
	((${#TUNNEL_PIDS[@]})) || return 0
	for pid in "${TUNNEL_PIDS[@]}"; do
		v=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null)
		out+=("${v:-?}")
	done
	HWM[$1]=$(IFS=/; echo "${out[*]}" | sed 's|/| / |g')
}

# tcp NAME DST PORT: RUNS runs of DURATION s for each stream count, and
# the peak RSS of the tunnel during them.
tcp() {
	local name=$1 s i all
	for s in $STREAMS; do
		all=()
		hwm_reset
		for ((i = 1; i <= RUNS; i++)); do
			iperf_tcp "$2" "$3" -t "$DURATION" -P "$s" || {
				fail "$name" "TCP, $s stream(s), run $i: $IPERF_ERR"
				continue 2
			}
			all+=("$(gbit "$IPERF_BPS")")
			log "$name: TCP $s stream(s), run $i/$RUNS: ${all[-1]} Gbit/s"
		done
		hwm "$name/$s"
		TCPRUNS[$name/$s]=${all[*]}
		TCP[$name/$s]=$(printf '%s\n' "${all[@]}" | median | awk '{printf "%.2f", $1}')
	done
}

# udp NAME DST: RUNS runs of UDP_DURATION s for each payload size.
udp() {
	local name=$1 size i all loss
	for size in $UDP_SIZES; do
		all=() loss=()
		for ((i = 1; i <= RUNS; i++)); do
			iperf_udp "$2" "$size" || {
				fail "$name" "UDP, $size bytes, run $i: $IPERF_ERR"
				continue 2
			}
			all+=("$(kpps "$UDP_RX_PPS")")
			loss+=("$UDP_LOSS")
			log "$name: UDP $size bytes, run $i/$RUNS: ${all[-1]} kpps received, $(printf '%.1f' "$UDP_LOSS")% lost"
		done
		PPSRUNS[$name/$size]=${all[*]}
		PPS[$name/$size]=$(printf '%s\n' "${all[@]}" | median | awk '{printf "%.1f", $1}')
		LOSS[$name/$size]=$(printf '%s\n' "${loss[@]}" | median | awk '{printf "%.1f", $1}')
	done
}

# latency NAME DST: ping RTT idle, then under a 1-stream iperf3 TCP run
# through the same path (which starts first; the pings start once it
# reports its first interval).
latency() {
	local name=$1 dst=$2 lp secs rc
	if rtt "$dst"; then
		RTT[$name/idle]=$RTT_MED RTT[$name/idle99]=$RTT_P99 RTT[$name/idlelost]=$RTT_LOST
		log "$name: ping idle: median $RTT_MED ms, p99 $RTT_P99 ms, $RTT_LOST lost"
	else
		fail "$name" "ping $dst, idle: no reply"
	fi
	secs=$(((PINGS + 99) / 100 + 3))
	ip netns exec "$NA" iperf3 -c "$dst" -t "$secs" -i 0.5 --forceflush --connect-timeout 3000 >"$TMP/load-$name.log" 2>&1 &
	lp=$!
	PIDS+=("$lp")
	if ! wait_until 10 grep -q 'bits/sec' "$TMP/load-$name.log"; then
		stop_pid "$lp"
		fail "$name" "ping under load: the iperf3 load did not start: $(tail -c 300 "$TMP/load-$name.log")"
		return 1
	fi
	RTT_MED=""
	rtt "$dst" || fail "$name" "ping $dst, under load: no reply"
	wait "$lp"
	rc=$?
	if ((rc != 0)) || ! grep -q receiver "$TMP/load-$name.log"; then
		fail "$name" "ping under load: the iperf3 load failed (status $rc): $(tail -c 300 "$TMP/load-$name.log")"
		return 1
	fi
	[[ -n $RTT_MED ]] || return 1
	RTT[$name/load]=$RTT_MED RTT[$name/load99]=$RTT_P99 RTT[$name/loadlost]=$RTT_LOST
	log "$name: ping under load: median $RTT_MED ms, p99 $RTT_P99 ms, $RTT_LOST lost"
}

# measure NAME DST IFACE [PORT MTU FULL]: MTU, then TCP; with FULL=1 also
# UDP and latency. IFACE gives the MTU; without one (a user-space stack),
# MTU does.
measure() {
	local name=$1 dst=$2 ifc=$3 port=${4:-5201} full=${6:-}
	MTU[$name]=${5:-}
	[[ -n $ifc ]] && MTU[$name]=$(ip -n "$NA" -o link show dev "$ifc" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
	warm "$name" "$dst" "$port" || return 1
	tcp "$name" "$dst" "$port"
	if [[ -n $full ]]; then
		udp "$name" "$dst"
		RTT_MED=""
		latency "$name" "$dst"
	fi
	return 0
}

# wireguard NAME FAMILY: wireguard-go in both namespaces, with endpoints of
# FAMILY (4 or 6). The interfaces get per-run names instead of wg0: the UAPI
# socket /var/run/wireguard/IFNAME.sock is shared by all namespaces.
wireguard() {
	local name=$1 fam=$2 pa pb ka kb ea=192.0.2.1:51820 eb=192.0.2.2:51820 full=""
	[[ $fam == 6 ]] && ea=[2001:db8:255::1]:51820 eb=[2001:db8:255::2]:51820
	[[ $fam == 4 ]] && full=1
	ka=$(wg genkey) && kb=$(wg genkey) && pa=$(wg pubkey <<<"$ka") && pb=$(wg pubkey <<<"$kb") ||
		{ fail "$name" "wg genkey failed"; return 1; }
	printf '%s\n' "$ka" >"$TMP/a.key"
	printf '%s\n' "$kb" >"$TMP/b.key"
	local ns ifc pid pids=()
	for ns in "$NA" "$NB"; do
		ifc=$WA
		[[ $ns == "$NB" ]] && ifc=$WB
		start "$TMP/wireguard-go-$ns.log" "$ns" env LOG_LEVEL=error "$TMP/wireguard-go" -f "$ifc"
		pid=$STARTED
		pids+=("$pid")
		wait_until 10 test -S "/var/run/wireguard/$ifc.sock" && alive "$pid" || {
			fail "$name" "wireguard-go $ifc did not start: $(tail -c 400 "$TMP/wireguard-go-$ns.log")"
			return 1
		}
	done
	ip netns exec "$NA" wg set "$WA" private-key "$TMP/a.key" listen-port 51820 \
		peer "$pb" endpoint "$eb" allowed-ips 10.254.0.2/32 &&
		ip netns exec "$NB" wg set "$WB" private-key "$TMP/b.key" listen-port 51820 \
			peer "$pa" endpoint "$ea" allowed-ips 10.254.0.1/32 &&
		ip -n "$NA" addr add 10.254.0.1/24 dev "$WA" && ip -n "$NA" link set "$WA" up &&
		ip -n "$NB" addr add 10.254.0.2/24 dev "$WB" && ip -n "$NB" link set "$WB" up ||
		{ fail "$name" "configuring wireguard-go failed"; return 1; }
	TUNNEL_PIDS=("${pids[@]}")
	measure "$name" 10.254.0.2 "$WA" 5201 "" "$full"
	# Both ends must have used the outer family asked for.
	ip netns exec "$NB" wg show "$WB" endpoints | grep -qF "$ea" ||
		fail "$name" "B's endpoint for A is $(ip netns exec "$NB" wg show "$WB" endpoints | awk '{print $2}'), not $ea"
}

# greipsec NAME TRANSPORT FAMILY: greipsec up with the manual-key example
# configurations, transport rewritten to TRANSPORT, and with FAMILY 6 the
# outer addresses to 2001:db8:255::1 and ::2.
greipsec() {
	local name=$1 transport=$2 fam=$3 ns side cfg pid pids=() rc=0 n full=""
	[[ $fam == 4 ]] && full=1
	if [[ $GREIPSEC_BUILD != ok ]]; then
		fail "$name" "$GREIPSEC_BUILD"
		return 1
	fi
	for side in a b; do
		cfg=$TMP/manual-$side-$transport-v$fam.toml
		sed -E "s/^(transport[[:space:]]*=[[:space:]]*)\"esp\"/\1\"$transport\"/" \
			"$REPO/examples/manual-$side.toml" >"$cfg"
		[[ $fam == 6 ]] && sed -i -E 's/^((local|peer)[[:space:]]*=[[:space:]]*)"192\.0\.2\.([12])"/\1"2001:db8:255::\3"/' "$cfg"
		grep -Eq "^transport[[:space:]]*=[[:space:]]*\"$transport\"" "$cfg" &&
			{ [[ $fam == 4 ]] || (($(grep -Ec '^(local|peer)[[:space:]]*=[[:space:]]*"2001:db8:255::[12]"' "$cfg") == 2)); } || {
			fail "$name" "cannot set transport = \"$transport\" (and the IPv$fam outer addresses) in examples/manual-$side.toml"
			return 1
		}
		"$TMP/greipsec" check -c "$cfg" >"$TMP/check-$name-$side.log" 2>&1 || {
			fail "$name" "greipsec check -c $(basename "$cfg"): $(grep -v '^warning' "$TMP/check-$name-$side.log" | tail -n 1)"
			return 1
		}
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
			fail "$name" "greipsec up -c $(basename "$cfg") in $ns exited with status $? before gre0 came up: $(tail -n 1 "$TMP/greipsec-$name-$side.log")"
			rc=1
			break
		elif ((n == 0)); then
			fail "$name" "greipsec up -c $(basename "$cfg") in $ns did not bring up gre0 within 10 s"
			rc=1
			break
		fi
	done
	if ((rc == 0)); then
		TUNNEL_PIDS=("${pids[@]}")
		measure "$name" 10.255.0.2 gre0 5201 "" "$full" || rc=1
	fi
	for pid in "${pids[@]}"; do
		kill -USR1 "$pid" 2>/dev/null # log its counters
	done
	sleep 0.2
	stop_all_but_server
	if ((rc != 0)); then
		for side in a b; do
			[[ -f $TMP/greipsec-$name-$side.log ]] || continue
			log "run.sh: last lines of greipsec up, site $side ($name):"
			tail -n 12 "$TMP/greipsec-$name-$side.log" | cut -c 1-400 | sed 's/^/    /' >&2
		done
	fi
	return $rc
}

# wgnetstack: wireguard-go's netstack, with a TCP forward on each side.
wgnetstack() {
	local name=wg-netstack ka kb pa pb
	if [[ $WGNS_BUILD != ok ]]; then
		fail "$name" "$WGNS_BUILD"
		return 1
	fi
	ka=$(wg genkey) && kb=$(wg genkey) && pa=$(wg pubkey <<<"$ka") && pb=$(wg pubkey <<<"$kb") ||
		{ fail "$name" "wg genkey failed"; return 1; }
	start "$TMP/wgnetstack-b.log" "$NB" "$TMP/wgnetstack" -addr 10.253.0.2 -peer-addr 10.253.0.1 \
		-port 51821 -endpoint 192.0.2.1:51821 -key "$kb" -peer-key "$pa" -tunnel-port 5201 -to 127.0.0.1:5201
	local pidb=$STARTED
	start "$TMP/wgnetstack-a.log" "$NA" "$TMP/wgnetstack" -addr 10.253.0.1 -peer-addr 10.253.0.2 \
		-port 51821 -endpoint 192.0.2.2:51821 -key "$ka" -peer-key "$pb" -local 127.0.0.1:15201 -to 10.253.0.2:5201
	local pida=$STARTED
	wait_until 10 ip netns exec "$NA" bash -c "ss -Hltn sport = :15201 | grep -q ." || {
		fail "$name" "wgnetstack did not start: $(tail -c 400 "$TMP/wgnetstack-a.log")"
		return 1
	}
	TUNNEL_PIDS=("$pida" "$pidb")
	measure "$name" 127.0.0.1 "" 15201 1420
}

# greipsec_netstack: greipsec with inner = "netstack", with a TCP forward on each side.
greipsec_netstack() {
	local name=greipsec-netstack side ns pid pids=() rc=0
	if [[ $GREIPSEC_BUILD != ok ]]; then
		fail "$name" "$GREIPSEC_BUILD"
		return 1
	fi
	for side in a b; do
		local me=1 them=2 forward
		forward='direction = "local-to-far"
listen    = "127.0.0.1:15202"
target    = "10.255.0.2:5201"'
		ns=$NA
		if [[ $side == b ]]; then
			me=2 them=1 ns=$NB
			forward='direction = "far-to-local"
listen    = ":5201"
target    = "127.0.0.1:5201"'
		fi
		cat >"$TMP/netstack-$side.toml" <<-EOF
			[[tunnel]]
			name      = "ns0"
			inner     = "netstack"
			transport = "udp"
			local     = "192.0.2.$me"
			peer      = "192.0.2.$them"
			addresses = ["10.255.0.$me/30"]
			[[tunnel.forward]]
			proto     = "tcp"
			$forward
			[tunnel.ike]
			port-500  = false
			psk       = "bench-e2e-netstack-psk"
		EOF
		start "$TMP/greipsec-netstack-$side.log" "$ns" "$TMP/greipsec" up -c "$TMP/netstack-$side.toml" --control "$TMP/greipsec-netstack-$side.sock"
		pid=$STARTED
		pids+=("$pid")
		wait_until 10 test -S "$TMP/greipsec-netstack-$side.sock" && alive "$pid" || {
			fail "$name" "greipsec up (netstack, site $side) did not start: $(tail -n 1 "$TMP/greipsec-netstack-$side.log")"
			rc=1
			break
		}
	done
	if ((rc == 0)); then
		TUNNEL_PIDS=("${pids[@]}")
		measure "$name" 127.0.0.1 "" 15202 "$("$TMP/greipsec" check -c "$TMP/netstack-a.toml" | awk '$1 == "ns0" {print $9}')" || rc=1
	fi
	for pid in "${pids[@]}"; do
		kill -USR1 "$pid" 2>/dev/null
	done
	sleep 0.2
	stop_all_but_server
	if ((rc != 0)); then
		for side in a b; do
			[[ -f $TMP/greipsec-netstack-$side.log ]] || continue
			log "run.sh: last lines of greipsec up, netstack site $side:"
			tail -n 12 "$TMP/greipsec-netstack-$side.log" | cut -c 1-400 | sed 's/^/    /' >&2
		done
	fi
	return $rc
}

# ceiling PROTO: RUNS runs of rawceil (PROTO esp: raw IP protocol 50; udp:
# UDP datagrams to port 4500) with CEIL_SIZE-byte payloads from A to B, for
# UDP_DURATION s; the receiver's Gbit/s and kpps.
ceiling() {
	local proto=$1 name=ceiling-$1 i pid out g k gs=() ks=()
	if [[ $RAWCEIL_BUILD != ok ]]; then
		fail "$name" "$RAWCEIL_BUILD"
		return 1
	fi
	for ((i = 1; i <= RUNS; i++)); do
		start "$TMP/rawceil-recv.log" "$NB" "$TMP/rawceil" -mode recv -proto "$proto" -dst 192.0.2.2 -size "$CEIL_SIZE" -t "${UDP_DURATION}s"
		pid=$STARTED
		wait_until 5 grep -q 'rawceil: ready' "$TMP/rawceil-recv.log" || {
			fail "$name" "rawceil -mode recv did not start: $(tail -c 300 "$TMP/rawceil-recv.log")"
			stop_pid "$pid"
			return 1
		}
		if ! out=$(ip netns exec "$NA" "$TMP/rawceil" -mode send -proto "$proto" -dst 192.0.2.2 -size "$CEIL_SIZE" -t "${UDP_DURATION}s" 2>&1); then
			fail "$name" "rawceil -mode send: $out"
			stop_pid "$pid"
			return 1
		fi
		wait "$pid"
		out=$(grep '^{' "$TMP/rawceil-recv.log")
		g=$(jq -er 'select(.seconds > 0) | .bytes * 8 / .seconds' <<<"$out" 2>/dev/null) &&
			k=$(jq -er 'select(.seconds > 0) | .packets / .seconds' <<<"$out" 2>/dev/null) || {
			fail "$name" "rawceil -mode recv, run $i: $(tail -c 300 "$TMP/rawceil-recv.log")"
			return 1
		}
		gs+=("$(gbit "$g")") ks+=("$(kpps "$k")")
		log "$name: run $i/$RUNS: ${gs[-1]} Gbit/s, ${ks[-1]} kpps received"
	done
	CEIL[$proto/gbps]=$(printf '%s\n' "${gs[@]}" | median | awk '{printf "%.2f", $1}')
	CEIL[$proto/kpps]=$(printf '%s\n' "${ks[@]}" | median | awk '{printf "%.1f", $1}')
	CEILRUNS[$proto]="${gs[*]} Gbit/s; ${ks[*]} kpps"
}

if [[ -z $NETSTACK_ONLY ]]; then
	log "== bare veth"
	measure veth 192.0.2.2 "$VA" 5201 "" 1
	log "== raw IP ceiling"
	ceiling esp
	ceiling udp
	stop_all_but_server
	for fam in 4 6; do
		log "== wireguard-go, IPv$fam outer"
		wireguard "wireguard-go$fam" "$fam"
		stop_all_but_server
		log "== greipsec raw ESP, IPv$fam outer"
		greipsec "greipsec-esp$fam" esp "$fam"
		log "== greipsec ESP-in-UDP, IPv$fam outer"
		greipsec "greipsec-udp$fam" udp "$fam"
	done
fi
log "== wireguard-go netstack"
wgnetstack
stop_all_but_server
log "== greipsec netstack"
greipsec_netstack

# ---------------------------------------------------------------------------
# Report. Every cell is a number or FAILED; any FAILED makes the exit status 1.

# cell ARRAY KEY: the value, or FAILED.
cell() {
	local -n a=$1
	echo "${a[$2]:-FAILED}"
}
# ratio ARRAY KEY_A KEY_B: A / B, or n/a.
ratio() {
	local -n a=$1
	[[ -n ${a[$2]:-} && -n ${a[$3]:-} ]] &&
		awk -v x="${a[$2]}" -v y="${a[$3]}" 'BEGIN {if (y > 0) printf "%.2f", x / y; else print "n/a"}' ||
		echo n/a
}
label() {
	case $1 in
	veth) echo "bare veth" ;;
	wireguard-go4) echo "wireguard-go, IPv4 outer" ;;
	wireguard-go6) echo "wireguard-go, IPv6 outer" ;;
	greipsec-esp4) echo "greipsec, raw ESP, IPv4 outer" ;;
	greipsec-esp6) echo "greipsec, raw ESP, IPv6 outer" ;;
	greipsec-udp4) echo "greipsec, ESP-in-UDP, IPv4 outer" ;;
	greipsec-udp6) echo "greipsec, ESP-in-UDP, IPv6 outer" ;;
	wg-netstack) echo "wireguard-go netstack, TCP forwards" ;;
	greipsec-netstack) echo "greipsec netstack (ESP-in-UDP), TCP forwards" ;;
	*) echo "$1" ;;
	esac
}

report() {
ELAPSED=$((SECONDS - T0))
echo "## greipsec end-to-end: TCP, UDP packets/s, latency"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- command: \`$CMDLINE\`"
echo "- kernel: $(uname -r)"
echo "- CPU: $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1), $(nproc) cores"
echo "- Go: $(go version | awk '{print $3}')"
echo "- greipsec: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no commit')${GREIPSEC:+ (binary $GREIPSEC)}"
echo "- wireguard-go: ${WG_VERSION:-?} (golang.zx2c4.com/wireguard@$WIREGUARD_VERSION)"
echo "- iperf3: $(iperf3 --version | head -1 | awk '{print $2}'), A -> B; RUNS=$RUNS runs, median; TCP ${DURATION} s, UDP and ceiling ${UDP_DURATION} s; $PINGS pings"
echo "- run time: $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
echo

PATHS="veth wireguard-go4 greipsec-esp4 greipsec-udp4 wireguard-go6 greipsec-esp6 greipsec-udp6 wg-netstack greipsec-netstack"
[[ -n $NETSTACK_ONLY ]] && PATHS="wg-netstack greipsec-netstack"
FULL="veth wireguard-go4 greipsec-esp4 greipsec-udp4" # UDP and latency too
[[ -n $NETSTACK_ONLY ]] && FULL=""

echo "### TCP, Gbit/s (receiver), median of $RUNS"
echo
hdr="| path | inner MTU |" sep="|---|---:|"
for s in $STREAMS; do hdr+=" $s stream(s) |" sep+="---:|"; done
for s in $STREAMS; do hdr+=" runs, $s |" sep+="---|"; done
for s in $STREAMS; do hdr+=" peak RSS A / B MiB, $s |" sep+="---|"; done
echo "$hdr"
echo "$sep"
for name in $PATHS; do
	row="| $(label "$name") | ${MTU[$name]:-?} |"
	for s in $STREAMS; do row+=" $(cell TCP "$name/$s") |"; done
	for s in $STREAMS; do row+=" ${TCPRUNS[$name/$s]:-} |"; done
	for s in $STREAMS; do
		if [[ $name == veth ]]; then row+=" n/a |"; else row+=" ${HWM[$name/$s]:-} |"; fi
	done
	echo "$row"
done

if [[ -n $FULL ]]; then
	echo
	echo "### UDP, packets/s received (thousands) and loss %, IPv4 outer, median of $RUNS"
	echo
	hdr="| path |" sep="|---|"
	for s in $UDP_SIZES; do hdr+=" $s B kpps | $s B loss % |" sep+="---:|---:|"; done
	for s in $UDP_SIZES; do hdr+=" runs, $s B |" sep+="---|"; done
	echo "$hdr"
	echo "$sep"
	for name in $FULL; do
		row="| $(label "$name") |"
		for s in $UDP_SIZES; do row+=" $(cell PPS "$name/$s") | $(cell LOSS "$name/$s") |"; done
		for s in $UDP_SIZES; do row+=" ${PPSRUNS[$name/$s]:-} |"; done
		echo "$row"
	done

	echo
	echo "### Raw IP ceiling: $CEIL_SIZE-byte payloads A -> B, no crypto, no TUN (bench/e2e/rawceil), median of $RUNS"
	echo
	echo "| path | Gbit/s | kpps | runs |"
	echo "|---|---:|---:|---|"
	echo "| raw IP protocol 50, sendmmsg -> recvmmsg | $(cell CEIL esp/gbps) | $(cell CEIL esp/kpps) | ${CEILRUNS[esp]:-} |"
	echo "| UDP datagrams, sendmmsg -> recvmmsg (no GSO/GRO) | $(cell CEIL udp/gbps) | $(cell CEIL udp/kpps) | ${CEILRUNS[udp]:-} |"

	echo
	echo "### Latency: ping RTT, ms, $PINGS pings 10 ms apart, IPv4 outer; under load = during a 1-stream TCP iperf3 through the same path"
	echo
	echo "| path | idle median | idle p99 | idle lost | under load median | under load p99 | under load lost |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for name in $FULL; do
		echo "| $(label "$name") | $(cell RTT "$name/idle") | $(cell RTT "$name/idle99") | $(cell RTT "$name/idlelost") | $(cell RTT "$name/load") | $(cell RTT "$name/load99") | $(cell RTT "$name/loadlost") |"
	done
fi

echo
echo "### Ratios"
echo
ratio_row() { # ARRAY LABEL A B KEYS...: a row of the ratios A/B for each key
	local arr=$1 row="| $2 |" a=$3 b=$4 k
	shift 4
	for k in "$@"; do row+=" $(ratio "$arr" "$a/$k" "$b/$k") |"; done
	echo "$row"
}
hdr="| greipsec / wireguard-go, TCP |" sep="|---|"
for s in $STREAMS; do hdr+=" $s stream(s) |" sep+="---:|"; done
echo "$hdr"
echo "$sep"
if [[ -z $NETSTACK_ONLY ]]; then
	ratio_row TCP "raw ESP, IPv4 outer" greipsec-esp4 wireguard-go4 $STREAMS
	ratio_row TCP "ESP-in-UDP, IPv4 outer" greipsec-udp4 wireguard-go4 $STREAMS
	ratio_row TCP "raw ESP, IPv6 outer" greipsec-esp6 wireguard-go6 $STREAMS
	ratio_row TCP "ESP-in-UDP, IPv6 outer" greipsec-udp6 wireguard-go6 $STREAMS
fi
ratio_row TCP "netstack / wireguard-go netstack" greipsec-netstack wg-netstack $STREAMS
if [[ -z $NETSTACK_ONLY ]]; then
	echo
	hdr="| greipsec / wireguard-go, UDP packets/s received, IPv4 outer |" sep="|---|"
	for s in $UDP_SIZES; do hdr+=" $s B |" sep+="---:|"; done
	echo "$hdr"
	echo "$sep"
	ratio_row PPS "raw ESP" greipsec-esp4 wireguard-go4 $UDP_SIZES
	ratio_row PPS "ESP-in-UDP" greipsec-udp4 wireguard-go4 $UDP_SIZES
	echo
	echo "| greipsec raw ESP, IPv4 outer / raw IP ceiling | |"
	echo "|---|---:|"
	for s in $STREAMS; do
		echo "| TCP $s stream(s) Gbit/s / ceiling Gbit/s | $(awk -v x="${TCP[greipsec-esp4/$s]:-}" -v y="${CEIL[esp/gbps]:-}" 'BEGIN {if (x != "" && y > 0) printf "%.2f", x / y; else print "n/a"}') |"
	done
	for s in $UDP_SIZES; do
		echo "| UDP $s B kpps / ceiling kpps | $(awk -v x="${PPS[greipsec-esp4/$s]:-}" -v y="${CEIL[esp/kpps]:-}" 'BEGIN {if (x != "" && y > 0) printf "%.2f", x / y; else print "n/a"}') |"
	done
fi
if ((${#FAILS[@]})); then
	echo
	for f in "${FAILS[@]}"; do
		echo "FAILED $f"
	done
fi
}
report >"$TMP/report.md"
cat "$TMP/report.md"
# Any cell without a number, or any failure, fails the run.
grep -q FAILED "$TMP/report.md" && exit 1
exit 0
