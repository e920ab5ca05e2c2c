#!/usr/bin/env bash
# What `npm run bench` needs (nginx + stream module, HAProxy, wrk, iperf3) is
# installed by the same script as the test servers: one list, one way to keep
# distro services from starting. Run as root.
exec bash "$(dirname "$0")/../.ci/install-deps.sh" "$@"
