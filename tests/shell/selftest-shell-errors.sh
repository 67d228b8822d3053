#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The shell test harness cannot pass a test that bash abandoned half-way.
# Under plain `set -e`, an expansion error such as
# $((SIZE - $(data_offset img))) with an empty result aborts the whole
# command it occurs in -- even `f || fail` -- and bash then carries on with
# the next line, so a test could skip its checks and still exit 0 (it hid
# every case of crash-header-keys.sh once).  functions.bash runs tests in
# POSIX mode, where such errors end the script.  Each case below is a tiny
# test sourcing functions.bash that must exit non-zero before its last line.
. "$(dirname "$0")/functions.bash"

# must_fail NAME BODY: a script that sources functions.bash and runs BODY
# must exit non-zero and never reach the line after BODY.
must_fail() {
	local name=$1 body=$2 rc=0
	cat >"case-$name.sh" <<-CASE
		. "$TESTS_DIR/shell/functions.bash"
		$body
		echo REACHED-THE-END
		exit 0
	CASE
	bash "case-$name.sh" >"case-$name.out" 2>"case-$name.err" || rc=$?
	[ "$rc" != 0 ] || fail "$name: the script exited 0 (stderr: $(cat "case-$name.err"))"
	! grep -q REACHED-THE-END "case-$name.out" || fail "$name: the script ran past the error"
	note "$name: exit $rc: $(head -n 1 "case-$name.err")"
}

# The control: the same wrapper with a harmless body passes.
cat >case-ok.sh <<CASE
. "$TESTS_DIR/shell/functions.bash"
echo REACHED-THE-END
exit 0
CASE
bash case-ok.sh >case-ok.out 2>case-ok.err || fail "control script failed: $(cat case-ok.err)"
grep -q REACHED-THE-END case-ok.out || fail "control script did not run to its end"

must_fail arithmetic-in-function 'empty() { :; }; f() { echo "$((5 - $(empty)))"; }; f || fail "f failed"'
must_fail arithmetic-top-level 'empty() { :; }; x=$((5 - $(empty)))'
must_fail substitution-inherits-e 'x=$(false; echo printed-anyway)'
must_fail bad-substitution 'x=abc; echo "${x}${}"'
must_fail data-offset-no-header 'head -c 4096 /dev/zero >nohdr.img; echo "$(($(stat -c %s nohdr.img) - $(data_offset nohdr.img)))"'
must_fail data-sha-no-header 'head -c 4096 /dev/zero >nohdr.img; data_sha nohdr.img || fail "data_sha failed"'
must_fail volume-key-no-header 'head -c 4096 /dev/zero >nohdr.img; echo x >k; k=$(volume_key nohdr.img k)'
must_fail unset-variable 'echo "$NO_SUCH_VARIABLE_HERE"'

# `problem` notes a failure and goes on: check_problems then fails at once,
# and a test that exits 0 (or 77, skipped) with problems noted fails.
must_fail check-problems 'problem "noted"; check_problems'
for code in 0 77; do
	cat >"case-problem-$code.sh" <<CASE
. "$TESTS_DIR/shell/functions.bash"
problem "first"
problem "second"
echo REACHED-THE-END
exit $code
CASE
	rc=0
	bash "case-problem-$code.sh" >case-problem.out 2>case-problem.err || rc=$?
	grep -q REACHED-THE-END case-problem.out || fail "problem did not go on: $(cat case-problem.err)"
	[ "$rc" = 1 ] || fail "two problems, then exit $code: exit $rc, expected 1: $(cat case-problem.err)"
	grep -q '2 problem(s)' case-problem.err || fail "no problem count at exit: $(cat case-problem.err)"
	note "problems, then exit $code: exit $rc: $(tail -n 1 case-problem.err)"
done
exit 0
