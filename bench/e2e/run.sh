#!/usr/bin/env bash
# bench/e2e/run.sh: end-to-end TCP throughput of greipsec against baselines,
# between two network namespaces joined by a veth pair. See README.md.
#
# Measures, with iperf3 (A -> B, RUNS runs of DURATION seconds, median):
#   1. the bare veth              192.0.2.1      -> 192.0.2.2
#   2. wireguard-go (userspace)   10.254.0.1     -> 10.254.0.2
#   3. greipsec, raw ESP          10.255.0.1     -> 10.255.0.2
#   4. greipsec, ESP-in-UDP       10.255.0.1     -> 10.255.0.2
# and, with a user-space network stack on both sides instead of a TUN
# device, iperf3 through a TCP port forward on each side (A's host port ->
# A's stack -> tunnel -> B's stack -> B's host port 5201), as wireproxy-style
# tools run, no TUN and no privilege needed:
#   5. wireguard-go netstack      127.0.0.1:15201 -> 10.253.0.2:5201 -> 127.0.0.1:5201
#      (bench/e2e/wgnetstack: golang.zx2c4.com/wireguard/tun/netstack, built
#      from the Go module proxy in this run)
#   6. greipsec netstack          127.0.0.1:15202 -> 10.255.0.2:5201 -> 127.0.0.1:5201
#      (inner = "netstack", ESP-in-UDP, IKE on port 4500, [[tunnel.forward]])
# and prints a markdown table. Needs root. Exits non-zero if any
# measurement failed; the others are still made and printed.
#
#   RUNS=3 DURATION=10 bench/e2e/run.sh
#   NETSTACK_ONLY=1 bench/e2e/run.sh    # only 5. and 6.
#
# STREAMS=4 runs iperf3 with 4 parallel TCP streams (-P 4). For each tunnel
# the table also gives the peak resident memory (VmHWM) of the sending (A)
# and the receiving (B) process.
#
# GREIPSEC=/path/to/greipsec uses that binary instead of building ./cmd/greipsec.

set -uo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
STREAMS=${STREAMS:-1}
NETSTACK_ONLY=${NETSTACK_ONLY:-}
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
[[ $STREAMS =~ ^[1-9][0-9]*$ ]] || die "STREAMS must be a positive integer, not '$STREAMS'"
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

declare -A MEDIAN RUNSOF MTU ERR HWM
IPERF_ERR="" IPERF_BPS=""

# iperf DST SECONDS [PORT]: one iperf3 run from A to DST (port 5201 unless
# given); sets IPERF_BPS to the receiver's bits/s, or IPERF_ERR. (iperf3 -J
# may exit 0 after an error.)
iperf() {
	local out rc err
	out=$(timeout $(($2 + 30)) ip netns exec "$NA" iperf3 -c "$1" -p "${3:-5201}" -t "$2" -P "$STREAMS" -J --connect-timeout 3000 2>&1)
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

# hwm NAME PID...: record the peak resident memory (VmHWM, MiB) of each
# process, "A / B".
hwm() {
	local name=$1 pid v out=()
	shift
	for pid in "$@"; do
		v=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null)
		out+=("${v:-?}")
	done
	HWM[$name]=$(IFS=/; echo "${out[*]}" | sed 's|/| / |g')
}

