#!/usr/bin/env bash
# Sockmap experiment bench (bench/sockmap/README.md). Compares, on loopback:
#   direct   no proxy (the ceiling)
#   nginx    nginx stream, 2 workers
#   haproxy  HAProxy mode tcp, nbthread 2
#   copy     relay.c --mode copy    (1 thread, read/write through 64 KiB)
#   sockmap  relay.c --mode sockmap (1 thread, BPF sockhash + sk_skb verdict redirect)
#   smbig    the same with --sndbuf 32 MiB
# Workloads: wrk -t2 -c50 keep-alive (100-byte answers), the same with
# `Connection: close`, iperf3 -P1 and -P4. ROUNDS alternating rounds of SECS each;
# prints medians of the rate and of CPU per request / per GB:
#   proc = utime+stime of the proxy's own processes (/proc/PID/stat),
#   wq, cs = workqueue items run / context switches machine-wide (perf stat -a), since
#          sockmap's egress redirect runs in kworkers that proc cannot see,
#   sys  = whole-machine busy time (/proc/stat; includes wrk, backend and other users).
# results.tsv also keeps kthr_us (kworker+ksoftirqd CPU), unreliable: kworkers exit.
#   bash bench/sockmap/run.sh            (env: ROUNDS=3 SECS=4 ONLY="ka close bulk1 bulk4")
# Addresses 127.0.0.2-6, ports 19000-19014. Stops what it started, by PID.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${ROUNDS:-3} secs=${SECS:-4} only=${ONLY:-"ka close bulk1 bulk4"}
targets=${TARGETS:-"direct nginx haproxy copy sockmap smbig"}
dir=$(mktemp -d /tmp/tcplb-sockmap-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$dir"; }
trap cleanup EXIT
gcc -O2 -Wall -o "$dir/relay" relay.c
stream_mod=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null || true)
mkdir -p "$dir/html" "$dir/tmp"; chmod 755 "$dir" "$dir/html"  # nginx workers run as an unprivileged user
printf '%0100d' 0 >"$dir/html/100b"

cat >"$dir/backend.conf" <<NGX
daemon off; master_process on; worker_processes auto; pid $dir/backend.pid; error_log $dir/backend.log warn;
events { worker_connections 10000; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_timeout 75s; keepalive_requests 1000000;
  default_type application/octet-stream; client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fcgi; uwsgi_temp_path $dir/tmp/uwsgi; scgi_temp_path $dir/tmp/scgi;
  server { listen 127.0.0.2:19000; root $dir/html; location / { } } }
NGX
cat >"$dir/stream.conf" <<NGX
${stream_mod:+load_module $stream_mod;}
daemon off; master_process on; worker_processes 2; pid $dir/stream.pid; error_log $dir/stream.log warn;
events { worker_connections 10000; }
stream { proxy_connect_timeout 5s; proxy_timeout 10m;
  server { listen 127.0.0.4:19002; proxy_pass 127.0.0.2:19000; }
  server { listen 127.0.0.4:19012; proxy_pass 127.0.0.2:19010; } }
NGX
cat >"$dir/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
listen http
  bind 127.0.0.6:19004
  server s 127.0.0.2:19000
listen bulk
  bind 127.0.0.6:19014
  server s 127.0.0.2:19010
CFG

nginx -c "$dir/backend.conf" -p "$dir" & pid_backend=$!; pids+=($!)
iperf3 -s -B 127.0.0.2 -p 19010 >/dev/null 2>&1 & pid_iperf=$!; pids+=($!)
nginx -c "$dir/stream.conf" -p "$dir" & pid_nginx=$!; pids+=($pid_nginx)
haproxy -f "$dir/haproxy.cfg" & pid_haproxy=$!; pids+=($pid_haproxy)
"$dir/relay" --listen 127.0.0.3:19001 --backend 127.0.0.2:19000 --mode copy 2>"$dir/copy-http.log" & pid_copy_http=$!; pids+=($!)
"$dir/relay" --listen 127.0.0.3:19011 --backend 127.0.0.2:19010 --mode copy 2>"$dir/copy-bulk.log" & pid_copy_bulk=$!; pids+=($!)
"$dir/relay" --listen 127.0.0.5:19003 --backend 127.0.0.2:19000 --mode sockmap 2>"$dir/sm-http.log" & pid_sm_http=$!; pids+=($!)
"$dir/relay" --listen 127.0.0.5:19013 --backend 127.0.0.2:19010 --mode sockmap 2>"$dir/sm-bulk.log" & pid_sm_bulk=$!; pids+=($!)
# smbig: sockmap with 32 MiB send buffers (SO_SNDBUFFORCE): the egress worker retries a full
# send buffer only one jiffy later, which caps a single stream (README)
"$dir/relay" --listen 127.0.0.7:19005 --backend 127.0.0.2:19000 --mode sockmap --sndbuf 33554432 2>"$dir/smbig-http.log" & pid_smbig_http=$!; pids+=($!)
"$dir/relay" --listen 127.0.0.7:19015 --backend 127.0.0.2:19010 --mode sockmap --sndbuf 33554432 2>"$dir/smbig-bulk.log" & pid_smbig_bulk=$!; pids+=($!)
sleep 1.5

