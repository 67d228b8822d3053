#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run the whole test suite: unit and shell tests against a normal build and
# again against an ASan+UBSan build, then a bounded fuzzing run of every
# parser of untrusted input (scripts/fuzz.sh: $BC_FUZZ_TIME seconds per
# target, default 20; each target counts as one test; BC_SKIP_FUZZ=1 skips
# it).  Installs what it needs (as root).
# A skipped test (missing requirement) fails the run: nothing goes untested
# silently.  Ends with one summary line "N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
"$top/scripts/deps.sh" --test || exit 1

passed=0 failed=0 skipped=0

# --- One Ceph cluster for both suites (tests/ceph/cluster.sh) ------------
# The RBD tests use it through BC_TEST_CEPH_CONF (requires_ceph in
# tests/shell/functions.bash), each with its own images; a test run alone
# starts a private one instead.  Stopped at exit, whatever happened.
ceph_dir=$(mktemp -d "${TMPDIR:-/tmp}/bc-ceph.XXXXXX") || exit 1
ceph_stop() {
	[ -n "$ceph_dir" ] || return 0
	"$top/tests/ceph/cluster.sh" stop "$ceph_dir" || failed=$((failed + 1))
	if pgrep -f -- "$ceph_dir/ceph.conf" >/dev/null; then
		echo "ERROR: processes of the test cluster outlived cluster.sh stop: $(pgrep -f -- "$ceph_dir/ceph.conf" | tr '\n' ' ')"
		failed=$((failed + 1))
	fi
	rm -rf "$ceph_dir"
	ceph_dir=""
}
trap ceph_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "=== ceph test cluster ($ceph_dir)"
if "$top/tests/ceph/cluster.sh" start "$ceph_dir" >/dev/null; then
	export BC_TEST_CEPH_CONF=$ceph_dir/ceph.conf
else
	echo "ERROR: the test cluster did not start: each Ceph test tries a private one"
	failed=$((failed + 1))
fi
# -------------------------------------------------------------------------
TEST_ARGS=()
run_suite() { # NAME BUILDDIR MESON-ARGS...
	local name=$1 dir=$2; shift 2
	echo "=== $name build ($dir)"
	if ! "$top/scripts/build.sh" "$dir" -Dwerror=true "$@"; then
		echo "build failed: $name"; failed=$((failed + 1)); return
	fi
	meson test -C "$dir" --print-errorlogs --num-processes 2 "${TEST_ARGS[@]}" || true
	local log="$dir/meson-logs/testlog.json" p f s
	p=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(x["result"]=="OK" for x in r))' "$log")
	f=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(x["result"] not in ("OK","SKIP") for x in r))' "$log")
	s=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(x["result"]=="SKIP" for x in r))' "$log")
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

run_suite default build
if [ "${BC_SKIP_SANITIZERS:-0}" != 1 ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	export LSAN_OPTIONS=suppressions=$top/tests/lsan-ceph.supp:print_suppressions=0
	# The memory-layout, source, ceph-heavy, whole-program, vm and install
	# suites (tests/meson.build says why) ran on the default build.
	echo "(asan+ubsan: the memory-layout, source, ceph-heavy, whole-program, vm and install suites run on the default build only)"
	TEST_ARGS=(--no-suite memory-layout --no-suite source --no-suite ceph-heavy --no-suite whole-program --no-suite vm
		--no-suite install)
	run_suite "asan+ubsan" build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
fi

ceph_stop # the fuzzers need no cluster

if [ "${BC_SKIP_FUZZ:-0}" != 1 ]; then
	echo "=== fuzz (build-fuzz, clang, ${BC_FUZZ_TIME:-20} s per target)"
	for t in $("$top/scripts/fuzz.sh" --list); do
		if "$top/scripts/fuzz.sh" "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	done
fi

if [ "$skipped" -gt 0 ]; then
	echo "ERROR: $skipped test(s) skipped: a requirement is missing (see SKIP lines above); counted as failures"
	failed=$((failed + skipped))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