# median: the median of the numbers on stdin.
median() {
	sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# measure NAME DST IFACE [PORT MTU]: warm up (and wait for the path) with
# 1 s runs, then RUNS runs of DURATION s; fills MEDIAN, RUNSOF, MTU. IFACE
# gives the MTU; without one (a user-space stack), MTU does.
measure() {
	local name=$1 dst=$2 ifc=$3 port=${4:-5201} i all=() tries=0
	MTU[$name]=${5:-}
	[[ -n $ifc ]] && MTU[$name]=$(ip -n "$NA" -o link show dev "$ifc" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
	until iperf "$dst" 1 "$port"; do
		((++tries < 10)) || {
			ERR[$name]="no working TCP connection to $dst:$port through ${ifc:-the forward} after $tries tries; last: $IPERF_ERR"
			return 1
		}
		sleep 1
	done
	for ((i = 1; i <= RUNS; i++)); do
		log "$name: run $i/$RUNS"
		iperf "$dst" "$DURATION" "$port" || {
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
if [[ -z $NETSTACK_ONLY ]]; then
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
	WGPIDS=()
	for ns in "$NA" "$NB"; do
		ifc=$WA
		[[ $ns == "$NB" ]] && ifc=$WB
		start "$TMP/wireguard-go-$ns.log" "$ns" env LOG_LEVEL=error "$TMP/wireguard-go" -f "$ifc"
		pid=$STARTED
		WGPIDS+=("$pid")
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
	hwm wireguard-go "${WGPIDS[@]}"
}
log "== wireguard-go"
wireguard
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
		hwm "$name" "${pids[@]}"
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
fi # NETSTACK_ONLY

# 5. wireguard-go's netstack, with a TCP forward on each side.
wgnetstack() {
	local ka kb pa pb pid side
	if [[ $WGNS_BUILD != ok ]]; then
		ERR[wg-netstack]=$WGNS_BUILD
		return 1
	fi
	ka=$(wg genkey) && kb=$(wg genkey) && pa=$(wg pubkey <<<"$ka") && pb=$(wg pubkey <<<"$kb") ||
		{ ERR[wg-netstack]="wg genkey failed"; return 1; }
	start "$TMP/wgnetstack-b.log" "$NB" "$TMP/wgnetstack" -addr 10.253.0.2 -peer-addr 10.253.0.1 \
		-port 51821 -endpoint 192.0.2.1:51821 -key "$kb" -peer-key "$pa" -tunnel-port 5201 -to 127.0.0.1:5201
	local pidb=$STARTED
	start "$TMP/wgnetstack-a.log" "$NA" "$TMP/wgnetstack" -addr 10.253.0.1 -peer-addr 10.253.0.2 \
		-port 51821 -endpoint 192.0.2.2:51821 -key "$ka" -peer-key "$pb" -local 127.0.0.1:15201 -to 10.253.0.2:5201
	local pida=$STARTED
	wait_until 10 ip netns exec "$NA" bash -c "ss -Hltn sport = :15201 | grep -q ." || {
		ERR[wg-netstack]="wgnetstack did not start: $(tail -c 400 "$TMP/wgnetstack-a.log")"
		return 1
	}
	measure wg-netstack 127.0.0.1 "" 15201 1420
	hwm wg-netstack "$pida" "$pidb"
}
log "== wireguard-go netstack"
wgnetstack
for pid in "${PIDS[@]}"; do
	[[ $pid == "$IPERF_SERVER" ]] || stop_pid "$pid"
done
PIDS=("$IPERF_SERVER")

# 6. greipsec with inner = "netstack", with a TCP forward on each side.
greipsec_netstack() {
	local side ns pid pids=() rc=0
	if [[ $GREIPSEC_BUILD != ok ]]; then
		ERR[greipsec-netstack]=$GREIPSEC_BUILD
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
			ERR[greipsec-netstack]="greipsec up (netstack, site $side) did not start: $(tail -n 1 "$TMP/greipsec-netstack-$side.log")"
			rc=1
			break
		}
	done
	if ((rc == 0)); then
		measure greipsec-netstack 127.0.0.1 "" 15202 "$("$TMP/greipsec" check -c "$TMP/netstack-a.toml" | awk '$1 == "ns0" {print $9}')" || rc=1
		hwm greipsec-netstack "${pids[@]}"
	fi
	for pid in "${pids[@]}"; do
		kill -USR1 "$pid" 2>/dev/null
	done
	sleep 0.2
	for pid in "${pids[@]}"; do
		stop_pid "$pid"
	done
	PIDS=("$IPERF_SERVER")
	if ((rc != 0)); then
		for side in a b; do
			[[ -f $TMP/greipsec-netstack-$side.log ]] || continue
			log "run.sh: last lines of greipsec up, netstack site $side:"
			tail -n 12 "$TMP/greipsec-netstack-$side.log" | cut -c 1-400 | sed 's/^/    /' >&2
		done
	fi
	return $rc
}
log "== greipsec netstack"
greipsec_netstack

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
echo "- iperf3: $(iperf3 --version | head -1 | awk '{print $2}'), A -> B, $STREAMS stream(s), $RUNS runs x ${DURATION} s, median"
echo
PATHS="veth wireguard-go greipsec-esp greipsec-udp wg-netstack greipsec-netstack"
[[ -n $NETSTACK_ONLY ]] && PATHS="wg-netstack greipsec-netstack"
echo "| path | inner MTU | median Gbit/s | runs Gbit/s | peak RSS (VmHWM) A / B, MiB |"
echo "|---|---:|---:|---|---|"
for name in $PATHS; do
	label=$name
	case $name in
	veth) label="bare veth" ;;
	greipsec-esp) label="greipsec, raw ESP" ;;
	greipsec-udp) label="greipsec, ESP-in-UDP" ;;
	wg-netstack) label="wireguard-go netstack, TCP forwards" ;;
	greipsec-netstack) label="greipsec netstack (ESP-in-UDP), TCP forwards" ;;
	esac
	echo "| $label | ${MTU[$name]:-?} | $(gbps "$name") | ${RUNSOF[$name]:-} | ${HWM[$name]:-} |"
	if [[ -z ${MEDIAN[$name]:-} ]]; then
		failed=1
	fi
done
echo
echo "| ratio | |"
echo "|---|---:|"
if [[ -z $NETSTACK_ONLY ]]; then
	echo "| greipsec raw ESP / wireguard-go | $(ratio greipsec-esp wireguard-go) |"
	echo "| greipsec ESP-in-UDP / wireguard-go | $(ratio greipsec-udp wireguard-go) |"
fi
echo "| greipsec netstack / wireguard-go netstack | $(ratio greipsec-netstack wg-netstack) |"
for name in $PATHS; do
	if [[ -n ${ERR[$name]:-} ]]; then
		echo
		echo "FAILED $name: ${ERR[$name]}"
	fi
done
exit $failed
