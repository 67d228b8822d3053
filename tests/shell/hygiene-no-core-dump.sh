#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An attached daemon never leaves a core file (issue #7: not dumpable while
# keys are held).  For the duration of the test the kernel's core_pattern
# points into the test directory (saved and restored on every exit path,
# under a lock so that two copies of this test cannot interleave), and the
# daemons are started with `ulimit -c unlimited` (checked in
# /proc/PID/limits).  Then:
#  - controls (so that "no core" means something): `sleep` killed with
#    SIGSEGV dumps a core there; so does blockcrypt itself while it holds
#    no key yet (a `cat` of a plain volume waiting to open its key file, a
#    FIFO);
#  - an NBD daemon (LUKS2) killed with SIGSEGV, an NBD + FUSE daemon killed
#    with SIGABRT and a foreground daemon killed with SIGBUS (status
#    128+signal) leave no core.
. "$(dirname "$0")/functions.bash"
requires flock mkfifo mountpoint timeout /usr/bin/python3
. "$TESTS_DIR/shell/hygiene-lib.bash"
PATTERN_FILE=/proc/sys/kernel/core_pattern

# exec_done PID NAME: wait until background job PID runs NAME (a signal sent
# earlier would hit the forked shell, which runs the EXIT trap: cleanup!).
exec_done() {
	for _ in $(seq 100); do
		[ "$(cat "/proc/$1/comm" 2>/dev/null)" != "$2" ] || return 0
		sleep 0.05
	done
	fail "background job $1 never became $2"
}
core_limit() { awk '/^Max core file size/ { print $5 }' "/proc/$1/limits"; }
# cores_of PID: core files the kernel wrote for PID.
cores_of() {
	local f
	for f in cores/core."$1".*; do
		[ ! -e "$f" ] || echo "${f#cores/}"
	done
}

new_volume vol.img key
mkdir mnt cores
cleanup_fn '_detach_all; umount -l "$TEST_TMP/mnt" 2>/dev/null || true'

# ---- take over core_pattern ---------------------------------------------------
exec 9>/run/lock/blockcrypt-hygiene-core-pattern.lock
flock -w 600 9 || fail "another test holds the core_pattern lock for 10 minutes"
saved_pattern=$(cat "$PATTERN_FILE") || fail "cannot read $PATTERN_FILE"
restore_pattern() {
	[ -z "${saved_pattern+x}" ] || printf '%s\n' "$saved_pattern" >"$PATTERN_FILE" ||
		echo "WARNING: could not restore $PATTERN_FILE to '$saved_pattern'" >&2
}
cleanup_fn restore_pattern
pattern="$TEST_TMP/cores/core.%p.%s"
[ ${#pattern} -lt 128 ] || fail "core pattern $pattern is too long for the kernel (TMPDIR too deep)"
printf '%s\n' "$pattern" >"$PATTERN_FILE" || fail "cannot write $PATTERN_FILE (need root, not in a container?)"
[ "$(cat "$PATTERN_FILE")" = "$pattern" ] || fail "core_pattern did not take: $(cat "$PATTERN_FILE")"
ulimit -c unlimited || fail "cannot raise the core size limit"

# ---- controls ---------------------------------------------------------------------
sleep 300 &
pid=$!
exec_done "$pid" sleep
kill -SEGV "$pid"
wait "$pid" || true
[ -n "$(cores_of "$pid")" ] || fail "control: sleep killed by SIGSEGV left no core in $TEST_TMP/cores: core dumps do not work here"

mkfifo keyfifo
# (a plain volume: a LUKS open already holds the empty key buffer then)
random_file plain.img 1048576
"$BLOCKCRYPT" cat plain.img --type plain --key-file keyfifo >/dev/null 2>cat.err &
pid=$!
for _ in $(seq 100); do
	grep -qE "fifo_open|wait_for_partner" "/proc/$pid/wchan" 2>/dev/null && break
	sleep 0.1
done
kill -SEGV "$pid"
wait "$pid" || true
[ -n "$(cores_of "$pid")" ] ||
	fail "control: blockcrypt waiting for its key file (no key held yet) left no core after SIGSEGV: $(cat cat.err) (cores: $(ls cores))"
rm -f cores/*

# ---- daemons --------------------------------------------------------------------------
# crash NAME SIGNAL: the daemon NAME, killed by SIGNAL, must leave no core.
crash() {
	local name=$1 sig=$2 pid
	pid=$(daemon_pid "$name")
	[ "$(core_limit "$pid")" = unlimited ] || fail "$name: daemon's core limit is $(core_limit "$pid"), not unlimited"
	kill "-$sig" "$pid"
	gone "$pid" 20 || fail "$name: daemon $pid still running 20 s after SIG$sig"
	[ -z "$(cores_of "$pid")" ] || problem "$name: daemon killed by SIG$sig (holding the volume key) dumped core: $(cores_of "$pid") ($(stat -c %s "cores/$(cores_of "$pid" | head -1)") bytes)"
}

bc attach vol.img --key-file key --name nbd >/dev/null || fail "attach (NBD) failed"
crash nbd SEGV

bc attach vol.img --key-file key --name fuse --fuse mnt >/dev/null || fail "attach (NBD + FUSE) failed"
head -c 4096 mnt/fuse >/dev/null || fail "cannot read the FUSE file"
crash fuse ABRT
umount -l mnt 2>/dev/null || true

"$BLOCKCRYPT" attach vol.img --key-file key --name fg --foreground >fg.out 2>fg.log &
pid=$!
for _ in $(seq 200); do
	[ -S "$BLOCKCRYPT_RUN_DIR/fg.sock" ] || ! kill -0 "$pid" 2>/dev/null && break
	sleep 0.1
done
[ -S "$BLOCKCRYPT_RUN_DIR/fg.sock" ] || fail "attach --foreground did not come up: $(cat fg.log)"
[ "$(core_limit "$pid")" = unlimited ] || fail "fg: core limit is $(core_limit "$pid"), not unlimited"
# (not SIGQUIT: a non-interactive shell starts background jobs with it ignored)
kill -BUS "$pid"
gone "$pid" 20 || fail "fg: foreground daemon still running 20 s after SIGBUS"
rc=0
wait "$pid" || rc=$?
[ "$rc" = $((128 + 7)) ] || problem "fg: attach --foreground exited with $rc after SIGBUS, expected 135"
[ -z "$(cores_of "$pid")" ] || problem "fg: foreground daemon killed by SIGBUS dumped core: $(cores_of "$pid")"

restore_pattern
[ "$(cat "$PATTERN_FILE")" = "$saved_pattern" ] || fail "core_pattern not restored: $(cat "$PATTERN_FILE")"

check_problems
exit 0
