#!/usr/bin/env bash
# CPU time a proxy spends per GB relayed (iperf3, STREAMS parallel streams,
# SECS seconds, through the proxy to an iperf3 server on 127.0.0.2), and its
# system calls per MB (strace -c, a separate shorter run): the bulk figures of
# bench/optimisations.md, far less load-sensitive than Gbit/s.
#   bash bench/cpu-per-gb.sh [tcplb-native|haproxy|haproxy-tuned|nginx-tuned]...
# Env: SECS (default 4), STREAMS (default 1), RUNS (default 3). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/src/cli/main.js ] || npx tsc -p .
secs=${SECS:-4} streams=${STREAMS:-1} runs=${RUNS:-3}
dir=$(mktemp -d /tmp/tcplb-cpu-gb-XXXXXX)
be=18941 lb=18942
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
stream_mod=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null || true)
iperf3 -s -B 127.0.0.2 -p "$be" >/dev/null 2>&1 & pids+=($!)
cat >"$dir/tcplb.json5" <<CFG
{ engine: "native", workers: 1, listeners: [{ listen: "127.0.0.1:$lb", upstream: "b" }],
  upstreams: { b: { servers: ["127.0.0.2:$be"] } }, log: { access: null, level: "warn" } }
CFG
hap() { printf 'global\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\n  %s\nlisten l\n  bind 127.0.0.1:%s\n  server s 127.0.0.2:%s\n' "$1" "$lb" "$be" >"$dir/h.cfg"; echo "$dir/h.cfg"; }
ngx() { printf '%s\ndaemon off; worker_processes 1; pid %s/n.pid; error_log %s/n.log;\nevents { worker_connections 1000; }\nstream { proxy_buffer_size 64k; server { listen 127.0.0.1:%s reuseport; proxy_pass 127.0.0.2:%s; } }\n' "${stream_mod:+load_module $stream_mod;}" "$dir" "$dir" "$lb" "$be" >"$dir/n.conf"; echo "$dir/n.conf"; }
ticks() { local t=0 p; for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null || echo 0))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
measure() {
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>&1 & local pid=$!
  sleep 1.5
  local vals=() rates=()
  for _ in $(seq "$runs"); do
    local c0; c0=$(ticks "$pid")
    local j; j=$(iperf3 -c 127.0.0.1 -p "$lb" -t "$secs" -P "$streams" -J 2>/dev/null)
    local c1; c1=$(ticks "$pid")
    local bytes; bytes=$(node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(j.end.sum_received.bytes)' <<<"$j")
    vals+=("$(awk -v c=$((c1 - c0)) -v b="$bytes" -v hz="$hz" 'BEGIN { printf "%.3f", c / hz / (b / 1e9) }')")
    rates+=("$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.2f", b * 8 / s / 1e9 }')")
    sleep 0.3
  done
  strace -c -f -q -o "$dir/$name.st" -p "$pid" & local st=$!
  sleep 0.5
  local j; j=$(iperf3 -c 127.0.0.1 -p "$lb" -t 2 -P "$streams" -J 2>/dev/null)
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  local mb; mb=$(node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(j.end.sum_received.bytes/1048576)' <<<"$j")
  local sc; sc=$(awk '/total/ {print $4}' "$dir/$name.st")
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  printf '%-14s %s CPU s per GB (runs: %s), %s Gbit/s; %s syscalls per MB under strace\n' "$name" "$(med "${vals[@]}")" "${vals[*]}" "$(med "${rates[@]}")" \
    "$(awk -v s="$sc" -v m="$mb" 'BEGIN { printf "%.1f", s / m }')"
  sleep 0.5
}
sleep 1
for peer in "${@:-tcplb-native}"; do
  case $peer in
    tcplb-native) TCPLB_ENGINE= measure "$peer" node dist/src/cli/main.js --headless -c "$dir/tcplb.json5" ;;
    haproxy) measure "$peer" haproxy -db -f "$(hap '')" ;;
    haproxy-tuned) measure "$peer" haproxy -db -f "$(hap 'option splice-auto')" ;;
    nginx-tuned) measure "$peer" nginx -c "$(ngx)" -p "$dir" ;;
    *) echo "unknown peer $peer" >&2; exit 2 ;;
  esac
done
