#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A real kernel filesystem on the NBD export survives a detach/attach
# cycle, with libnbd's nbdfuse as the NBD client (no kernel nbd module
# needed): volume -> attach (NBD only) -> `nbdfuse -C 4 DIR URI` (the
# export advertises multi-conn: four connections, and list --json must
# count 4 clients) -> loop device on DIR/nbd (size = volume data size) ->
# mkfs.btrfs -> mount -> random files of several MiB, an odd-sized file,
# an empty file, a directory tree and a symlink -> sync, umount,
# losetup -d, fusermount3 -u (nbdfuse exits 0, no clients left) -> detach
# (exit 0) -> attach again with the same key -> nbdfuse -> loop ->
# `btrfs check --readonly` is clean -> mount -> same tree, every
# `sha256sum -c` line OK, `btrfs scrub start -B` finds no errors ->
# umount, losetup -d, fusermount3 -u, detach.  Also: a file's distinctive
# plaintext marker is on the decrypted device but nowhere in the backing.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/tree-lib.bash"
requires cryptsetup nbdfuse losetup mkfs.btrfs btrfs mount umount mountpoint fusermount3 sha256sum grep find /usr/bin/python3

requires_root_fuse "loop devices, mount"
requires_btrfs

NAME=vol
NBD_DIR=$TEST_TMP/nbdfuse
MNT=$TEST_TMP/mnt
DEV=$NBD_DIR/nbd
LOOP=
NBDFUSE_PID=
mkdir -p "$NBD_DIR" "$MNT"

# clients: NBD clients of the attachment, per list --json.
clients() { list_field clients; }

# Whatever happened, unmount and let go of the loop device and of nbdfuse
# before the automatic detach (hooks run in reverse order: this one first).
teardown() {
	drop_mount_and_loop
	if [ -n "$NBDFUSE_PID" ]; then
		fusermount3 -u "$NBD_DIR" 2>/dev/null || fusermount3 -u -z "$NBD_DIR" 2>/dev/null || true
		gone "$NBDFUSE_PID" || kill "$NBDFUSE_PID" 2>/dev/null || true
		gone "$NBDFUSE_PID" || kill -9 "$NBDFUSE_PID" 2>/dev/null || true
		wait "$NBDFUSE_PID" 2>/dev/null || true
		NBDFUSE_PID=
	fi
}
cleanup_fn teardown

# attach_and_loop: attach the volume (NBD only), connect nbdfuse with four
# connections, and put a loop device on nbdfuse's file.
attach_and_loop() {
	local uri i
	bc attach vol.img --key-file key --name "$NAME" >attach.out 2>attach.err ||
		fail "attach failed: $(cat attach.err)"
	uri=$(head -n1 attach.out)
	[ "$uri" = "$(nbd_uri "$NAME")" ] || fail "attach printed URI '$uri', expected '$(nbd_uri "$NAME")'"
	nbdfuse -C 4 "$NBD_DIR" "$uri" >nbdfuse.log 2>&1 &
	NBDFUSE_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ -f "$DEV" ] && break
		kill -0 "$NBDFUSE_PID" 2>/dev/null || fail "nbdfuse $uri exited early: $(cat nbdfuse.log)"
		sleep 0.05
	done
	[ -f "$DEV" ] || fail "nbdfuse did not expose $DEV within 10 s: $(cat nbdfuse.log)"
	[ "$(stat -c %s "$DEV")" = $((256 * 1024 * 1024 - DATA_OFFSET)) ] ||
		fail "$DEV is $(stat -c %s "$DEV") bytes, expected $((256 * 1024 * 1024 - DATA_OFFSET))"
	for ((i = 0; i < 100; i++)); do c=$(clients); [ "$c" = 4 ] && break; sleep 0.05; done
	[ "$c" = 4 ] || fail "list --json counts '$c' NBD clients with nbdfuse -C 4, expected 4"
	LOOP=$(losetup --find --show "$DEV") || fail "losetup --find --show $DEV failed"
	[ -b "$LOOP" ] || fail "losetup gave '$LOOP', not a block device"
}

# release_and_detach: umount, drop the loop device, stop nbdfuse, detach;
# every step must succeed.
release_and_detach() {
	local rc=0
	umount_and_unloop
	# (on a host with udev, blkid may still hold the file for a moment
	# after losetup -d: busy, so try again)
	for _ in $(seq 50); do fusermount3 -u "$NBD_DIR" 2>umount.err && break; sleep 0.2; done
	! mountpoint -q "$NBD_DIR" || fail "fusermount3 -u $NBD_DIR failed: $(cat umount.err)"
	gone "$NBDFUSE_PID" || fail "nbdfuse (pid $NBDFUSE_PID) still running 10 s after fusermount3 -u"
	wait "$NBDFUSE_PID" || rc=$?
	NBDFUSE_PID=
	[ "$rc" = 0 ] || fail "nbdfuse exited with status $rc: $(cat nbdfuse.log)"
	for ((i = 0; i < 100; i++)); do c=$(clients); [ "$c" = 0 ] && break; sleep 0.05; done
	[ "$c" = 0 ] || fail "list --json still counts '$c' NBD clients after nbdfuse exited"
	detach_ok
	[ ! -e "$BLOCKCRYPT_RUN_DIR/$NAME.sock" ] || fail "NBD socket still there after detach"
}

new_fs_volume

# First life: make the filesystem and fill it.
attach_and_loop
mkfs_and_mount
fill_tree "$MNT"
release_and_detach

# The plaintext went through the NBD export and is not in the backing.
check_marker

# Second life: same key, everything still there and consistent.
attach_and_loop
check_and_mount
check_tree "$MNT"
scrub_clean
release_and_detach
# The daemon's stderr goes to its log: no sanitizer report in there.
check_daemon_log
note "btrfs on loop on nbdfuse (4 NBD connections): 35 files intact across detach/attach, check and scrub clean"
exit 0
