# Shared by bench/console-overhead.sh and bench/attach-overhead.sh (sourced):
# a private nginx answering 100 bytes on 127.0.0.2:$port_be and a tcplb
# config in $dir relaying 127.0.0.1:$port_lb to it, with the access log and
# an http check every second on (features on, as operators run it).
# `overhead_setup [control]` writes both (with `control`, a control socket
# tcplb.sock next to the config) and starts nginx; its pid is in $ngx.
# shellcheck source=bench/lib/setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
overhead_setup() {
  local control=''
  [ "${1:-}" = control ] && control='control: { socket: "tcplb.sock" },'
  cat >"$dir/config.json5" <<CFG
{ listeners: [{ listen: "127.0.0.1:$port_lb", upstream: "w" }],
  upstreams: { w: { check: { type: "http", interval: "1s" }, servers: ["127.0.0.2:$port_be"] } },
  $control
  log: { access: "$dir/access.log" } }
CFG
  be=$port_be start_http_backend
  ngx=${pids[-1]}
}
