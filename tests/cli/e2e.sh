#!/usr/bin/env bash
# tests/cli/e2e.sh — the `unifork` CLI end to end against a real runtimed
# (started here on a temporary data directory): deploy from a directory and
# from a prebuilt .tar.gz, invoke (string, stdin, -v headers), ls, get,
# logs, pool, update, init failure (422), handler crash (502), bad token,
# oversized body (413), rm, no server.  Only the CLI talks to runtimed.
# Guests must run, so:
#
#   tools/kvm-run --timeout 1500 -- tests/cli/e2e.sh
#
# Environment: CLI_E2E_BIN (default build/bin; build/san/bin for the
# sanitizer build), CLI_E2E_PORT (default 18090).  Last line: "N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${CLI_E2E_BIN:-build/bin}
UF=$ROOT/$BIN/unifork
PORT=${CLI_E2E_PORT:-18090}
WORK=$(mktemp -d /tmp/uf-cli-e2e.XXXXXX)
export UNIFORK_LISTEN=127.0.0.1:$PORT UNIFORK_DATA=$WORK/data
unset UNIFORK_TOKEN
RTD=""
passed=0 failed=0

cleanup() {
	if [ -n "$RTD" ]; then
		kill -TERM "$RTD" 2>/dev/null
		wait "$RTD" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# uf ARGS...: run the CLI; sets RC, OUT, ERR.
uf() {
	"$UF" "$@" >"$WORK/out" 2>"$WORK/err"
	RC=$?
	OUT=$(cat "$WORK/out")
	ERR=$(cat "$WORK/err")
}
# ufin INPUT ARGS...: the same with INPUT on stdin.
ufin() {
	local in=$1
	shift
	printf '%s' "$in" | "$UF" "$@" >"$WORK/out" 2>"$WORK/err"
	RC=$?
	OUT=$(cat "$WORK/out")
	ERR=$(cat "$WORK/err")
}
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() {
	echo "FAIL $1: $2"
	echo "     exit $RC; stdout: ${OUT:0:300}"
	echo "     stderr: ${ERR:0:300}"
	failed=$((failed + 1))
}
# expect NAME RC [STDOUT-SUBSTRING [STDERR-SUBSTRING]]
expect() {
	local name=$1 rc=$2 out=${3:-} err=${4:-}
	if [ "$RC" != "$rc" ]; then bad "$name" "exit $RC, want $rc"
	elif [ -n "$out" ] && [[ "$OUT" != *"$out"* ]]; then bad "$name" "stdout lacks '$out'"
	elif [ -n "$err" ] && [[ "$ERR" != *"$err"* ]]; then bad "$name" "stderr lacks '$err'"
	else ok "$name"
	fi
}

[ -x "$UF" ] && [ -x "$BIN/runtimed" ] || { echo "build first: make host"; echo "0 passed, 1 failed"; exit 1; }
"$BIN/runtimed" >"$WORK/runtimed.log" 2>&1 &
RTD=$!
for _ in $(seq 1 300); do
	"$UF" health >/dev/null 2>&1 && break
	kill -0 "$RTD" 2>/dev/null || break
	sleep 0.1
done

uf health
expect health 0 "ready: yes"
uf info
expect info 0 "kvm_mode: "

# A python function from a directory, with an environment variable.
uf --timeout 900 deploy hello functions/hello-python --runtime python --env GREETING=hey
expect deploy-dir 0 "created hello (python runtime"
uf ls
if [ $RC = 0 ] && grep -Eq '^hello +python ' <<<"$OUT"; then ok ls; else bad ls "no hello row"; fi
uf get hello
expect get 0 "name: hello"
uf invoke hello --data unifork
if [ $RC = 0 ] && [ "$OUT" = "hey, unifork!" ]; then ok invoke-string; else bad invoke-string "answer"; fi
ufin "from stdin" invoke hello --data - -v
if [ $RC = 0 ] && [ "$OUT" = "hey, from stdin!" ] && [[ "$ERR" == *"< X-Call-Id: "* ]] &&
   [[ "$ERR" == *"< X-Start-Type: "* ]] && [[ "$ERR" == *"< HTTP/1.1 200"* ]]; then
	ok invoke-stdin-verbose
else
	bad invoke-stdin-verbose "answer or headers"
fi
uf logs hello --tail 10
expect logs 0 "hello-python: call"
uf pool hello --min-warm 1 --max 4
expect pool 0 "pool of hello updated"

# Update: new code, new answer.
mkdir -p "$WORK/v2"
printf 'def handle(event, context):\n    return "v2:" + event.decode()\n' >"$WORK/v2/handler.py"
uf --timeout 900 deploy hello "$WORK/v2" --runtime python
expect update 0 "updated hello"
uf invoke hello --data x
if [ $RC = 0 ] && [ "$OUT" = "v2:x" ]; then ok invoke-updated; else bad invoke-updated "answer"; fi

# A prebuilt package (exec runtime), if the examples are built.
if [ -f build/functions/hello-exec.tar.gz ]; then
	uf --timeout 900 deploy hx build/functions/hello-exec.tar.gz --runtime exec
	expect deploy-prebuilt 0 "created hx (exec runtime"
	uf invoke hx --data cli
	if [ $RC = 0 ] && [ "$OUT" = "hello, cli!" ]; then ok invoke-exec; else bad invoke-exec "answer"; fi
else
	echo "skip deploy-prebuilt: build/functions/hello-exec.tar.gz not built (make functions)"
fi

# Failures the server reports.
mkdir -p "$WORK/badinit" "$WORK/crash"
printf 'raise RuntimeError("boom at import")\n' >"$WORK/badinit/handler.py"
uf --timeout 900 deploy badinit "$WORK/badinit" --runtime python
expect init-failed 1 "" "error: init_failed: "
[[ "$ERR" == *"boom at import"* ]] && ok init-failed-message || bad init-failed-message "no reason"
printf 'def handle(event, context):\n    return 1 // 0\n' >"$WORK/crash/handler.py"
uf --timeout 900 deploy crash "$WORK/crash" --runtime python
expect deploy-crash 0 "created crash"
uf invoke crash
expect unhandled 1 "" "error: unhandled: "
uf --token wrong ls
expect bad-token 1 "" "error: bad or missing token"
# Over the gateway's invoke body limit (6 MiB): answered 413 before the body is read.
head -c $((7 << 20)) /dev/zero >"$WORK/big"
uf invoke crash --data @"$WORK/big"
expect too-large 1 "" "error: payload_too_large: "

uf rm hello
expect rm 0 "removed hello"
uf get hello
expect get-removed 1 "" "error: not_found: "
uf --url 127.0.0.1:1 health
expect no-server 3 "" "cannot reach runtimed at http://127.0.0.1:1 (is it running? make run)"

if [ $failed -gt 0 ]; then
	echo "runtimed log (tail):"
	tail -15 "$WORK/runtimed.log"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
