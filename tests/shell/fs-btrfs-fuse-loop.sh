#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A real kernel filesystem on the FUSE file survives a detach/attach cycle:
# volume -> attach --fuse -> loop device on the decrypted FUSE file (list
# --json counts the open) -> mkfs.btrfs -> mount -> random files of several
# MiB, an odd-sized file, an empty file, a directory tree and a symlink ->
# sync, umount, losetup -d (fuse_open back to 0) -> detach (exit 0, FUSE
# mount gone) -> attach again with the same key -> loop -> `btrfs check
# --readonly` is clean -> mount -> a plain detach now refuses with exit 9
# (the loop device holds the FUSE file) and changes nothing -> same tree,
# every `sha256sum -c` line OK, `btrfs scrub start -B` finds no errors ->
# umount, losetup -d, detach.  Also: a file's distinctive plaintext marker
# is on the decrypted device (`blockcrypt cat` | grep finds it) but nowhere
# in the backing file.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/tree-lib.bash"
requires cryptsetup losetup mkfs.btrfs btrfs mount umount mountpoint fusermount3 sha256sum grep find /usr/bin/python3

requires_root_fuse "loop devices, mount"
requires_btrfs

NAME=vol
FUSE_DIR=$TEST_TMP/fuse
MNT=$TEST_TMP/mnt
DEV=$FUSE_DIR/$NAME
LOOP=
mkdir -p "$FUSE_DIR" "$MNT"

# Whatever happened, unmount and let go of the loop device before the
# automatic detach (hooks run in reverse order: this one runs first).
cleanup_fn drop_mount_and_loop

# attach_and_loop: attach the volume with its FUSE file, check what attach
# prints, and put a loop device on the FUSE file.
attach_and_loop() {
	attach_fuse
	LOOP=$(losetup --find --show "$DEV") || fail "losetup --find --show $DEV failed"
	[ -b "$LOOP" ] || fail "losetup gave '$LOOP', not a block device"
	c=$(fuse_open); [ "$c" -ge 1 ] 2>/dev/null || fail "list --json: fuse_open '$c' while $LOOP holds the FUSE file, expected >= 1"
}

# release_and_detach: umount, drop the loop device, detach; every step
# must succeed and the FUSE mount must be gone afterwards.
release_and_detach() {
	umount_and_unloop
	for ((i = 0; i < 100; i++)); do c=$(fuse_open); [ "$c" = 0 ] && break; sleep 0.05; done
	[ "$c" = 0 ] || fail "list --json: fuse_open '$c' after the loop device let go, expected 0"
	detach_ok
	! mountpoint -q "$FUSE_DIR" || fail "FUSE mount $FUSE_DIR still there after detach"
	[ ! -e "$BLOCKCRYPT_RUN_DIR/$NAME.sock" ] || fail "NBD socket still there after detach"
}

new_fs_volume

# First life: make the filesystem and fill it.
attach_and_loop
mkfs_and_mount
fill_tree "$MNT"
release_and_detach

# The plaintext went through the decrypted device and is not in the backing.
check_marker

# Second life: same key, everything still there and consistent.
attach_and_loop
check_and_mount
# While the loop device holds the FUSE file, a plain detach must refuse
# (exit 9) and leave everything working.
expect_exit 9 bc detach "$NAME"
[ -f "$DEV" ] || fail "FUSE file gone after a refused detach"
check_tree "$MNT"
scrub_clean
release_and_detach
# The daemon's stderr goes to its log: no sanitizer report in there.
check_daemon_log
note "btrfs on loop on FUSE file: 35 files intact across detach/attach, check and scrub clean"
exit 0
