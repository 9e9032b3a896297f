#!/usr/bin/env bash
# tests/soak/run.sh — the soak and fault-injection test (tests/soak/soak.py
# says what it does and checks).  Guests must run: use it through
#
#   tools/kvm-run --timeout 900 -- tests/soak/run.sh          (`make test`: 150 s of load)
#   UNIFORK_SOAK_SECONDS=600 tools/kvm-run --timeout 2400 -- tests/soak/run.sh   (`make soak`)
#
# Packages: the examples from build/functions/ (make functions; a missing
# one is skipped and said so) and the soak's fault function tests/soak/fn,
# compiled here.  Environment: UNIFORK_SOAK_SECONDS (load, default 150),
# UNIFORK_SOAK_SEED (replay), SOAK_BIN (default build/bin; build/san/bin for
# the sanitizer build), SOAK_PORT (18090), SOAK_KEEP=1 keeps the work dir
# (SOAK_WORK: where; default /tmp), SOAK_LOG=FILE puts runtimed's log there.
# The last line is "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# SOAK_WORK: a parent directory for the work dir (e.g. under /work to watch
# runtimed's log from outside the sandbox, whose /tmp is private).
WORK=$(mktemp -d "${SOAK_WORK:-/tmp}/uf-soak.XXXXXX")
cleanup() {
	if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "(kept $WORK)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/fn"
if ! cc -O2 -std=gnu11 -Wall -Wextra -Werror -Ifunctions/sdk -shared -fPIC \
	-o "$WORK/fn/handler.so" tests/soak/fn/handler.c ||
	! tar -C "$WORK/fn" -czf "$WORK/soak-fault.tar.gz" handler.so; then
	echo "soak: building the fault function failed"
	echo "0 passed, 1 failed"
	exit 1
fi
python3 tests/soak/soak.py --work "$WORK" --fault-pkg "$WORK/soak-fault.tar.gz" "$@"
