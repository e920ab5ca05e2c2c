# Sourced by the bench shell scripts (cpu-per-conn.sh, cpu-per-gb.sh,
# syscalls-per-conn.sh): one temp dir, the PIDs to stop on exit, a private
# nginx HTTP backend, and the config each peer runs with. The caller sets
# `be` (backend port on 127.0.0.2) and `lb` (proxy port on 127.0.0.1) before
# calling the writers. Loopback only; everything started is stopped, by PID.

# bench_setup NAME: cd to the repository, build if needed, make $dir, arm the
# exit trap for ${pids[@]}, find the nginx stream module ($stream_mod).
bench_setup() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.."
  [ -f dist/src/cli/main.js ] || npx tsc -p .
  dir=$(mktemp -d "/tmp/tcplb-$1-XXXXXX")
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
  stream_mod=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null || true)
}

# start_http_backend: one nginx worker answering 100 bytes on 127.0.0.2:$be.
start_http_backend() {
  cat >"$dir/backend.conf" <<NGX
daemon off; worker_processes 1; pid $dir/backend.pid; error_log $dir/backend.log;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.2:$be; location / { return 200 "$(printf '%0100d' 0)"; } } }
NGX
  nginx -c "$dir/backend.conf" -p "$dir" & pids+=($!)
}

# haproxy_cfg NAME NBTHREAD [EXTRA-DEFAULTS-LINES]: prints the config's path.
haproxy_cfg() {
  cat >"$dir/haproxy-$1.cfg" <<CFG
global
  nbthread $2
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
  ${3:-}
listen l
  bind 127.0.0.1:$lb
  server s 127.0.0.2:$be
CFG
  echo "$dir/haproxy-$1.cfg"
}

# nginx_stream_cfg NAME WORKERS [LISTEN-SUFFIX] [EXTRA-STREAM-LINES]: prints the path.
nginx_stream_cfg() {
  cat >"$dir/nginx-$1.conf" <<NGX
${stream_mod:+load_module $stream_mod;}
daemon off; worker_processes $2; pid $dir/stream-$1.pid; error_log $dir/stream-$1.log;
events { worker_connections 8000; }
stream { ${4:-} server { listen 127.0.0.1:$lb ${3:-}; proxy_pass 127.0.0.2:$be; } }
NGX
  echo "$dir/nginx-$1.conf"
}

# tcplb_cfg ENGINE WORKERS: prints the path.
tcplb_cfg() {
  cat >"$dir/tcplb-$1-$2.json5" <<CFG
{ engine: "$1", workers: $2, listeners: [{ listen: "127.0.0.1:$lb", upstream: "b", idleTimeout: "10m", connectTimeout: "5s" }],
  upstreams: { b: { servers: ["127.0.0.2:$be"] } }, log: { access: null, level: "warn" } }
CFG
  echo "$dir/tcplb-$1-$2.json5"
}

# cpu_ticks PID...: utime+stime (USER_HZ ticks) of the processes and their children, summed.
cpu_ticks() {
  local t=0 q p
  for q in "$@"; do
    for p in "$q" $(cat /proc/"$q"/task/*/children 2>/dev/null); do
      t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
    done
  done
  echo "$t"
}

# strace_targets PID: `-p` for the process and each of its children (strace
# -f follows only processes forked after it attached: nginx's workers exist).
strace_targets() {
  local p
  for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do printf -- '-p %s ' "$p"; done
}

# median V...: the middle value (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
