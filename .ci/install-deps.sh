#!/usr/bin/env bash
# Install the Debian packages that tcplb's real-server integration tests and
# its benchmark (npm run bench: wrk, iperf3, nginx stream, haproxy) need,
# sshd for the console's ssh:// attach test (started privately by the test),
# keepalived, BIRD and ExaBGP for the HA tests in network namespaces,
# and the compiler node-gyp builds the native engine with (g++, make, python3).
#
# Idempotent and non-interactive; run as root (CI runs as root).  Packages that
# `dpkg-query -W` already shows installed are skipped, `apt-get update` runs
# only when something is missing.  Distro services (dovecot, postfix, mariadb,
# nginx, haproxy) are never started: a policy-rc.d that answers 101 ("action
# forbidden") is in place for the duration of the install, and the packages'
# boot-time auto-start is disabled afterwards for the ones this script
# installed.  The tests run their own private instances on loopback.
set -euo pipefail

PACKAGES=(
  dovecot-imapd dovecot-pop3d
  postfix
  mariadb-server mariadb-client
  nginx libnginx-mod-stream
  haproxy
  openssl curl tmux ca-certificates procps
  pebble
  wrk iperf3
  g++ make python3
  openssh-server openssh-client
  keepalived bird2 exabgp iproute2
)
# init scripts / systemd units shipped by the packages above
SERVICES=(dovecot postfix mariadb nginx haproxy iperf3 ssh keepalived bird exabgp)

say() { printf 'install-deps: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  say "must run as root (try: sudo $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
export APT_LISTCHANGES_FRONTEND=none
export NEEDRESTART_MODE=a

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  if is_installed "$p"; then :; else missing+=("$p"); fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  say "all ${#PACKAGES[@]} packages already installed, nothing to do"
  exit 0
fi
say "missing: ${missing[*]}"

# --- keep services from starting while we install -----------------------------
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
restore_policy() {
  if [[ -n "$POLICY_BACKUP" && -e "$POLICY_BACKUP" ]]; then
    mv -f "$POLICY_BACKUP" "$POLICY"
  else
    rm -f "$POLICY"
  fi
}
if [[ -e "$POLICY" ]]; then
  POLICY_BACKUP="$(mktemp /usr/sbin/policy-rc.d.tcplb-backup.XXXXXX)"
  cp -p "$POLICY" "$POLICY_BACKUP"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n# written by tcplb .ci/install-deps.sh: no service starts during install\nexit 101\n' >"$POLICY"
chmod 755 "$POLICY"
say "policy-rc.d in place: services will not be started"

# --- preseed postfix ---------------------------------------------------------
if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
  if ! command -v debconf-set-selections >/dev/null 2>&1; then
    say "debconf-set-selections not found" >&2
    exit 1
  fi
  debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string mail.test
EOF
  say "postfix preseeded: main_mailer_type=No configuration"
fi
if printf '%s\n' "${missing[@]}" | grep -qx iperf3; then
  # "start iperf3 as a daemon?" -> no: the benchmark runs its own.
  echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections || true
fi

# --- install -----------------------------------------------------------------
say "apt-get update"
apt-get update -qq
say "apt-get install ${missing[*]}"
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >/tmp/tcplb-install-deps.log 2>&1 || {
    tail -n 40 /tmp/tcplb-install-deps.log >&2
    say "apt-get install failed (full log: /tmp/tcplb-install-deps.log)" >&2
    exit 1
  }
say "installed (log: /tmp/tcplb-install-deps.log)"

# --- no boot-time auto-start for the services we just installed --------------
for svc in "${SERVICES[@]}"; do
  pkg_new=no
  case "$svc" in
    dovecot) pkgs=(dovecot-imapd dovecot-pop3d) ;;
    mariadb) pkgs=(mariadb-server) ;;
    ssh) pkgs=(openssh-server) ;;
    bird) pkgs=(bird2) ;;
    *) pkgs=("$svc") ;;
  esac
  for p in "${pkgs[@]}"; do
    if printf '%s\n' "${missing[@]}" | grep -qx "$p"; then pkg_new=yes; fi
  done
  [[ $pkg_new == yes ]] || continue
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --quiet "$svc" >/dev/null 2>&1 || true
    say "service $svc: systemd unit disabled"
  elif [[ -x /etc/init.d/$svc ]] && command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d "$svc" disable >/dev/null 2>&1 || true
    say "service $svc: init script disabled"
  fi
done

# --- verify ------------------------------------------------------------------
still=()
for p in "${PACKAGES[@]}"; do
  is_installed "$p" || still+=("$p")
done
if [[ ${#still[@]} -ne 0 ]]; then
  say "still missing after install: ${still[*]}" >&2
  exit 1
fi
for b in dovecot postfix mariadbd mariadb-install-db nginx haproxy openssl sshd ssh keepalived bird exabgp ip; do
  command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || { say "binary $b not found" >&2; exit 1; }
done
say "done: ${#missing[@]} package(s) installed, no distro service running"
