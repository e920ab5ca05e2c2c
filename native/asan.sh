#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UBSan into native/build-asan/ and
# runs native/test/ against it (the normal build in native/build/ is untouched).
#
#   bash native/asan.sh            # the addon's tests, then the integration suite (TCPLB_ENGINE=native)
#   bash native/asan.sh --quick    # the addon's tests only
#
# node itself is not instrumented, so libasan (g++ 12's) is preloaded into it;
# every child node the tests spawn inherits LD_PRELOAD/ASAN_OPTIONS.
# LeakSanitizer is ON: node 20 reports no leaks of its own at exit here, so
# any leak report comes from the addon and fails the test file (exitcode 23).
# If a future node starts reporting its own leaks, run with LEAKS=0 and
# check leaks separately (see NOTES.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/build-asan"
mkdir -p "$out"

libasan="$(g++ -print-file-name=libasan.so)"
libubsan="$(g++ -print-file-name=libubsan.so)"
[ -f "$libasan" ] || { echo "asan.sh: libasan not found (apt-get install libasan8?)" >&2; exit 1; }

echo "== building $out/tcplb_native.node with -fsanitize=address,undefined"
g++ -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -fPIC -shared -pthread -Wall -Wextra -fno-exceptions -ffp-contract=off \
  -DNAPI_VERSION=8 -DNODE_GYP_MODULE_NAME=tcplb_native -I/usr/include/node \
  "$here"/src/binding.cc "$here"/src/engine.cc "$here"/src/net_util.cc "$here"/src/route.cc "$here"/src/tls.cc \
  -o "$out/tcplb_native.node"

export TCPLB_NATIVE_ADDON="$out/tcplb_native.node"
export LD_PRELOAD="$libasan $libubsan"
# abort_on_error: a finding fails the test that triggered it (and the run).
export ASAN_OPTIONS="detect_leaks=${LEAKS:-1}:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== node --test $here/test/ under ASan/UBSan"
cd "$here/.."
node --test --test-concurrency=1 "$here/test/"
if [ "${1:-}" != "--quick" ]; then
  # The whole integration suite on the ASan build: every relay, reload,
  # console and ctl path of the TypeScript side drives the addon. The suite
  # also starts real servers (dovecot, postfix, mariadb, nginx, openssl);
  # LD_PRELOAD reaches them too and LSan would report *their* leaks at exit,
  # so this part checks memory errors only; the addon's own tests above
  # run with leak checking on.
  [ -d dist/test/integration ] || npx tsc -p .
  echo "== TCPLB_ENGINE=native node --test dist/test/integration under ASan/UBSan"
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" TCPLB_ENGINE=native node --test --test-concurrency=1 dist/test/integration
fi
echo "== ASan/UBSan/LSan: clean (detect_leaks=${LEAKS:-1})"
