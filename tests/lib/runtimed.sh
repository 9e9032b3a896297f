# tests/lib/runtimed.sh — shell helpers shared by the suites that drive a
# real runtimed over HTTP (tests/e2e, tests/faults); sourced.  Owns
# runtimed's lifetime (start, stop, kill at exit), the work directory's
# removal, HTTP requests with curl, deploys, and the per-test checks.
# Expects BIN, PORT, URL, WORK, DATA and LOG set by the caller;
# KEEP_WORK=1 keeps WORK at exit.  RTD is runtimed's pid while it runs.

log() { printf '    %s\n' "$*"; }

start_runtimed() { # [extra runtimed flags]
	"$BIN/runtimed" --data "$DATA" --listen "127.0.0.1:$PORT" "$@" >>"$LOG" 2>&1 &
	RTD=$!
	for _ in $(seq 1 "${RT_UP_TRIES:-600}"); do   # 0.1 s each
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
	if [ "${KEEP_WORK:-0}" = 1 ]; then
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
	# (the code is appended as text: jq is slow with megabytes of string)
	{
		jq -cn --arg rt "$rt" --argjson x "$extra" '{runtime: $rt} + $x' | sed 's/}$//'
		printf ',"code":"'
		base64 -w0 "$pkg"
		printf '"}'
	} >"$WORK/spec.json"
	req PUT "/v1/functions/$name" -H "$(auth)" -H 'Content-Type: application/json' \
		--data-binary @"$WORK/spec.json" --max-time 600
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
