#!/usr/bin/env bash
# System calls a proxy makes per proxied connection (or per request with
# KEEPALIVE=1): a figure a busy host does not disturb, for tuning the native
# relay (bench/optimisations.md). wrk (1 thread, C connections,
# `Connection: close`, 100-byte answers from a private nginx) runs for SECS
# against the proxy while `strace -c -f` counts the proxy's system calls (all
# its threads); each call's count is divided by the requests wrk completed.
# strace slows the proxy a lot: the rate is meaningless, the counts are not.
# PACKETS=1 counts packets instead (tcpdump on lo, no strace, so the timing
# that decides which ACKs ride on data is the real one): per request, on the
# client side (to and from the proxy's port) and the backend side.
#   bash bench/syscalls-per-conn.sh [tcplb-native|tcplb-js|haproxy|haproxy-tuned|nginx|nginx-tuned]...
# Env: SECS (default 3), C (default 20), KEEPALIVE=1, PACKETS=1, THREADS
# (tcplb-native relay threads, default 1). Loopback only; stops what it
# started, by PID.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"
bench_setup syscalls
if [ "${PACKETS:-0}" = 1 ] && ! command -v tcpdump >/dev/null; then echo "PACKETS=1 needs tcpdump (apt-get install tcpdump)" >&2; exit 2; fi
secs=${SECS:-3} conns=${C:-20} threads=${THREADS:-1}
be=18931 lb=18932
start_http_backend
close_hdr=(-H 'Connection: close') unit=connection
if [ "${KEEPALIVE:-0}" = 1 ]; then close_hdr=() unit=request; fi

count_packets() { # name: wrk under tcpdump, packets per request on each side
  tcpdump -i lo -n -s 96 -w "$dir/$1.pcap" "tcp port $lb or tcp port $be" 2>"$dir/$1.tcpdump" & local td=$!
  sleep 1
  local out; out=$(wrk -t1 -c"$conns" -d"${secs}s" "${close_hdr[@]}" "http://127.0.0.1:$lb/" 2>/dev/null)
  sleep 0.5
  kill -INT "$td"; wait "$td" 2>/dev/null || true
  local reqs; reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  local dropped; dropped=$(awk '/dropped by kernel/ {print $1}' "$dir/$1.tcpdump")
  local cl; cl=$(tcpdump -r "$dir/$1.pcap" -n "tcp port $lb" 2>/dev/null | wc -l)
  local bk; bk=$(tcpdump -r "$dir/$1.pcap" -n "tcp port $be" 2>/dev/null | wc -l)
  awk -v n="$1" -v r="$reqs" -v c="$cl" -v b="$bk" -v d="${dropped:-0}" -v u="$unit" 'BEGIN {
    printf "%-14s %5.2f packets per %s (client side %.2f, backend side %.2f) over %d; %s\n",
      n, (c + b) / r, u, c / r, b / r, r, (d > 0 ? d " DROPPED by tcpdump: rerun" : "none dropped") }'
}

measure() { # name, command...
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>&1 & local pid=$!
  sleep 2
  wrk -t1 -c"$conns" -d1s "${close_hdr[@]}" "http://127.0.0.1:$lb/" >/dev/null 2>&1 || true # warm-up
  if [ "${PACKETS:-0}" = 1 ]; then count_packets "$name"; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; sleep 0.5; return; fi
  strace -c -f -q -o "$dir/$name.strace" $(strace_targets "$pid") & local st=$!
  sleep 0.5
  local out; out=$(wrk -t1 -c"$conns" -d"${secs}s" "${close_hdr[@]}" "http://127.0.0.1:$lb/" 2>/dev/null)
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  local reqs; reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  printf '%s: %s requests\n' "$name" "$reqs"
  # strace -c table: calls in column 4 (5 with an errors column before the name)
  awk -v r="$reqs" '
    /^-/ || /^%/ || /total/ || NF < 5 { next }
    { name = $NF; calls = $4; errs = (NF == 6) ? $5 : 0; tot += calls; note = ""
      if (errs > 0) note = sprintf(" (%.2f failed)", errs / r)
      printf "  %-16s %6.2f per '"$unit"'%s\n", name, calls / r, note }
    END { printf "  %-16s %6.2f per '"$unit"'\n", "TOTAL", tot / r }' "$dir/$name.strace" | sort -k2 -rn
  sleep 0.5
}

sleep 1
for peer in "${@:-tcplb-native}"; do
  case $peer in
    tcplb-native) TCPLB_ENGINE= measure "$peer" node dist/src/cli/main.js --headless -c "$(tcplb_cfg native "$threads")" ;;
    tcplb-js) TCPLB_ENGINE= measure "$peer" node dist/src/cli/main.js --headless -c "$(tcplb_cfg js "$threads")" ;;
    haproxy) measure "$peer" haproxy -db -f "$(haproxy_cfg plain 1)" ;;
    haproxy-tuned) measure "$peer" haproxy -db -f "$(haproxy_cfg tuned 1 'option splice-auto
  option tcp-smart-connect
  option tcp-smart-accept')" ;;
    nginx) measure "$peer" nginx -c "$(nginx_stream_cfg plain 1)" -p "$dir" ;;
    nginx-tuned) measure "$peer" nginx -c "$(nginx_stream_cfg tuned 1 reuseport 'proxy_buffer_size 64k;')" -p "$dir" ;;
    *) echo "unknown peer $peer" >&2; exit 2 ;;
  esac
done
