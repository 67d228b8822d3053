#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One writer per RBD image, and fencing (issue #17): two attaches of one
# image from two clients (two runtime directories, two Ceph clients): the
# second exits 9 at once -- well within the client timeouts -- naming the
# holder (its Ceph address and pid).  The holder stopped (SIGSTOP, a client
# that hangs): `attach --break-lock` takes over, Ceph blocklists the old
# client, and once the old daemon runs again its NBD writes fail (EIO to
# the client) and change nothing on the image.  The holder killed
# (kill -9): a plain attach is still refused with exit 9, --break-lock
# takes over and blocklists it.
. "$(dirname "$0")/functions.bash"
requires timeout nbdcopy
requires_ceph
. "$TESTS_DIR/shell/rbd-lib.bash"
# Daemons go before the images (hooks run last-registered first): an image
# a daemon still watches cannot be removed.
cleanup_fn _detach_all

# How long a refusal may take: "at once", i.e. far below the 30 s op
# timeouts of the test cluster and the 30 s after which the OSD drops a
# dead client's watch (about 1 s here; a watch some other client left
# behind would cost librbd a 5 s notify timeout).
REFUSE_MAX_MS=15000
# --break-lock: blocklisting goes through the monitor (a few seconds
# here); generous for a loaded machine.
BREAK_MAX_S=120

RUN_B=$TEST_TMP/run-b
mkdir -m 700 "$RUN_B"
# B's daemons go too, whatever happens.
detach_b() { local -x BLOCKCRYPT_RUN_DIR=$RUN_B; _detach_all; }
cleanup_fn detach_b
# (commands, not functions: timeout(1) runs them)
BC_A=("$BLOCKCRYPT")
BC_B=(env "BLOCKCRYPT_RUN_DIR=$RUN_B" "$BLOCKCRYPT")
uri_b() { echo "nbd+unix:///$1?socket=$RUN_B/$1.sock"; }
pid_b() { state_pid "$RUN_B/$1.json" || fail "$1: no pid in $RUN_B/$1.json"; }

printf 'fencing passphrase' >key

# --- The holder stopped, then resumed --------------------------------------
img=$(ceph_image_name stop)
spec=$(rbd_spec "$img")
rbd_new_volume "$img" key
timeout 120 "${BC_A[@]}" attach "$spec" --key-file key --name a >/dev/null 2>attach.err ||
	fail "attach A failed: $(cat attach.err)"
pid_a=$(daemon_pid a)
owner_a=$(rbd_lock_owner "$img")
[ -n "$owner_a" ] || fail "attached, but the image has no exclusive lock (rbd lock ls)"
random_file data-a 1M
timeout 120 nbdcopy data-a "$(nbd_uri a)" || fail "nbdcopy through A failed"

t0=$(now_ms)
expect_exit 9 timeout 120 "${BC_B[@]}" attach "$spec" --key-file key --name b
took=$(($(now_ms) - t0))
note "second attach refused after $took ms: $ERR"
[ "$took" -le "$REFUSE_MAX_MS" ] || problem "the second attach took $took ms to be refused (want <= $REFUSE_MAX_MS)"
[[ $ERR == *"pid $pid_a"* ]] || problem "the refusal does not name the holder's pid $pid_a: $ERR"
[[ $ERR == *"$owner_a"* ]] || problem "the refusal does not name the holder's Ceph client $owner_a: $ERR"
[ ! -e "$RUN_B/b.json" ] || problem "a refused attach left $RUN_B/b.json"
[ "$(rbd_lock_owner "$img")" = "$owner_a" ] || problem "the refused attach moved the lock away from A"
t0=$(now_ms)
expect_exit 9 timeout 120 "${BC_B[@]}" write "$spec" --key-file key <data-a
note "write refused after $(($(now_ms) - t0)) ms: $ERR"
[[ $ERR == *"pid $pid_a"* ]] || problem "write: the refusal does not name the holder's pid $pid_a: $ERR"

kill -STOP "$pid_a"
cleanup_fn "kill -CONT $pid_a 2>/dev/null"
t0=$SECONDS
timeout $((BREAK_MAX_S + 30)) "${BC_B[@]}" attach "$spec" --key-file key --name b --break-lock >/dev/null 2>break.err ||
	fail "attach --break-lock of a stopped holder failed after $((SECONDS - t0)) s: $(cat break.err)"
took=$((SECONDS - t0))
note "attach --break-lock took over from a stopped holder in $took s"
[ "$took" -le "$BREAK_MAX_S" ] || problem "attach --break-lock took $took s (want <= $BREAK_MAX_S)"
grep -q "breaking the lock of $owner_a" break.err || problem "attach --break-lock did not say whose lock it broke: $(cat break.err)"
owner_b=$(rbd_lock_owner "$img")
[ -n "$owner_b" ] && [ "$owner_b" != "$owner_a" ] || problem "after --break-lock the lock is held by '$owner_b' (A was $owner_a)"
rbd_blocklisted "$owner_a" || problem "A's client $owner_a is not on the blocklist (ceph osd blocklist ls: $(ceph osd blocklist ls 2>&1 | tr '\n' ' '))"
random_file data-b 1M
timeout 120 nbdcopy data-b "$(uri_b b)" || fail "nbdcopy through B (after --break-lock) failed"

