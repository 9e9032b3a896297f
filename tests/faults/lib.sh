# tests/faults/lib.sh — helpers of tests/faults/run.sh (sourced): runtimed's
# lifetime, HTTP requests with curl, checks, the test runner.  Expects ROOT,
# BIN, PORT, URL, WORK, DATA, LOG, FN set by the caller.

log() { printf '    %s\n' "$*"; }

start_runtimed() { # [extra runtimed flags]
	"$BIN/runtimed" --data "$DATA" --listen "127.0.0.1:$PORT" "$@" >>"$LOG" 2>&1 &
	RTD=$!
	for _ in $(seq 1 600); do
		if curl -s -o /dev/null "$URL/healthz"; then
			TOKEN=$(cat "$DATA/token")
			return 0
		fi
		kill -0 "$RTD" 2>/dev/null || break
		sleep 0.1
	done
	echo "runtimed did not come up; its log:" >&2
	tail -20 "$LOG" >&2
	return 1
}

stop_runtimed() { # -> the exit status of runtimed
	[ -n "$RTD" ] || return 0
	kill -TERM "$RTD" 2>/dev/null
	local rc=0
	wait "$RTD" || rc=$?
	RTD=""
	return $rc
}

cleanup() {
	[ -n "$RTD" ] && { kill -KILL "$RTD" 2>/dev/null; wait "$RTD" 2>/dev/null; }
	if [ "${FAULTS_KEEP:-0}" = 1 ]; then
		echo "(kept $WORK)"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

# req METHOD PATH [curl args...]: sets CODE, BODY (text), HDRS (file).
HDRS=$WORK/headers
req() {
	local m=$1 p=$2
	shift 2
	BODY=$(curl -s -X "$m" -D "$HDRS" -o - -w '\n%{http_code}' --max-time 120 "$@" "$URL$p")
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
auth() { printf 'Authorization: Bearer %s' "$TOKEN"; }
header() { # NAME -> value from the last response
	grep -i "^$1:" "$HDRS" | head -1 | cut -d: -f2- | tr -d ' \r'
}
invoke() { # NAME BODY [curl args]
	local n=$1 b=$2
	shift 2
	req POST "/v1/functions/$n/invoke" --data-binary "$b" "$@"
}

# deploy NAME PACKAGE RUNTIME [JSON fields merged into the spec]
deploy() {
	local name=$1 pkg=$2 rt=$3 extra=${4:-'{}'}
	{
		jq -cn --arg rt "$rt" --argjson x "$extra" '{runtime: $rt} + $x' | sed 's/}$//'
		printf ',"code":"'
		base64 -w0 "$pkg"
		printf '"}'
	} >"$WORK/spec.json"
	req PUT "/v1/functions/$name" -H "$(auth)" -H 'Content-Type: application/json' \
		--data-binary @"$WORK/spec.json" --max-time 600
}

# GET the function until jq expression $2 is true (up to $3 s).
wait_fn() {
	local name=$1 cond=$2 s=${3:-20}
	for _ in $(seq 1 $((s * 5))); do
		req GET "/v1/functions/$name" -H "$(auth)"
		[ "$CODE" = 200 ] && echo "$BODY" | jq -e "$cond" >/dev/null && return 0
		sleep 0.2
	done
	return 1
}

worker_pid() { # FUNCTION -> pid of its serving uf-worker, runtimed's child (or nothing)
	pgrep -P "$RTD" -f "uf-worker serve .*$DATA/functions/$1/" | head -1
}
vmm_pid() { # FUNCTION -> the process that runs its clones: the jailed worker
	# (the only child of the jail's supervisor) or, unjailed, the worker
	local w c
	w=$(worker_pid "$1")
	[ -n "$w" ] || return 0
	c=$(pgrep -P "$w" | head -1)
	echo "${c:-$w}"
}
rss_kib() { # PID -> VmRSS in KiB (0 when gone)
	local v
	v=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null)
	echo "${v:-0}"
}

# rss_watch PID FILE &: the largest VmRSS (KiB) of PID seen while it runs,
# sampled every 0.1 s into FILE (stop it with kill).
rss_watch() {
	local pid=$1 out=$2 max=0 v
	echo 0 >"$out"
	while kill -0 "$pid" 2>/dev/null; do
		v=$(rss_kib "$pid")
		[ "$v" -gt "$max" ] && { max=$v; echo "$max" >"$out"; }
		sleep 0.1
	done
}

# hello_loop N FILE: N sequential hello-c calls, one line per call in FILE:
# "ok" when the answer was 200 and byte-correct.
hello_loop() {
	local n=$1 out=$2 i got want
	: >"$out"
	for i in $(seq 1 "$n"); do
		got=$(curl -s -w ' %{http_code}' --max-time 120 -X POST --data-binary "h$i" \
			"$URL/v1/functions/hello-c/invoke")
		want=$(printf 'hi, h%s!\n 200' "$i")
		if [ "$got" = "$want" ]; then echo ok >>"$out"; else echo "call $i: ${got:0:100}" >>"$out"; fi
	done
}

FAILMSG="" SKIPMSG=""
check() { # CONDITION-STATUS MESSAGE: record the first failure of a test
	if [ "$1" != 0 ] && [ -z "$FAILMSG" ]; then
		FAILMSG=$2
	fi
}
expect_code() { # WANT WHAT
	[ "$CODE" = "$1" ]
	check $? "$2: HTTP $CODE (expected $1): ${BODY:0:300}"
}
expect_body() { # WANT WHAT
	[ "$BODY" = "$1" ]
	check $? "$2: HTTP $CODE body '${BODY:0:200}' (expected '$1')"
}
need() { # FILE...: the test needs these packages
	for f in "$@"; do
		[ -s "$f" ] || { SKIPMSG="$f not built"; return 1; }
	done
}

run() { # NAME FUNCTION
	local name=$1 fn=$2 t0=$SECONDS
	[ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $name "* ]] || return 0
	FAILMSG="" SKIPMSG=""
	"$fn"
	if [ -n "$SKIPMSG" ]; then
		failed=$((failed + 1))
		failures+=("$name")
		echo "FAIL $name: $SKIPMSG"
	elif [ -z "$FAILMSG" ]; then
		passed=$((passed + 1))
		echo "ok   $name ($((SECONDS - t0)) s)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "FAIL $name: $FAILMSG"
		echo "     (runtimed log tail:)"
		tail -8 "$LOG" | sed 's/^/     | /'
	fi
}

finish() {
	if [ -n "$RTD" ]; then
		stop_runtimed
		local rc=$?
		if [ $rc != 0 ]; then
			echo "FAIL final stop: runtimed exited with $rc"
			failed=$((failed + 1))
		fi
	fi
	if grep -qE "AddressSanitizer|runtime error:|LeakSanitizer" "$LOG"; then
		echo "FAIL sanitizers reported errors:"
		grep -E -A5 "AddressSanitizer|runtime error:|LeakSanitizer" "$LOG" | head -30
		failed=$((failed + 1))
	fi
	[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
	echo "$passed passed, $failed failed"
	[ $failed = 0 ]
}
