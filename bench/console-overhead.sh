#!/usr/bin/env bash
# Does the console slow the data plane? The same tcplb config, once headless
# and once with the Ink console in a real terminal (tmux, 80x24), under a
# connection flood (wrk, 50 connections, Connection: close, 100-byte answers
# from a private nginx). Prints the median req/s of 3 runs each and the ratio.
# Needs nginx, wrk, tmux (bash .ci/install-deps.sh). Loopback only; stops
# everything it started, by PID (tmux: its own private server).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/src/cli/main.js ] || npx tsc -p .
dir=$(mktemp -d /tmp/tcplb-console-overhead-XXXXXX)
port_be=18911 port_lb=18912 runs=${RUNS:-3} secs=${SECS:-5}
# shellcheck source=bench/lib/overhead-setup.sh
. bench/lib/overhead-setup.sh
overhead_setup
tsock="tcplb-overhead-$$"
cleanup() {
  kill "$ngx" 2>/dev/null || true
  # The console keeps serving headless when its terminal goes away (by design),
  # so the pane's tcplb is stopped by its PID before the tmux server goes.
  [ -n "${pane:-}" ] && kill "$pane" 2>/dev/null || true
  tmux -L "$tsock" kill-server 2>/dev/null || true; [ -n "${lb:-}" ] && kill "$lb" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
sleep 1
median() {
  for _ in $(seq "$runs"); do
    wrk -t1 -c50 -d"${secs}s" -H 'Connection: close' "http://127.0.0.1:$port_lb/" 2>/dev/null | awk '/Requests\/sec/ {print $2}'
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
node dist/src/cli/main.js --headless -c "$dir/config.json5" 2>/dev/null & lb=$!
sleep 1.5; headless=$(median); kill "$lb"; wait "$lb" 2>/dev/null || true; lb=
tmux -L "$tsock" new-session -d -s c -x 80 -y 24 "exec node $PWD/dist/src/cli/main.js -c $dir/config.json5"
pane=$(tmux -L "$tsock" display-message -p -t c '#{pane_pid}')
sleep 2.5; console=$(median)
tmux -L "$tsock" capture-pane -p -t c | head -3
echo "connection rate, median of $runs x ${secs}s: headless $headless req/s, with console $console req/s, ratio $(awk -v a="$console" -v b="$headless" 'BEGIN {printf "%.2f", a/b}')"
