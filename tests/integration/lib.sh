# lib.sh — helpers for the guest integration tests (sourced).  Each test is
# a shell function t_NAME; run_tests runs them in order, each with its output
# captured, and closes with "N passed, N failed".
set -uo pipefail

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
B=$ROOT/build
KERNEL=$B/guest/vmlinux
INITRD=$B/guest/initramfs.cpio
UFVM=$B/bin/uf-vm
WORK=$(mktemp -d /tmp/uf-itest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fail() { echo "    $*" >&2; return 1; }

# expect_rc WANT CMD... — run CMD, output to $WORK/out (stdout+stderr).
expect_rc() {
	local want=$1 rc
	shift
	"$@" >"$WORK/out" 2>&1
	rc=$?
	if [ "$rc" != "$want" ]; then
		sed 's/^/    | /' "$WORK/out" | tail -20 >&2
		fail "exit status $rc, expected $want: $*"
		return 1
	fi
}

expect_out() { # expect_out REGEX — $WORK/out must match
	grep -Eq -- "$1" "$WORK/out" || { sed 's/^/    | /' "$WORK/out" | tail -20 >&2; fail "output lacks /$1/"; }
}

run_tests() {
	local passed=0 failed=0 t
	for t in "$@"; do
		local t0=$(date +%s.%N)
		if ( "$t" ); then
			passed=$((passed + 1))
			printf 'ok   %s (%.1f s)\n' "${t#t_}" "$(echo "$(date +%s.%N) - $t0" | bc)"
		else
			failed=$((failed + 1))
			printf 'FAIL %s\n' "${t#t_}"
		fi
	done
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