# A runs again: whatever it writes must be refused by the cluster.
kill -CONT "$pid_a"
random_file data-x 1M
rc=0
timeout 120 nbdcopy data-x "$(nbd_uri a)" 2>fenced.err || rc=$?
note "write through the fenced A: exit $rc: $(tail -n 1 fenced.err)"
[ "$rc" != 0 ] || problem "a write through A after B broke its lock succeeded"
[ "$rc" != 124 ] || problem "a write through A after B broke its lock hung"
grep -q 'Input/output error' fenced.err || problem "the fenced write did not fail with EIO: $(cat fenced.err)"
grep -q 'WRITE.*failed' "$BLOCKCRYPT_RUN_DIR/a.log" || problem "A's log says nothing of the failed write: $(cat "$BLOCKCRYPT_RUN_DIR/a.log")"
# B still serves, and the image holds B's data, not A's.
timeout 120 nbdcopy "$(uri_b b)" - | head -c 1M >read-b || true
cmp -s read-b data-b || problem "read through B after A's fenced write: not B's data"
timeout 60 "${BC_B[@]}" detach b >/dev/null 2>detach.err || problem "detach B failed: $(cat detach.err)"
timeout 120 "${BC_A[@]}" cat "$spec" --key-file key 2>cat.err | head -c 1M >read-cat || true
cmp -s read-cat data-b || problem "blockcrypt cat after detach: the image does not hold B's data ($(cat cat.err))"
timeout 60 "${BC_A[@]}" detach a --force >/dev/null 2>&1 || true

# --- The holder killed --------------------------------------------------------
img=$(ceph_image_name kill)
spec=$(rbd_spec "$img")
rbd_new_volume "$img" key
timeout 120 "${BC_A[@]}" attach "$spec" --key-file key --name k >/dev/null 2>attach.err ||
	fail "attach A failed: $(cat attach.err)"
pid_a=$(daemon_pid k)
owner_a=$(rbd_lock_owner "$img")
[ -n "$owner_a" ] || fail "attached, but the image has no exclusive lock (rbd lock ls)"
kill -9 "$pid_a"
gone "$pid_a" || fail "A (pid $pid_a) survived kill -9"
# Right away: still refused, the dead holder's lock is not taken over
# without --break-lock.
t0=$(now_ms) rc=0
timeout 120 "${BC_B[@]}" attach "$spec" --key-file key --name k2 >/dev/null 2>plain.err || rc=$?
took=$(($(now_ms) - t0))
note "attach after kill -9 of the holder, without --break-lock: exit $rc after $took ms: $(cat plain.err)"
if [ "$rc" = 0 ]; then
	problem "attach without --break-lock took over the lock of the killed holder $owner_a (after $took ms; blocklisted: $(rbd_blocklisted "$owner_a" && echo yes || echo no)), want exit 9"
	timeout 60 "${BC_B[@]}" detach k2 >/dev/null 2>&1 || true
else
	[ "$rc" = 9 ] || problem "attach without --break-lock after kill -9 of the holder: exit $rc, want 9: $(cat plain.err)"
	[ "$took" -le "$REFUSE_MAX_MS" ] || problem "the attach took $took ms to be refused (want <= $REFUSE_MAX_MS)"
	[[ $(cat plain.err) == *"$owner_a"* ]] || problem "the refusal does not name the dead holder $owner_a: $(cat plain.err)"
fi
t0=$SECONDS
timeout $((BREAK_MAX_S + 30)) "${BC_B[@]}" attach "$spec" --key-file key --name k2 --break-lock >/dev/null 2>break.err ||
	fail "attach --break-lock of a killed holder failed after $((SECONDS - t0)) s: $(cat break.err)"
took=$((SECONDS - t0))
note "attach --break-lock took over from a killed holder in $took s"
[ "$took" -le "$BREAK_MAX_S" ] || problem "attach --break-lock took $took s (want <= $BREAK_MAX_S)"
rbd_blocklisted "$owner_a" || problem "the killed client $owner_a is not on the blocklist"
owner_b=$(rbd_lock_owner "$img")
[ -n "$owner_b" ] && [ "$owner_b" != "$owner_a" ] || problem "after --break-lock the lock is held by '$owner_b' (A was $owner_a)"
random_file data-k 1M
timeout 120 nbdcopy data-k "$(uri_b k2)" || problem "nbdcopy through the new holder failed"
timeout 120 nbdcopy "$(uri_b k2)" - | head -c 1M >read-k || true
cmp -s read-k data-k || problem "the new holder does not read back what it wrote"
running "$(pid_b k2)" || problem "the new holder's daemon is gone"
check_problems
