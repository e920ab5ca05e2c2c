#!/usr/bin/env bash
# CPU time a proxy spends per GB relayed (iperf3, STREAMS parallel streams,
# SECS seconds, through the proxy to an iperf3 server on 127.0.0.2), and its
# system calls per MB (strace -c, a separate shorter run): the bulk figures of
# bench/optimisations.md, far less load-sensitive than Gbit/s.
#   bash bench/cpu-per-gb.sh [tcplb-native|haproxy|haproxy-tuned|nginx-tuned]...
# Env: SECS (default 4), STREAMS (default 1), RUNS (default 3). Loopback only.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"
bench_setup cpu-gb
secs=${SECS:-4} streams=${STREAMS:-1} runs=${RUNS:-3}
be=18941 lb=18942
iperf3 -s -B 127.0.0.2 -p "$be" >/dev/null 2>&1 & pids+=($!)
hz=$(getconf CLK_TCK)
measure() {
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>&1 & local pid=$!
  sleep 1.5
  local vals=() rates=()
  for _ in $(seq "$runs"); do
    local c0; c0=$(cpu_ticks "$pid")
    local j; j=$(iperf3 -c 127.0.0.1 -p "$lb" -t "$secs" -P "$streams" -J 2>/dev/null)
    local c1; c1=$(cpu_ticks "$pid")
    local bytes; bytes=$(node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(j.end.sum_received.bytes)' <<<"$j")
    vals+=("$(awk -v c=$((c1 - c0)) -v b="$bytes" -v hz="$hz" 'BEGIN { printf "%.3f", c / hz / (b / 1e9) }')")
    rates+=("$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.2f", b * 8 / s / 1e9 }')")
    sleep 0.3
  done
  strace -c -f -q -o "$dir/$name.st" $(strace_targets "$pid") & local st=$!
  sleep 0.5
  local j; j=$(iperf3 -c 127.0.0.1 -p "$lb" -t 2 -P "$streams" -J 2>/dev/null)
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  local mb; mb=$(node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(j.end.sum_received.bytes/1048576)' <<<"$j")
  local sc; sc=$(awk '/total/ {print $4}' "$dir/$name.st")
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  printf '%-14s %s CPU s per GB (runs: %s), %s Gbit/s; %s syscalls per MB under strace\n' "$name" "$(median "${vals[@]}")" "${vals[*]}" "$(median "${rates[@]}")" \
    "$(awk -v s="$sc" -v m="$mb" 'BEGIN { printf "%.1f", s / m }')"
  sleep 0.5
}
sleep 1
for peer in "${@:-tcplb-native}"; do
  case $peer in
    tcplb-native) TCPLB_ENGINE= measure "$peer" node dist/src/cli/main.js --headless -c "$(tcplb_cfg native 1)" ;;
    haproxy) measure "$peer" haproxy -db -f "$(haproxy_cfg plain 1)" ;;
    haproxy-tuned) measure "$peer" haproxy -db -f "$(haproxy_cfg tuned 1 'option splice-auto')" ;;
    nginx-tuned) measure "$peer" nginx -c "$(nginx_stream_cfg tuned 1 reuseport 'proxy_buffer_size 64k;')" -p "$dir" ;;
    *) echo "unknown peer $peer" >&2; exit 2 ;;
  esac
done
