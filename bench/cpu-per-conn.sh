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
cd "$(dirname "$0")/.."
[ -f dist/src/cli/main.js ] || npx tsc -p .
runs=${RUNS:-3} secs=${SECS:-4}
dir=$(mktemp -d /tmp/tcplb-cpu-per-conn-XXXXXX)
be=18921 lb=18922
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
stream_mod=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null || true)

cat >"$dir/backend.conf" <<NGX
daemon off; worker_processes 1; pid $dir/backend.pid; error_log $dir/backend.log;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.2:$be; location / { return 200 "$(printf '%0100d' 0)"; } } }
NGX
nginx -c "$dir/backend.conf" -p "$dir" & pids+=($!)

cat >"$dir/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
listen l
  bind 127.0.0.1:$lb
  server s 127.0.0.2:$be
CFG
cat >"$dir/nginx-stream.conf" <<NGX
${stream_mod:+load_module $stream_mod;}
daemon off; worker_processes 2; pid $dir/stream.pid; error_log $dir/stream.log;
events { worker_connections 8000; }
stream { server { listen 127.0.0.1:$lb; proxy_pass 127.0.0.2:$be; } }
NGX
tcplb_cfg() { # engine workers
  cat >"$dir/tcplb-$1-$2.json5" <<CFG
{ engine: "$1", workers: $2, listeners: [{ listen: "127.0.0.1:$lb", upstream: "b" }],
  upstreams: { b: { servers: ["127.0.0.2:$be"] } }, log: { access: null, level: "warn" } }
CFG
  echo "$dir/tcplb-$1-$2.json5"
}

ticks() { # CPU ticks of a process and its children
  local t=0 p
  for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
close_hdr=(-H 'Connection: close') unit=connection
if [ "${KEEPALIVE:-0}" = 1 ]; then close_hdr=() unit=request; fi

measure() { # name, command...
  local name=$1; shift
  "$@" >"$dir/$name.out" 2>&1 & local pid=$!
  sleep 1.5
  local vals=() rates=()
  for _ in $(seq "$runs"); do
    local c0; c0=$(ticks "$pid")
    local out; out=$(wrk -t1 -c50 -d"${secs}s" "${close_hdr[@]}" "http://127.0.0.1:$lb/" 2>/dev/null)
    local c1; c1=$(ticks "$pid")
    local reqs; reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    vals+=("$(awk -v c=$((c1 - c0)) -v r="$reqs" -v hz="$hz" 'BEGIN { printf "%.0f", c / hz * 1e6 / r }')")
    rates+=("$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")")
  done
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  sleep 0.5
  med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  printf "%-14s %4s us of CPU per $unit (runs: %s); %6s req/s\n" "$name" "$(med "${vals[@]}")" "${vals[*]}" "$(med "${rates[@]}")"
}

sleep 1
command -v haproxy >/dev/null && measure haproxy haproxy -db -f "$dir/haproxy.cfg"
[ -n "$stream_mod" ] && measure nginx-stream nginx -c "$dir/nginx-stream.conf" -p "$dir"
TCPLB_ENGINE= measure tcplb-native node dist/src/cli/main.js --headless -c "$(tcplb_cfg native 1)"
TCPLB_ENGINE= measure tcplb-js node dist/src/cli/main.js --headless -c "$(tcplb_cfg js 1)"
TCPLB_ENGINE= measure tcplb-js2 node dist/src/cli/main.js --headless -c "$(tcplb_cfg js 2)"
measure node-pipe node bench/node-floor.mjs pipe "127.0.0.1:$lb" "127.0.0.2:$be"
measure node-tuned node bench/node-floor.mjs tuned "127.0.0.1:$lb" "127.0.0.2:$be"
