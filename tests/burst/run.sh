#!/usr/bin/env bash
# tests/burst/run.sh — the 2000-call burst against runtimed (see
# tests/burst/burst_test.py).  Guests must run: use it through the probe's
# choice, as tests/run does:
#
#   tools/kvm-run --timeout 420 -- tests/burst/run.sh [-n N]
#
# BURST_BIN=build/san/bin for the sanitizer build.  Last line:
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
exec python3 tests/burst/burst_test.py "$@"
