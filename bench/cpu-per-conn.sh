#!/usr/bin/env bash
# CPU time each proxy spends per proxied connection: the cost figure behind
# the connection-rate row of docs/benchmarks.md, and far less sensitive to a
# busy host than req/s. wrk (1 thread, 50 connections, `Connection: close`,
# 100-byte answers from a private nginx) runs against each proxy for SECS;
# the proxy's CPU (utime+stime of the process and its children, from /proc)
# over the run is divided by the requests wrk completed. Median of RUNS,
# with the median request rate beside it.
# Peers: HAProxy (nbthread 2), nginx stream (2 workers), tcplb native, js,
# js with 2 workers, and the floor of a Node relay with no policy at all
# (bench/node-floor.mjs: `pipe`, socket.pipe() both ways; `tuned`, the
# JavaScript engine's relay technique alone). KEEPALIVE=1: persistent
# connections instead, so the figure is CPU per request relayed. Needs nginx + libnginx-mod-stream, haproxy, wrk
# (bash .ci/install-deps.sh). Loopback only; stops what it started, by PID.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"
bench_setup cpu-per-conn
runs=${RUNS:-3} secs=${SECS:-4}
be=18921 lb=18922
start_http_backend
hz=$(getconf CLK_TCK)
close_hdr=(-H 'Connection: close') unit=connection
if [ "${KEEPALIVE:-0}" = 1 ]; then close_hdr=() unit=request; fi

measure() { # name, command...
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>&1 & local pid=$!
  sleep 1.5
  local vals=() rates=()
  for _ in $(seq "$runs"); do
    local c0; c0=$(cpu_ticks "$pid")
    local out; out=$(wrk -t1 -c50 -d"${secs}s" "${close_hdr[@]}" "http://127.0.0.1:$lb/" 2>/dev/null)
    local c1; c1=$(cpu_ticks "$pid")
    local reqs; reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    vals+=("$(awk -v c=$((c1 - c0)) -v r="$reqs" -v hz="$hz" 'BEGIN { printf "%.0f", c / hz * 1e6 / r }')")
    rates+=("$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")")
  done
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  sleep 0.5
  printf "%-14s %4s us of CPU per $unit (runs: %s); %6s req/s\n" "$name" "$(median "${vals[@]}")" "${vals[*]}" "$(median "${rates[@]}")"
}

sleep 1
command -v haproxy >/dev/null && measure haproxy haproxy -db -f "$(haproxy_cfg plain 2)"
[ -n "$stream_mod" ] && measure nginx-stream nginx -c "$(nginx_stream_cfg plain 2)" -p "$dir"
TCPLB_ENGINE= measure tcplb-native node dist/src/cli/main.js --headless -c "$(tcplb_cfg native 1)"
TCPLB_ENGINE= measure tcplb-js node dist/src/cli/main.js --headless -c "$(tcplb_cfg js 1)"
TCPLB_ENGINE= measure tcplb-js2 node dist/src/cli/main.js --headless -c "$(tcplb_cfg js 2)"
measure node-pipe node bench/node-floor.mjs pipe "127.0.0.1:$lb" "127.0.0.2:$be"
measure node-tuned node bench/node-floor.mjs tuned "127.0.0.1:$lb" "127.0.0.2:$be"