addr() { # target kind(http|bulk) -> host:port
  case $1/$2 in
    direct/http) echo 127.0.0.2:19000 ;; direct/bulk) echo 127.0.0.2:19010 ;;
    nginx/http) echo 127.0.0.4:19002 ;; nginx/bulk) echo 127.0.0.4:19012 ;;
    haproxy/http) echo 127.0.0.6:19004 ;; haproxy/bulk) echo 127.0.0.6:19014 ;;
    copy/http) echo 127.0.0.3:19001 ;; copy/bulk) echo 127.0.0.3:19011 ;;
    sockmap/http) echo 127.0.0.5:19003 ;; sockmap/bulk) echo 127.0.0.5:19013 ;;
    smbig/http) echo 127.0.0.7:19005 ;; smbig/bulk) echo 127.0.0.7:19015 ;;
  esac
}
procs() { # target kind -> pids whose CPU is the proxy's
  case $1/$2 in
    direct/*) ;;
    nginx/*) echo "$pid_nginx $(pgrep -P "$pid_nginx" | tr "\n" " " || true)" ;;
    haproxy/*) echo "$pid_haproxy $(pgrep -P "$pid_haproxy" | tr '\n' ' ' || true)" ;;
    copy/http) echo $pid_copy_http ;; copy/bulk) echo $pid_copy_bulk ;;
    sockmap/http) echo $pid_sm_http ;; sockmap/bulk) echo $pid_sm_bulk ;;
    smbig/http) echo $pid_smbig_http ;; smbig/bulk) echo $pid_smbig_bulk ;;
  esac
}
pcpu() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $s; }
kcpu() { { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '$2 ~ /^\((kworker|ksoftirqd)/ {s += $14 + $15} END {print s + 0}'; }
scpu() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)
backend_pids="$pid_backend $(pgrep -P "$pid_backend" | tr '\n' ' ' || true) $pid_iperf"
# perf stat -a --per-thread output -> task-clock us of: the proxy's threads, kworker/ksoftirqd
# threads, everything of this bench (proxy + kthreads + backend + wrk/iperf3); workqueue items; ctx switches
perf_split() { python3 - "$@" <<'PY'
import sys
proxy = set(sys.argv[2].split()); backend = set(sys.argv[3].split())
xp = xk = xo = wq = cs = 0.0
for line in open(sys.argv[1]):
    f = line.split(',')
    if len(f) < 4 or '-' not in f[0]: continue
    comm, tid = f[0].rsplit('-', 1)
    try: v = float(f[1])
    except ValueError: continue
    kthr = comm.startswith(('kworker', 'ksoftirqd'))
    if f[3] == 'task-clock':
        us = v * 1000
        if tid in proxy: xp += us
        if kthr: xk += us
        if tid in proxy or kthr or tid in backend or comm in ('wrk', 'iperf3'): xo += us
    elif f[3] == 'context-switches': cs += v
    elif f[3].startswith('workqueue'): wq += v
print(int(xp), int(xk), int(xo), int(wq), int(cs))
PY
}
have_perf=0; if perf stat -a -e workqueue:workqueue_execute_start -o /dev/null true 2>/dev/null; then have_perf=1; fi

results="$dir/results.tsv"
run_one() { # workload target round
  local w=$1 t=$2 r=$3 kind=http a out units val
  case $w in bulk*) kind=bulk ;; esac
  a=$(addr "$t" "$kind")
  local pl; pl=$(procs "$t" "$kind")
  local p0 k0 s0 p1 k1 s1
  p0=$(pcpu $pl); k0=$(kcpu); s0=$(scpu)
  local perfpid=
  if [ "$have_perf" = 1 ]; then
    perf stat -a --per-thread -x, -e task-clock,context-switches,workqueue:workqueue_execute_start -o "$dir/perf.txt" & perfpid=$!
  fi
  case $w in
    ka) out=$(timeout $((secs + 10)) wrk -t2 -c50 -d"${secs}s" "http://$a/100b" 2>&1) ;;
    close) out=$(timeout $((secs + 10)) wrk -t2 -c50 -d"${secs}s" -H 'Connection: close' "http://$a/100b" 2>&1) ;;
    bulk1) out=$(timeout $((secs + 10)) iperf3 -c "${a%:*}" -p "${a#*:}" -t "$secs" -P1 -J 2>&1) ;;
    bulk4) out=$(timeout $((secs + 10)) iperf3 -c "${a%:*}" -p "${a#*:}" -t "$secs" -P4 -J 2>&1) ;;
  esac
  p1=$(pcpu $pl); k1=$(kcpu); s1=$(scpu)
  local wq=0 cs=0 xp=0 xk=0 xo=0
  if [ -n "$perfpid" ]; then
    kill -INT "$perfpid" 2>/dev/null || true; wait "$perfpid" 2>/dev/null || true
    local tids="" p
    for p in $pl; do tids+=" $(ls "/proc/$p/task" 2>/dev/null | tr '\n' ' ')"; done
    read -r xp xk xo wq cs < <(perf_split "$dir/perf.txt" "$tids" "$backend_pids")
  fi
  if [ "$kind" = http ]; then
    units=$(awk '/requests in/ {print $1}' <<<"$out")
    val=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    local errs; errs=$(awk '/Socket errors|Non-2xx/ {printf "%s ", $0}' <<<"$out")
    if [ -n "$errs" ]; then echo "  $w $t: $errs" >&2; fi
  else
    read -r units val < <(python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum_received"]; print(d["bytes"], d["bits_per_second"]/1e9)' <<<"$out" 2>/dev/null || echo "0 0")
  fi
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$t" "$r" "${val:-0}" "${units:-0}" \
    $(((p1 - p0) * 1000000 / hz)) $(((k1 - k0) * 1000000 / hz)) $(((s1 - s0) * 1000000 / hz)) "$load" "${wq:-0}" "${cs:-0}" "$xp" "$xk" "$xo" | tee -a "$results"
  sleep 0.5
}

echo "uptime at start: $(uptime)"
printf 'workload\ttarget\tround\trate\tunits\tproc_us\tkthr_us\tsys_us\tload1\twq_execs\tctx_switches\tperf_proxy_us\tperf_kthr_us\tperf_bench_us\n'
for r in $(seq 1 "$rounds"); do
  for w in $only; do
    # alternate the order each round so drift in background load spreads evenly
    list=$targets; if [ $((r % 2)) = 0 ]; then list=$(tr ' ' '\n' <<<"$targets" | tac | tr '\n' ' '); fi
    for t in $list; do run_one "$w" "$t" "$r"; done
  done
done
echo "uptime at end: $(uptime)"
kill -INT $pid_copy_http $pid_copy_bulk $pid_sm_http $pid_sm_bulk $pid_smbig_http $pid_smbig_bulk 2>/dev/null || true; sleep 0.5
python3 - "$results" <<'PY'
# proc: the proxy's own processes. wq/cs: workqueue items run and context switches,
# machine-wide (perf stat -a), per request or per MB: sockmap's egress runs in kworkers,
# which proc cannot see (and kworkers that exit take their CPU time with them).
# sys: whole-machine busy time per unit; meaningless when other users saturate the CPUs.
import sys, statistics as st, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    w, t, r, rate, units, pu, ku, su, load, wq, cs, xp, xk, xo = line.rstrip('\n').split('\t')
    rows[(w, t)].append((float(rate), float(units), float(xp), float(xp) + float(xk), float(load), float(wq), float(cs), float(xo)))
order = ['direct', 'nginx', 'haproxy', 'copy', 'sockmap', 'smbig']
for w in ['ka', 'close', 'bulk1', 'bulk4']:
    ts = [t for t in order if (w, t) in rows]
    if not ts: continue
    bulk = w.startswith('bulk')
    unit = 'Gbit/s' if bulk else 'req/s'
    per = 'per MB' if bulk else 'per req'
    print(f'\n{w}: median {unit} | {per}: CPU us of proxy, proxy+kworkers, whole bench; workqueue items, ctx switches | load1')
    best_peer = max((st.median([x[0] for x in rows[(w, t)]]) for t in ts if t in ('nginx', 'haproxy')), default=0)
    for t in ts:
        xs = rows[(w, t)]
        rate = st.median([x[0] for x in xs])
        def cost(i):
            vals = [x[i] / (x[1] / 1e6 if bulk else x[1]) for x in xs if x[1]]
            return st.median(vals) if vals else 0
        loads = [x[4] for x in xs]
        ratio = f'{rate / best_peer:.2f}x best peer' if best_peer and t != 'direct' else ''
        print(f'  {t:8s} {rate:9.2f} | {cost(2):7.2f} {cost(3):7.2f} {cost(7):7.2f}; {cost(5):5.2f} {cost(6):6.2f} | '
              f'{min(loads):.2f}-{max(loads):.2f}  {ratio}')
PY
for f in "$dir"/copy-*.log "$dir"/sm-*.log "$dir"/smbig-*.log; do echo "$(basename "$f"): $(tail -1 "$f")"; done
