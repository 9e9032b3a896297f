#!/usr/bin/env bash
# tests/jail/run.sh — jailed workers seen from outside (SECURITY.md): a
# runtimed with --jail on deploys hello-c and hello-python, invokes them
# (byte-correct answers), then inspects the live jailed serve worker through
# /proc: no capabilities, no_new_privs, seccomp filter mode, namespaces other
# than runtimed's, a root holding only the jail's entries; runtimed's own
# seccomp field; killing the supervisor takes the jailed child with it.
# Guests must run: use it through the KVM probe's choice:
#
#   tools/kvm-run --timeout 480 -- tests/jail/run.sh
#
# Environment: JAIL_BIN (default build/bin), JAIL_PORT (default 18090),
# JAIL_LOG (runtimed's log file; default in the temporary directory),
# UNIFORK_SECCOMP=log (refused syscalls are logged instead of killing).
# The last line is "N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${JAIL_BIN:-build/bin}
PORT=${JAIL_PORT:-18090}
URL=http://127.0.0.1:$PORT
FN=build/functions
WORK=$(mktemp -d /tmp/uf-jail.XXXXXX)
DATA=$WORK/data
LOG=${JAIL_LOG:-$WORK/runtimed.log}
RTD=""
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() {
	failed=$((failed + 1))
	echo "FAIL $1"
}
check() { # STATUS NAME [DETAIL]
	if [ "$1" = 0 ]; then ok "$2"; else bad "$2${3:+: $3}"; fi
}

cleanup() {
	if [ -n "$RTD" ]; then
		kill -TERM "$RTD" 2>/dev/null
		wait "$RTD" 2>/dev/null
	fi
	if [ "$failed" != 0 ] || grep -q "seccomp" "$LOG" 2>/dev/null; then
		echo "    (runtimed log, seccomp and jail lines and the tail:)"
		grep -E "seccomp|jail" "$LOG" | sort | uniq -c | head -20 | sed 's/^/    | /'
		tail -15 "$LOG" | sed 's/^/    | /'
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

for f in "$BIN/runtimed" "$BIN/uf-worker" "$FN/hello-c.tar.gz" "$FN/hello-python.tar.gz"; do
	if [ ! -s "$f" ]; then
		echo "jail: $f not built (make all functions)"
		echo "0 passed, 1 failed"
		exit 1
	fi
done

"$BIN/runtimed" --jail on --data "$DATA" --listen "127.0.0.1:$PORT" >>"$LOG" 2>&1 &
RTD=$!
up=1
for _ in $(seq 1 300); do
	curl -s -o /dev/null "$URL/healthz" && { up=0; break; }
	kill -0 "$RTD" 2>/dev/null || break
	sleep 0.1
done
check $up "runtimed --jail on comes up"
[ $up = 0 ] || { echo "$passed passed, $failed failed"; exit 1; }
TOKEN=$(cat "$DATA/token")

deploy() { # NAME PACKAGE RUNTIME GREETING -> HTTP code
	{
		printf '{"runtime":"%s","env":{"GREETING":"%s"},"code":"' "$3" "$4"
		base64 -w0 "$2"
		printf '"}'
	} >"$WORK/spec.json"
	curl -s -o "$WORK/deploy.out" -w '%{http_code}' --max-time 300 -X PUT \
		-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		--data-binary @"$WORK/spec.json" "$URL/v1/functions/$1"
}
invoke() { # NAME BODY -> the response body, byte for byte, into $WORK/out
	curl -s -o "$WORK/out" -w '%{http_code}' --max-time 60 -X POST --data-binary "$2" \
		"$URL/v1/functions/$1/invoke"
}

for fn in "hello-c native hi" "hello-python python hej"; do
	set -- $fn
	code=$(deploy "$1" "$FN/$1.tar.gz" "$2" "$3")
	check $([ "$code" = 201 ]; echo $?) "deploy $1 (jailed build)" "HTTP $code: $(head -c 300 "$WORK/deploy.out")"
	code=$(invoke "$1" "jail")
	printf '%s, jail!\n' "$3" >"$WORK/want"
	cmp -s "$WORK/out" "$WORK/want"
	check $? "invoke $1: HTTP $code, byte-correct" "HTTP $code: $(head -c 200 "$WORK/out")"
done

# The serve worker of hello-c: the supervisor (runtimed's child) and the
# jailed child (the supervisor's child, PID 1 inside).
sup=$(pgrep -P "$RTD" -f "uf-worker serve .*hello-c" | head -1)
child=${sup:+$(pgrep -P "$sup" | head -1)}
if [ -z "$sup" ] || [ -z "$child" ]; then
	bad "live jailed worker found (supervisor '${sup}', child '${child}')"
	echo "$passed passed, $failed failed"
	exit 1
fi
ok "live jailed worker found (supervisor $sup, child $child)"

field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
check $([ "$(field "$child" CapEff)" = 0000000000000000 ] &&
	[ "$(field "$child" CapPrm)" = 0000000000000000 ] &&
	[ "$(field "$child" CapBnd)" = 0000000000000000 ]; echo $?) \
	"worker holds no capabilities" "$(grep ^Cap "/proc/$child/status" | tr '\n' ' ')"
check $([ "$(field "$child" NoNewPrivs)" = 1 ]; echo $?) "worker NoNewPrivs 1"
check $([ "$(field "$child" Seccomp)" = 2 ]; echo $?) "worker Seccomp 2" "$(field "$child" Seccomp)"
check $([ "$(field "$RTD" Seccomp)" = 2 ]; echo $?) "runtimed Seccomp 2" "$(field "$RTD" Seccomp)"
check $([ "$(awk '$1 == "NSpid:" {print $NF}' "/proc/$child/status")" = 1 ]; echo $?) \
	"worker is PID 1 of its PID namespace"

same=""
for ns in mnt pid net ipc uts; do
	a=$(readlink "/proc/$RTD/ns/$ns") b=$(readlink "/proc/$child/ns/$ns")
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ] || same="$same $ns($a $b)"
done
check $([ -z "$same" ]; echo $?) "worker namespaces mnt pid net ipc uts differ from runtimed's" "$same"

# Its root: the tmpfs with only the bind mounts' top directories.
top=$(echo "$DATA" | cut -d/ -f2)
entries=$(ls -A "/proc/$child/root" | sort | tr '\n' ' ')
want=$(printf '%s\n' dev proc "$top" | sort -u | tr '\n' ' ')
check $([ "$entries" = "$want" ]; echo $?) "worker root holds only: $want" "it holds: $entries"
check $([ "$(ls -A "/proc/$child/root/dev")" = kvm ]; echo $?) "worker /dev holds only kvm" \
	"$(ls -A "/proc/$child/root/dev" | tr '\n' ' ')"
[ ! -e "/proc/$child/root/etc" ] && [ ! -e "/proc/$child/root$ROOT" ]
check $? "host files are not in the worker's root"

# The supervisor's death takes the jailed child (PR_SET_PDEATHSIG).
kill -KILL "$sup"
gone=1
for _ in $(seq 1 100); do
	kill -0 "$child" 2>/dev/null || { gone=0; break; }
	sleep 0.1
done
check $gone "killing the supervisor kills the jailed worker"
# runtimed notices and a later call is served by a new (jailed) worker.
code=""
for _ in $(seq 1 30); do
	code=$(invoke hello-c "again")
	[ "$code" = 200 ] && break
	sleep 1
done
printf 'hi, again!\n' >"$WORK/want"
cmp -s "$WORK/out" "$WORK/want"
check $? "hello-c answers again after its worker died" "HTTP $code: $(head -c 200 "$WORK/out")"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
