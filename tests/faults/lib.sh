# tests/faults/lib.sh — helpers of tests/faults/run.sh (sourced): the shared
# runtimed helpers (tests/lib/runtimed.sh) plus worker and RSS probes and
# the test runner.  Expects ROOT, BIN, PORT, URL, WORK, DATA, LOG, FN set
# by the caller.

KEEP_WORK=${FAULTS_KEEP:-0}
. "$ROOT/tests/lib/runtimed.sh"

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
