#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The boot cycle with a kernel filesystem: btrfs on a loop device over the
# volume's FUSE file.  First life by hand (attach, losetup, mkfs.btrfs,
# files + checksums, umount, losetup -d, detach).  Then twice: `attach
# --all --tab TAB`, whose entry's after-attach= runs losetup on
# $BLOCKCRYPT_FUSE_FILE and mounts it, brings the filesystem back in one
# step (exit 0, mounted, every checksum OK, a new file per boot); at
# "shutdown" a plain `detach --all` refuses (exit 9) while the loop device
# holds the FUSE file and changes nothing; after umount + losetup -d it
# succeeds and leaves no FUSE mount, no list entry.  The last boot also
# runs `btrfs scrub` (no errors) and `btrfs check --readonly` (clean).
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/scenario-lib.bash"
requires cryptsetup losetup mkfs.btrfs btrfs mount umount
need_root_fuse
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || true
requires_btrfs

NAME=bt
FUSE_DIR=$TEST_TMP/fuse
MNT=$TEST_TMP/mnt
DEV=$FUSE_DIR/$NAME
TAB=$TEST_TMP/blockcrypttab
LOOPFILE=$TEST_TMP/loopdev
mkdir -p "$FUSE_DIR" "$MNT"
scn_teardown_register

# wait_loop_gone LOOP: the loop device no longer has our FUSE file.
wait_loop_gone() { loop_released "$1" "$DEV"; }
release() { # umount, drop the loop device; whatever state we are in
	local loop
	if mountpoint -q "$MNT"; then timeout 60 umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
	[ -s "$LOOPFILE" ] || return 0
	loop=$(cat "$LOOPFILE")
	btrfs device scan --forget "$loop" >/dev/null 2>&1 || true
	losetup -d "$loop" 2>/dev/null || true
	wait_loop_gone "$loop" || true
	rm -f "$LOOPFILE"
}
scn_pre_detach_hook=release

shutdown() { # WHEN: as a shutdown would: detach refuses while busy, then succeeds
	local rc=0
	timeout -k 5 60 "$BLOCKCRYPT" detach --all >detach.out 2>detach.err || rc=$?
	[ "$rc" = 9 ] || fail "$1: detach --all with btrfs mounted exited $rc, expected 9 (busy): $(cat detach.err)"
	[ -s detach.err ] || fail "$1: the refused detach --all printed nothing"
	[ "$(list_names)" = "$NAME" ] || fail "$1: after the refused detach --all, attached: '$(list_names)'"
	mountpoint -q "$MNT" && [ -f "$MNT/one-mib" ] || fail "$1: the filesystem is gone after a refused detach --all"
	sync
	tmo 60 umount umount "$MNT" || fail "$1: umount $MNT failed: $(cat .tmo)"
	loop=$(cat "$LOOPFILE")
	btrfs device scan --forget "$loop" >/dev/null 2>&1 || true
	losetup -d "$loop" || fail "$1: losetup -d $loop failed"
	wait_loop_gone "$loop" || fail "$1: $loop still holds $DEV 10 s after losetup -d"
	rm -f "$LOOPFILE"
	wait_for 10 eval '[ "$(list_field "$NAME" fuse_open)" = 0 ]' || fail "$1: FUSE file still open after losetup -d"
	tmo 60 "detach --all" bc detach --all || fail "$1: detach --all failed (exit $?): $(cat .tmo)"
	[ -z "$(list_names)" ] || fail "$1: still attached after detach --all: $(list_names)"
	! mountpoint -q "$FUSE_DIR" || fail "$1: FUSE mount still there after detach --all"
	[ -z "$(ls -A "$FUSE_DIR")" ] || fail "$1: $FUSE_DIR not empty after detach --all"
}

VOLUME_SIZE=256M new_volume bt.img key

