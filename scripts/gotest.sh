#!/usr/bin/env bash
# go test with its arguments, and when it fails, a short summary at the
# end: which tests failed and the first line of each of their messages.
# A parallel e2e run prints a failed test's whole output (a conductor log
# of thousands of lines) after the line that says what failed; CI shows
# only the end of the output.
set -uo pipefail
log=$(mktemp /tmp/gotest.XXXXXX)
trap 'rm -f "$log"' EXIT
"${GO:-go}" test "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
	echo
	echo "==== go test failed (exit $rc); what failed, first line of each message:"
	grep -E -e '^\s*--- FAIL' -e '^\s{4,}[A-Za-z0-9_]+_test\.go:[0-9]+: ' -e '^(FAIL|panic:|fatal error:)' -e 'test timed out' "$log" \
		| cut -c1-400 | head -n 40
fi
exit "$rc"
