#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One writer per backing, by identity, not by path: while a volume is
# attached read-write, attaching the same backing again -- by the same
# path, a hard link, a symlink, a bind mount of its directory, from
# another runtime directory, or (a block device) another device node path
# -- fails at once with exit 9 and one line naming the holder, and the
# attached volume keeps serving the same data.  A read-only attach shares
# with another read-only attach but not with a writer.  A kill -9 of the
# holder frees the backing at once.  A block device also refuses another
# device node of itself (O_EXCL).
. "$(dirname "$0")/functions.bash"
requires mount umount losetup nbdcopy
new_volume vol.img key
random_file data $((1 << 20))
bc write vol.img --key-file key <data >/dev/null 2>&1 || fail "write failed"
BEFORE=$(sha vol.img)

uri=$(bc attach vol.img --key-file key) || fail "attach failed"
PID=$(daemon_pid vol)
nbdcopy "$uri" served.before || fail "cannot read the export"

ln vol.img hard.img
ln -s vol.img sym.img
mkdir bind
mount --bind "$TEST_TMP" bind || fail "bind mount failed"
cleanup_fn "umount -l '$TEST_TMP/bind'"

# refused WHAT CMD...: exit 9, one line naming vol and the daemon's pid.
refused() {
	local what=$1; shift
	expect_exit 9 "$@"
	[[ "$ERR" == *"is attached as 'vol', pid $PID"* ]] || fail "$what: the error does not name the holder: $ERR"
	note "$what: $ERR"
}
refused "same path" bc attach vol.img --key-file key --name again
refused "hard link" bc attach hard.img --key-file key --name hard
refused "symlink" bc attach sym.img --key-file key --name sym
refused "bind mount" bc attach bind/vol.img --key-file key --name bind
refused "read-only attach" bc attach vol.img --key-file key --name ro --read-only
mkdir other-run
# (from another runtime directory the holder's name is not known: its pid is)
expect_exit 9 env BLOCKCRYPT_RUN_DIR="$TEST_TMP/other-run" "$BLOCKCRYPT" attach hard.img --key-file key
[[ "$ERR" == *"is in use by blockcrypt, pid $PID"* ]] || fail "another runtime directory: the error does not name the holder: $ERR"
[ -z "$(ls -A other-run)" ] || fail "the refused attach left files in its runtime directory: $(ls -A other-run)"
[ "$(bc list --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
	fail "more than one volume is attached"
nbdcopy "$uri" served.after || fail "the export stopped serving"
cmp -s served.before served.after || fail "the export's data changed"

# kill -9 frees the backing at once.
kill -9 "$PID"
gone "$PID" || fail "the daemon survived kill -9"
uri=$(bc attach hard.img --key-file key --name hard) || fail "attach after kill -9 of the holder failed"
# Two read-only attaches share; a writer is refused while they are there.
bc detach hard >/dev/null || fail "detach failed"
bc attach vol.img --key-file key --read-only --name ro1 >/dev/null || fail "read-only attach failed"
bc attach sym.img --key-file key --read-only --name ro2 >/dev/null || fail "second read-only attach failed"
expect_exit 9 bc attach hard.img --key-file key --name rw
[[ "$ERR" == *"is attached as 'ro"[12]"'"* ]] || fail "writer refused without naming a reader: $ERR"
bc detach ro1 ro2 >/dev/null 2>&1 || fail "detach failed"
[ "$(sha vol.img)" = "$BEFORE" ] || fail "the backing changed"

# A block device: the same device through another path (a symlink to the
# node) is the same backing.
LOOP=$(losetup -f --show vol.img) || skip "no loop device"
cleanup_fn "losetup -d $LOOP"
ln -s "$LOOP" loop-link
bc attach "$LOOP" --key-file key --name blk >/dev/null || fail "attach of $LOOP failed"
PID=$(daemon_pid blk)
expect_exit 9 bc attach loop-link --key-file key --name blk2
[[ "$ERR" == *"is attached as 'blk', pid $PID"* ]] || fail "block device: the error does not name the holder: $ERR"
expect_exit 9 bc format "$LOOP" --batch --key-file key "${FAST_KDF[@]}"
# Another device node of the same device (its own inode, so its own
# locks): the kernel's exclusive open still refuses it.
mknod node2 b "$((16#$(stat -c %t "$LOOP")))" "$((16#$(stat -c %T "$LOOP")))" || fail "mknod failed"
expect_exit 9 bc attach node2 --key-file key --name blk3
note "another node of $LOOP: $ERR"
bc detach blk >/dev/null || fail "detach failed"
exit 0
