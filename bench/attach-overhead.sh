#!/usr/bin/env bash
# Do attached consoles slow the data plane? One headless tcplb per engine
# (ENGINES, default "native js"; access log and an http check on, as in
# bench/console-overhead.sh) under a connection flood (wrk, 1 thread,
# 50 connections, Connection: close, 100-byte answers from a private nginx),
# measured alternately with no console and with CONSOLES (default 3)
# `tcplb-console attach --socket ...` in tmux terminals (80x24, each watching
# at one frame a second, as attached consoles draw; measured once they have
# settled, SETTLE seconds after attaching, default 5, since a console's own
# start-up is a one-off cost printed apart), RUNS times each (default 3, SECS
# seconds each, default 5): alternating on the same process keeps a busy
# host's drift out of the ratio. Prints per engine the median req/s and the
# median tcplb CPU per request (utime+stime from /proc over the run / the
# requests wrk completed: far less sensitive to a busy host than req/s), and
# the ratios, and the attached consoles' own CPU (their processes compete
# with tcplb, wrk and nginx for the host's cores). KIND=source attaches the
# console's data source alone instead (bench/watch-source.mjs: the same watch
# stream, no rendering): tcplb's share of the cost. The successor of console-overhead.sh for attached consoles (that
# one measures the in-process console).
# Needs nginx, wrk, tmux (bash .ci/install-deps.sh). Loopback only; stops
# everything it started, by PID (tmux: its own private server).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/src/cli/main.js ] || npx tsc -p .
dir=$(mktemp -d /tmp/tcplb-attach-overhead-XXXXXX)
port_be=18913 port_lb=18914 runs=${RUNS:-3} secs=${SECS:-5} consoles=${CONSOLES:-3}
tsock="tcplb-attach-overhead-$$"
tps=$(getconf CLK_TCK)
# shellcheck source=bench/lib/overhead-setup.sh
. bench/lib/overhead-setup.sh
overhead_setup control
lb=
cleanup() {
  kill "$ngx" 2>/dev/null || true
  # Attached consoles are ours (each pane execs one): stop them by PID, then their tmux server.
  for p in $(tmux -L "$tsock" list-panes -a -F '#{pane_pid}' 2>/dev/null || true); do kill "$p" 2>/dev/null || true; done
  tmux -L "$tsock" kill-server 2>/dev/null || true
  [ -n "$lb" ] && kill "$lb" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
sleep 1

console_pids() { tmux -L "$tsock" list-panes -a -F '#{pane_pid}' 2>/dev/null || true; }
# One wrk run: prints "req/s tcplb-cpu-us-per-request consoles-cpu-%-of-one-core".
measure() {
  local c0 c1 k0 k1 out rps reqs cons
  cons=$(console_pids)
  # shellcheck disable=SC2086
  c0=$(cpu_ticks "$lb"); k0=$(cpu_ticks $cons)
  out=$(wrk -t1 -c50 -d"${secs}s" -H 'Connection: close' "http://127.0.0.1:$port_lb/" 2>/dev/null)
  # shellcheck disable=SC2086
  c1=$(cpu_ticks "$lb"); k1=$(cpu_ticks $cons)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v r="$rps" -v n="$reqs" -v d=$((c1 - c0)) -v k=$((k1 - k0)) -v hz="$tps" -v s="$secs" 'BEGIN {printf "%s %.1f %.1f\n", r, d / hz * 1e6 / n, k / hz / s * 100}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

attach_all() {
  for i in $(seq "$consoles"); do
    if [ "${KIND:-console}" = source ]; then cmd="exec node $PWD/bench/watch-source.mjs $dir/tcplb.sock"
    else cmd="exec node $PWD/dist/src/cli/main.js attach --socket $dir/tcplb.sock"; fi
    tmux -L "$tsock" new-session -d -s "c$i" -x 80 -y 24 "$cmd"
  done
  for i in $(seq "$consoles"); do
    for _ in $(seq 50); do tmux -L "$tsock" capture-pane -p -t "c$i" | grep -q "attached to pid $lb" && break; sleep 0.1; done
    tmux -L "$tsock" capture-pane -p -t "c$i" | grep -q "attached to pid $lb" || { echo "console c$i did not attach:" >&2; tmux -L "$tsock" capture-pane -p -t "c$i" >&2; exit 1; }
  done
  sleep 1
}
detach_all() {
  # q detaches (SIGTERM for a bare source); with `exec` the session ends with the console.
  if [ "${KIND:-console}" = source ]; then for p in $(console_pids); do kill "$p"; done
  else for i in $(seq "$consoles"); do tmux -L "$tsock" send-keys -t "c$i" q; done; fi
  for _ in $(seq 50); do tmux -L "$tsock" has-session 2>/dev/null || break; sleep 0.1; done
  sleep 0.5
}

for engine in ${ENGINES:-native js}; do
  TCPLB_ENGINE=$engine node dist/src/cli/main.js --headless -c "$dir/config.json5" 2>/dev/null & lb=$!
  for _ in $(seq 50); do [ -S "$dir/tcplb.sock" ] && break; sleep 0.1; done
  sleep 1.5
  : >"$dir/headless" ; : >"$dir/attached"; : >"$dir/startup"
  for r in $(seq "$runs"); do
    measure >>"$dir/headless"
    attach_all
    # A console's start (loading Ink and React, compiling them) costs ~1 s of
    # CPU once; the question is what consoles that stay attached cost, so the
    # measurement starts after SETTLE seconds (default 5). The start-up cost is
    # printed on its own.
    # shellcheck disable=SC2046
    echo "$(cpu_ticks $(console_pids))" >>"$dir/startup"
    sleep "${SETTLE:-5}"
    measure >>"$dir/attached"
    [ "$r" = 1 ] && tmux -L "$tsock" capture-pane -p -t c1 | head -2 | sed 's/^/    c1: /'
    detach_all
  done
  h_rps=$(cut -d' ' -f1 "$dir/headless" | median) a_rps=$(cut -d' ' -f1 "$dir/attached" | median)
  h_cpu=$(cut -d' ' -f2 "$dir/headless" | median) a_cpu=$(cut -d' ' -f2 "$dir/attached" | median)
  k_cpu=$(cut -d' ' -f3 "$dir/attached" | median)
  echo "$engine: runs headless [$(cut -d' ' -f1 "$dir/headless" | tr '\n' ' ')] attached [$(cut -d' ' -f1 "$dir/attached" | tr '\n' ' ')] req/s"
  echo "$engine (${KIND:-console}): median of $runs x ${secs}s: headless $h_rps req/s, ${h_cpu} us CPU/req; $consoles ${KIND:-console}s attached $a_rps req/s, ${a_cpu} us CPU/req;" \
    "their own CPU ${k_cpu}% of one core ($(nproc) cores), after a start-up of $(median <"$dir/startup" | awk -v c="$consoles" -v hz="$tps" '{printf "%.2f", $1 / hz / c}') s CPU each;" \
    "rate ratio $(awk -v a="$a_rps" -v b="$h_rps" 'BEGIN {printf "%.3f", a/b}'), CPU/req ratio $(awk -v a="$a_cpu" -v b="$h_cpu" 'BEGIN {printf "%.3f", a/b}')"
  kill "$lb"; wait "$lb" 2>/dev/null || true; lb=
  rm -f "$dir/tcplb.sock"
done