# ---- first life, by hand ------------------------------------------------------
tmo 60 attach bc attach bt.img --key-file key --name "$NAME" --fuse "$FUSE_DIR" || fail "attach failed: $(cat .tmo)"
losetup --find --show "$DEV" >"$LOOPFILE" || fail "losetup on $DEV failed"
LOOP=$(cat "$LOOPFILE")
tmo 120 mkfs.btrfs mkfs.btrfs -q -f -L bcboot "$LOOP" || fail "mkfs.btrfs failed: $(cat .tmo)"
tmo 60 mount mount "$LOOP" "$MNT" || fail "mount $LOOP failed: $(cat .tmo)"
random_file "$MNT/one-mib" $((1024 * 1024))
random_file "$MNT/odd-size" $((7 * 1024 * 1024 + 4097))
mkdir -p "$MNT/dir/sub"
for i in 1 2 3 4 5; do random_file "$MNT/dir/sub/f$i" $((RANDOM * 9 + i)); done
ln -s ../one-mib "$MNT/dir/link"
sync
tree_sums "$MNT" sums
shutdown "first life"

cat >"$TAB" <<EOF
# the boot cycle: attach, then a loop device and a mount by the hook
$NAME  $TEST_TMP/bt.img  $TEST_TMP/key  fuse=$FUSE_DIR,after-attach=loop=\$(losetup --find --show "\$BLOCKCRYPT_FUSE_FILE") && echo "\$loop" >$LOOPFILE && mount "\$loop" $MNT
EOF

for boot in 1 2; do
	tmo 120 "attach --all (boot $boot)" bc attach --all --tab "$TAB" --batch </dev/null ||
		fail "boot $boot: attach --all failed (exit $?): $(cat .tmo)"
	[ "$(list_names)" = "$NAME" ] || fail "boot $boot: attached '$(list_names)'"
	[ -s "$LOOPFILE" ] || fail "boot $boot: the after-attach hook did not record a loop device"
	LOOP=$(cat "$LOOPFILE")
	[ "$(cat "/sys/block/${LOOP#/dev/}/loop/backing_file" 2>/dev/null)" = "$DEV" ] ||
		fail "boot $boot: $LOOP is not backed by $DEV"
	mountpoint -q "$MNT" || fail "boot $boot: $MNT not mounted by the after-attach hook"
	[ "$(findmnt -n -o FSTYPE "$MNT")" = btrfs ] || fail "boot $boot: $MNT is $(findmnt -n -o FSTYPE "$MNT"), not btrfs"
	tree_check "$MNT" "$TEST_TMP/sums"
	[ -L "$MNT/dir/link" ] && [ "$(readlink "$MNT/dir/link")" = ../one-mib ] || fail "boot $boot: symlink lost"
	if [ "$boot" = 2 ]; then
		tmo 120 "btrfs scrub" btrfs scrub start -B "$MNT" || fail "btrfs scrub failed: $(cat .tmo)"
		grep -q 'no errors found' .tmo || fail "btrfs scrub did not report 'no errors found': $(cat .tmo)"
	fi
	random_file "$MNT/boot-$boot" $((2 * 1024 * 1024 + boot))
	sync
	tree_sums "$MNT" sums
	shutdown "boot $boot"
done

# Offline check of the final state.
tmo 60 attach bc attach bt.img --key-file key --name "$NAME" --fuse "$FUSE_DIR" --read-only || fail "read-only attach failed: $(cat .tmo)"
losetup --find --show --read-only "$DEV" >"$LOOPFILE" || fail "losetup on $DEV failed"
tmo 120 "btrfs check" btrfs check --readonly "$(cat "$LOOPFILE")" || fail "btrfs check --readonly failed: $(cat .tmo)"
release
tmo 60 "detach --all" bc detach --all || fail "final detach --all failed: $(cat .tmo)"
! grep -E 'Sanitizer|runtime error' "$BLOCKCRYPT_RUN_DIR/$NAME.log" >&2 || fail "sanitizer report in the daemon log (above)"
note "btrfs reboot: filesystem back after two attach --all boots (hook: losetup + mount), scrub and check clean"
exit 0
