#!/bin/sh
# Attack and fault figures of issue 6 (README.md, "Security and
# reliability"): builds greipsec and bench/attack, and runs every scenario
# against real "greipsec up" processes in network namespaces, printing the
# table. Needs root, nft; takes about 20 minutes with the defaults.
#
#   sudo bench/attack/run.sh                 # 60 s floods, 60 s and 200 s outages
#   sudo bench/attack/run.sh -d 10s -outages 20s -rates 1000   # a quick run
#   sudo bench/attack/run.sh -only outage    # the scenarios whose name contains "outage"
#   KEEP=1 sudo -E bench/attack/run.sh ...   # keep the configs and logs in /tmp/greipsec-attack-*
set -eu
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d /tmp/greipsec-attack-bin.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
go build -o "$TMP/greipsec" ./cmd/greipsec
go build -o "$TMP/attack" ./bench/attack
nice "$TMP/attack" -greipsec "$TMP/greipsec" "$@"
