#!/usr/bin/env bash
# tests/e2e/run.sh — end-to-end tests of runtimed over HTTP, with curl,
# against a runtimed this script starts on a temporary data directory.
# Guests must be able to run: use it through the KVM probe's choice:
#
#   tools/kvm-run --timeout 1500 -- tests/e2e/run.sh [TEST...]
#
# Packages: the examples from build/functions/ (make functions) and this
# suite's own native function (tests/e2e/fn, packed into build/e2e/ by make,
# or compiled here when missing).  A test whose package or runtime is not
# built yet is reported as "skip" with the reason (listed before the summary).
# The last line is "N passed, N failed".
#
# Environment: E2E_BIN (default build/bin; build/san/bin for the sanitizer
# build), E2E_PORT (default 18080), E2E_KEEP=1 keeps the data directory.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN=${E2E_BIN:-build/bin}
PORT=${E2E_PORT:-18080}
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d /tmp/uf-e2e.XXXXXX)
DATA=$WORK/data
LOG=$WORK/runtimed.log
RTD=""
TOKEN=""
passed=0 failed=0
skipped=() failures=()

# ---------------------------------------------------------------- helpers --

KEEP_WORK=${E2E_KEEP:-0}
. "$ROOT/tests/lib/runtimed.sh"

run() { # NAME FUNCTION
	local name=$1 fn=$2 t0=$SECONDS
	[ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $name "* ]] || return 0
	FAILMSG="" SKIPMSG=""
	"$fn"
	if [ -n "$SKIPMSG" ]; then
		skipped+=("$name ($SKIPMSG)")
		echo "skip $name: $SKIPMSG"
	elif [ -z "$FAILMSG" ]; then
		passed=$((passed + 1))
		echo "ok   $name ($((SECONDS - t0)) s)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "FAIL $name: $FAILMSG"
		echo "     (runtimed log tail:)"
		tail -5 "$LOG" | sed 's/^/     | /'
	fi
}

# --------------------------------------------------------------- packages --

FN=build/functions
E2E_PKG=build/e2e/e2e-native.tar.gz
if [ ! -s "$E2E_PKG" ]; then
	mkdir -p "$WORK/e2efn"
	if cc -O2 -shared -fPIC -Ifunctions/sdk -o "$WORK/e2efn/handler.so" tests/e2e/fn/handler.c &&
		tar -C "$WORK/e2efn" -czf "$WORK/e2e-native.tar.gz" handler.so; then
		E2E_PKG=$WORK/e2e-native.tar.gz
	fi
fi
mkdir -p "$WORK/junk" && echo "not a function" >"$WORK/junk/README" &&
	tar -C "$WORK/junk" -czf "$WORK/junk.tar.gz" README

# ------------------------------------------------------------------ tests --

t_unauthorized() {
	req PUT /v1/functions/nope -H 'Content-Type: application/json' --data '{"runtime":"native","code":"AA=="}'
	expect_code 401 "deploy without a token"
	req GET /v1/functions
	expect_code 401 "list without a token"
	req GET /v1/functions -H "Authorization: Bearer wrong-$TOKEN"
	expect_code 401 "list with a wrong token"
	req GET /v1/functions -H "$(auth)"
	expect_code 200 "list with the token"
}

t_deploy_native() {
	need "$FN/hello-c.tar.gz" || return
	deploy hello-c "$FN/hello-c.tar.gz" native '{"env":{"GREETING":"hi"}}'
	expect_code 201 "deploy hello-c"
	invoke hello-c "e2e"
	expect_code 200 "invoke hello-c"
	expect_body $'hi, e2e!\n' "invoke hello-c"
	[ "$(header X-Start-Type)" = clone ] && [ -n "$(header X-Call-Id)" ] &&
		[ -n "$(header X-Restore-Us)" ] && [ -n "$(header X-Duration-Us)" ]
	check $? "invoke headers: $(tr -d '\r' <"$HDRS" | grep -i '^x-' | tr '\n' ' ')"
	req POST /function/hello-c --data-binary "alias"
	expect_body $'hi, alias!\n' "invoke through /function/NAME"
}

t_deploy_python() {
	need "$FN/hello-python.tar.gz" build/guest/initramfs-python.cpio || return
	deploy hello-python "$FN/hello-python.tar.gz" python '{"env":{"GREETING":"hej"}}'
	expect_code 201 "deploy hello-python"
	invoke hello-python "py"
	expect_code 200 "invoke hello-python"
	expect_body $'hej, py!\n' "invoke hello-python"
}

t_deploy_exec() {
	need "$FN/hello-exec.tar.gz" || return
	deploy hello-exec "$FN/hello-exec.tar.gz" exec
	expect_code 201 "deploy hello-exec"
	invoke hello-exec "ex"
	expect_code 200 "invoke hello-exec"
	expect_body $'hello, ex!\n' "invoke hello-exec"
}

t_e2e_function() {
	need "$E2E_PKG" || return
	deploy e2e "$E2E_PKG" native '{"env":{"E2E_VERSION":"1"},"timeout_ms":60000}'
	expect_code 201 "deploy e2e"
	invoke e2e "version"
	expect_body "1" "version"
	# One clone a call: state never leaks into the next call.
	invoke e2e "state"
	expect_body "1" "first call's state"
	invoke e2e "state"
	expect_body "1" "second call's state (a fresh clone)"
}

t_update() {
	need "$E2E_PKG" || return
	deploy e2e "$E2E_PKG" native '{"env":{"E2E_VERSION":"2"},"timeout_ms":60000}'
	expect_code 200 "redeploy e2e"
	[ "$(echo "$BODY" | jq -r .version)" = 2 ]
	check $? "version after the update: $BODY"
	invoke e2e "version"
	expect_body "2" "the new code answers"
}

t_init_failure() {
	need "$E2E_PKG" || return
	deploy e2e-bad "$E2E_PKG" native '{"env":{"E2E_INIT_FAIL":"1"}}'
	expect_code 422 "deploy with a failing init"
	[ "$(echo "$BODY" | jq -r .error.code)" = init_failed ]
	check $? "422 error code: $BODY"
	invoke e2e-bad "x"
	expect_code 404 "invoke the function that never deployed"
	# A failed update keeps the previous version serving.
	deploy e2e "$E2E_PKG" native '{"env":{"E2E_INIT_FAIL":"1"}}'
	expect_code 422 "update with a failing init"
	invoke e2e "version"
	expect_body "2" "the previous version still answers"
}

t_unhandled() {
	need "$E2E_PKG" || return
	invoke e2e "fail"
	expect_code 502 "handler returning an error"
	[ "$(header X-Function-Error)" = unhandled ]
	check $? "X-Function-Error on a failed call"
	invoke e2e "crash"
	expect_code 502 "crashing handler"
	[ "$(header X-Function-Error)" = unhandled ]
	check $? "X-Function-Error on a crash"
	invoke e2e "after"
	expect_body "e2e:after" "a call after the crash"
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

t_timeout() {
	need "$E2E_PKG" || return
	deploy e2e-slow "$E2E_PKG" native '{"timeout_ms":1000}'
	expect_code 201 "deploy e2e-slow"
	invoke e2e-slow "loop"
	expect_code 504 "handler looping past its timeout"
	[ "$(echo "$BODY" | jq -r .error.code)" = timeout ]
	check $? "504 error code: $BODY"
	wait_fn e2e-slow '.instances.live == 0 and .instances.busy == 0'
	check $? "the looping clone is gone: $BODY"
	invoke e2e-slow "sleep 10"
	expect_body "slept" "a call after the timeout"
}

t_too_many() {
	need "$E2E_PKG" || return
	deploy e2e-one "$E2E_PKG" native '{"timeout_ms":20000,"pool":{"max_instances":1}}'
	expect_code 201 "deploy e2e-one"
	curl -s -o "$WORK/slow.out" -w '%{http_code}' --max-time 60 -X POST \
		--data-binary "sleep 8000" "$URL/v1/functions/e2e-one/invoke" >"$WORK/slow.code" &
	local bg=$!
	wait_fn e2e-one '.instances.inflight == 1' 30
	check $? "the first call was never seen in flight: $BODY"
	invoke e2e-one "second"
	expect_code 429 "a second call past max_instances=1 (first: $(cat "$WORK/slow.code" 2>/dev/null))"
	[ -n "$(header Retry-After)" ]
	check $? "Retry-After on 429"
	wait $bg
	[ "$(cat "$WORK/slow.code")" = 200 ] && [ "$(cat "$WORK/slow.out")" = slept ]
	check $? "the admitted call: $(cat "$WORK/slow.code") $(cat "$WORK/slow.out")"
}

t_concurrent64() {
	need "$E2E_PKG" || return
	local i pids=()
	mkdir -p "$WORK/c64"
	for i in $(seq 1 64); do
		curl -s -o "$WORK/c64/$i.out" -D "$WORK/c64/$i.hdr" -w '%{http_code}' --max-time 600 \
			-X POST --data-binary "call-$i" "$URL/v1/functions/e2e/invoke" >"$WORK/c64/$i.code" &
		pids+=($!)
	done
	wait "${pids[@]}"
	local bad=0
	for i in $(seq 1 64); do
		if [ "$(cat "$WORK/c64/$i.code")" != 200 ] || [ "$(cat "$WORK/c64/$i.out")" != "e2e:call-$i" ]; then
			bad=$((bad + 1))
			[ $bad -le 3 ] && log "call $i: $(cat "$WORK/c64/$i.code") $(head -c 200 "$WORK/c64/$i.out")"
		fi
	done
	[ $bad = 0 ]
	check $? "$bad of 64 concurrent calls wrong"
	log "restore (ms) max $(cat "$WORK"/c64/*.hdr | tr -d '\r' | awk -F': ' 'tolower($1)=="x-restore-us" {if ($2>m) m=$2} END {printf "%.0f", m/1000}')," \
	    "handler round trip (ms) max $(cat "$WORK"/c64/*.hdr | tr -d '\r' | awk -F': ' 'tolower($1)=="x-duration-us" {if ($2>m) m=$2} END {printf "%.0f", m/1000}')"
}

t_oversized() {
	need "$E2E_PKG" || return
	head -c $((6 * 1024 * 1024 + 1)) /dev/zero >"$WORK/big"
	req POST /v1/functions/e2e/invoke --data-binary @"$WORK/big"
	expect_code 413 "a body over 6 MiB"
	head -c $((7 * 1024 * 1024 + 1)) /dev/zero >"$WORK/bigpkg"
	deploy e2e-huge "$WORK/bigpkg" native
	expect_code 413 "a package over 7 MiB"
	invoke e2e "small"
	expect_body "e2e:small" "a call after the 413"
}

t_malformed_http() {
	local got
	got=$(python3 - "$PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"THIS IS NOT HTTP\x00\x01\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode(errors="replace"))
EOF
)
	[[ "$got" == "HTTP/1.1 400"* ]]
	check $? "malformed request answered '$got'"
	req GET /healthz
	expect_code 200 "healthz after a malformed request"
	if [ -s "$E2E_PKG" ]; then
		invoke e2e "still"
		expect_body "e2e:still" "a call after a malformed request"
	fi
}

t_logs_metrics() {
	need "$E2E_PKG" || return
	invoke e2e "log marker-$$"
	expect_body "logged" "a logging call"
	req GET "/v1/functions/e2e/logs?tail=50" -H "$(auth)"
	expect_code 200 "logs"
	grep -q "\"line\":\"marker-$$\"" <<<"$BODY"
	check $? "the handler's line in the logs: ${BODY:0:300}"
	req GET /metrics
	grep -q '^uf_invocations_total{function="e2e",code="200"} [1-9]' <<<"$BODY" &&
		grep -q '^uf_invocations_total{function="e2e",code="502"} [1-9]' <<<"$BODY" &&
		grep -q '^uf_starts_total{function="e2e",type="clone"} [1-9]' <<<"$BODY"
	check $? "metrics: $(grep '^uf_invocations_total' <<<"$BODY" | head -5 | tr '\n' ' ')"
}

t_warm_pool() {
	need "$E2E_PKG" || return
	req PUT /v1/functions/e2e/pool -H "$(auth)" -H 'Content-Type: application/json' \
		--data '{"min_warm":2}'
	expect_code 200 "pool change"
	wait_fn e2e '.instances.warm == 2 and .pool.min_warm == 2' 60
	check $? "two warm clones: $BODY"
	invoke e2e "warm"
	expect_body "e2e:warm" "a call on a warm clone"
	[ "$(header X-Start-Type)" = warm ]
	check $? "X-Start-Type $(header X-Start-Type), expected warm"
	req PUT /v1/functions/e2e/pool -H "$(auth)" -H 'Content-Type: application/json' \
		--data '{"min_warm":0}'
	expect_code 200 "pool back to 0"
	wait_fn e2e '.instances.warm == 0' 30
	check $? "warm clones released: $BODY"
}

t_worker_crash() {
	need "$E2E_PKG" || return
	curl -s -o "$WORK/wc.out" -w '%{http_code}' --max-time 60 -X POST \
		--data-binary "sleep 5000" "$URL/v1/functions/e2e/invoke" >"$WORK/wc.code" &
	local bg=$! pid
	wait_fn e2e '.instances.inflight == 1' 30
	check $? "the call was never seen in flight: $BODY"
	pid=$(pgrep -f "uf-worker serve .*functions/e2e/template" | head -1)
	[ -n "$pid" ]
	check $? "no worker process found for e2e"
	[ -n "$pid" ] && kill -KILL "$pid"
	wait $bg
	[ "$(cat "$WORK/wc.code")" = 502 ]
	check $? "in-flight call of a killed worker: $(cat "$WORK/wc.code") $(cat "$WORK/wc.out")"
	invoke e2e "again" --max-time 60
	expect_body "e2e:again" "a call after the worker was restarted"
	req GET /metrics
	grep -q '^uf_worker_restarts_total{function="e2e"} [1-9]' <<<"$BODY"
	check $? "worker restart counted"
}

t_graceful_stop() {
	need "$E2E_PKG" || return
	curl -s -o "$WORK/gs.out" -w '%{http_code}' --max-time 60 -X POST \
		--data-binary "sleep 3000" "$URL/v1/functions/e2e/invoke" >"$WORK/gs.code" &
	local bg=$!
	wait_fn e2e '.instances.inflight == 1' 30
	check $? "the call was never seen in flight: $BODY"
	stop_runtimed
	check $? "runtimed exit status after SIGTERM"
	wait $bg
	[ "$(cat "$WORK/gs.code")" = 200 ] && [ "$(cat "$WORK/gs.out")" = slept ]
	check $? "the call in flight at SIGTERM: $(cat "$WORK/gs.code") $(cat "$WORK/gs.out")"
	pgrep -f "uf-worker serve .*$DATA" >/dev/null
	[ $? != 0 ]
	check $? "workers left running after the stop"
	start_runtimed
	check $? "restart"
}

t_restart() {
	need "$E2E_PKG" || return
	stop_runtimed
	start_runtimed
	check $? "restart"
	invoke e2e "back" --max-time 120
	expect_body "e2e:back" "invoke after a restart without redeploy"
	invoke e2e "version"
	expect_body "2" "the version deployed before the restart"
	! grep -q "e2e: rebuilding" "$LOG"
	check $? "the template was rebuilt though nothing changed"
}

t_agent_changed() {
	need "$E2E_PKG" build/bin/guest-agent || return
	# Another agent binary (same guest, different hash): the templates
	# made with the old one are stale and must be rebuilt from the code.
	cp build/bin/guest-agent "$WORK/agent2" && printf 'x' >>"$WORK/agent2"
	stop_runtimed
	start_runtimed --agent "$WORK/agent2"
	check $? "restart with another agent"
	invoke e2e "rebuilt" --max-time 300
	expect_body "e2e:rebuilt" "invoke after the rebuild"
	grep -q "e2e: rebuilding" "$LOG"
	check $? "no rebuild logged"
	invoke e2e "version"
	expect_body "2" "env kept across the rebuild"
}

t_memory_budget() {
	need "$E2E_PKG" || return
	# 200 MiB of guest RAM for calls in flight: one call of a 128 MiB
	# function fits, a second one at the same time does not (503).
	stop_runtimed
	start_runtimed --memory-mb 200
	check $? "restart with a memory budget"
	curl -s -o "$WORK/mb.out" -w '%{http_code}' --max-time 120 -X POST \
		--data-binary "sleep 4000" "$URL/v1/functions/e2e/invoke" >"$WORK/mb.code" &
	local bg=$!
	wait_fn e2e '.instances.inflight == 1' 60
	check $? "the call was never seen in flight: $BODY"
	invoke e2e "second"
	expect_code 503 "a call past the memory budget"
	wait $bg
	[ "$(cat "$WORK/mb.code")" = 200 ]
	check $? "the call within the budget: $(cat "$WORK/mb.code") $(cat "$WORK/mb.out")"
	req GET /metrics
	grep -q '^uf_throttled_total{function="e2e",reason="memory"} 1' <<<"$BODY"
	check $? "memory throttle counted"
	stop_runtimed
	start_runtimed
	check $? "restart without the budget"
}

t_delete() {
	need "$E2E_PKG" || return
	req DELETE /v1/functions/e2e -H "$(auth)"
	expect_code 204 "delete"
	invoke e2e "gone"
	expect_code 404 "invoke a deleted function"
	req GET /v1/functions/e2e -H "$(auth)"
	expect_code 404 "get a deleted function"
	[ ! -e "$DATA/functions/e2e" ]
	check $? "files left in the registry"
	req DELETE /v1/functions/e2e -H "$(auth)"
	expect_code 404 "delete twice"
}

only=("$@")
echo "e2e: runtimed from $BIN, data in $DATA"
start_runtimed || { echo "0 passed, 1 failed"; exit 1; }
run unauthorized t_unauthorized
run deploy_native t_deploy_native
run deploy_python t_deploy_python
run deploy_exec t_deploy_exec
run e2e_function t_e2e_function
run update t_update
run init_failure t_init_failure
run unhandled t_unhandled
run timeout t_timeout
run too_many t_too_many
run concurrent64 t_concurrent64
run oversized t_oversized
run malformed_http t_malformed_http
run logs_metrics t_logs_metrics
run warm_pool t_warm_pool
run worker_crash t_worker_crash
run graceful_stop t_graceful_stop
run restart t_restart
run agent_changed t_agent_changed
run memory_budget t_memory_budget
run delete t_delete
stop_runtimed
rc=$?
if [ $rc != 0 ]; then
	echo "FAIL final stop: runtimed exited with $rc"
	failed=$((failed + 1))
fi
if grep -qE "AddressSanitizer|runtime error:|LeakSanitizer" "$LOG"; then
	echo "FAIL sanitizers reported errors:"
	grep -E -A5 "AddressSanitizer|runtime error:|LeakSanitizer" "$LOG" | head -30
	failed=$((failed + 1))
fi
[ ${#skipped[@]} -gt 0 ] && printf 'skipped: %s\n' "${skipped[@]}"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
