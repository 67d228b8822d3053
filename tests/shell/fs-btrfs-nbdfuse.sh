#!/usr/bin/env bash
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
. "$(dirname "$0")/functions.sh"
requires cryptsetup nbdfuse losetup mkfs.btrfs btrfs mount umount mountpoint fusermount3 sha256sum grep find /usr/bin/python3

[ "$(id -u)" = 0 ] || { echo "SKIP: $(basename "$0") needs root (loop devices, mount)" >&2; exit 77; }
[ -c /dev/fuse ] || { echo "SKIP: $(basename "$0") needs /dev/fuse" >&2; exit 77; }
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || true
grep -qw btrfs /proc/filesystems || { echo "SKIP: $(basename "$0"): the kernel has no btrfs (modprobe btrfs failed)" >&2; exit 77; }

NAME=vol
NBD_DIR=$TEST_TMP/nbdfuse
MNT=$TEST_TMP/mnt
DEV=$NBD_DIR/nbd
LOOP=
NBDFUSE_PID=
mkdir -p "$NBD_DIR" "$MNT"

# wait_loop_gone LOOP: losetup -d only sets autoclear while someone (udev,
# blkid) still has the device open; nbdfuse's file is released only when
# the loop device really lets go of it.
# (Compare the path: another test may already have reused the device.)
wait_loop_gone() {
	local sys=/sys/block/${1#/dev/}/loop/backing_file i real
	real=$(readlink -f "$DEV")
	for ((i = 0; i < 200; i++)); do
		[ "$(cat "$sys" 2>/dev/null)" = "$real" ] || return 0
		sleep 0.05
	done
	return 1
}

# wait_gone PID: up to 10 s for a process of ours to exit.
wait_gone() {
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# clients: NBD clients of the attachment, per list --json.
clients() {
	bc list --json | /usr/bin/python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        print(v.get("clients", "missing"))' "$NAME"
}

# Whatever happened, unmount and let go of the loop device and of nbdfuse
# before the automatic detach (hooks run in reverse order: this one first).
teardown() {
	if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
	if [ -n "$LOOP" ]; then
		btrfs device scan --forget "$LOOP" >/dev/null 2>&1 || true
		losetup -d "$LOOP" 2>/dev/null || true
		wait_loop_gone "$LOOP" || true
		LOOP=
	fi
	if [ -n "$NBDFUSE_PID" ]; then
		fusermount3 -u "$NBD_DIR" 2>/dev/null || fusermount3 -u -z "$NBD_DIR" 2>/dev/null || true
		wait_gone "$NBDFUSE_PID" || kill "$NBDFUSE_PID" 2>/dev/null || true
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
	sync
	umount "$MNT" || fail "umount $MNT failed"
	btrfs device scan --forget "$LOOP" >/dev/null 2>&1 || true
	losetup -d "$LOOP" || fail "losetup -d $LOOP failed"
	wait_loop_gone "$LOOP" || fail "$LOOP still holds $DEV 10 s after losetup -d"
	LOOP=
	fusermount3 -u "$NBD_DIR" || fail "fusermount3 -u $NBD_DIR failed"
	wait_gone "$NBDFUSE_PID" || fail "nbdfuse (pid $NBDFUSE_PID) still running 10 s after fusermount3 -u"
	wait "$NBDFUSE_PID" || rc=$?
	NBDFUSE_PID=
	[ "$rc" = 0 ] || fail "nbdfuse exited with status $rc: $(cat nbdfuse.log)"
	for ((i = 0; i < 100; i++)); do c=$(clients); [ "$c" = 0 ] && break; sleep 0.05; done
	[ "$c" = 0 ] || fail "list --json still counts '$c' NBD clients after nbdfuse exited"
	bc detach "$NAME" >detach.out 2>detach.err ||
		fail "detach $NAME failed (exit $?): $(cat detach.err); log: $(tail -5 "$BLOCKCRYPT_RUN_DIR/$NAME.log" 2>/dev/null)"
	[ ! -e "$BLOCKCRYPT_RUN_DIR/$NAME.sock" ] || fail "NBD socket still there after detach"
}

VOLUME_SIZE=256M new_volume vol.img key
DATA_OFFSET=$(data_offset vol.img)
[ -n "$DATA_OFFSET" ] || fail "cannot find the data offset of vol.img"

# First life: make the filesystem and fill it.
attach_and_loop
mkfs.btrfs -q -f -L bcfs "$LOOP" >mkfs.out 2>&1 || fail "mkfs.btrfs on $LOOP failed: $(cat mkfs.out)"
mount "$LOOP" "$MNT" || fail "mount $LOOP failed"

MARK="blockcrypt-plaintext-marker-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
random_file "$MNT/one-mib" $((1024 * 1024))
random_file "$MNT/three-mib" $((3 * 1024 * 1024))
random_file "$MNT/odd-size" $((5 * 1024 * 1024 + 4097))
: >"$MNT/empty"
mkdir -p "$MNT/tree/a/b/c" "$MNT/tree/x/y"
for d in tree tree/a tree/a/b tree/a/b/c tree/x tree/x/y; do
	for i in 1 2 3 4 5; do random_file "$MNT/$d/f$i" $((RANDOM * 7 + i)); done
done
ln -s ../one-mib "$MNT/tree/link"
for ((i = 0; i < 4096; i++)); do echo "$MARK $i"; done >"$MNT/marker.txt"
(cd "$MNT" && find . -printf '%y %s %p %l\n' | LC_ALL=C sort) >tree.before
(cd "$MNT" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >sums
[ "$(wc -l <sums)" = 35 ] || fail "expected 35 files in the checksum list, got $(wc -l <sums)"
release_and_detach

# The plaintext went through the NBD export and is not in the backing.
n=$(bc cat vol.img --key-file key 2>cat.err | grep -c -a -F "$MARK") ||
	fail "marker not found in the decrypted device by 'blockcrypt cat' (count '$n'; $(cat cat.err))"
n=$(grep -c -a -F "$MARK" vol.img || true)
[ "$n" = 0 ] || fail "plaintext marker found $n times in the backing file vol.img"

# Second life: same key, everything still there and consistent.
attach_and_loop
btrfs check --readonly "$LOOP" >check.out 2>&1 || fail "btrfs check --readonly $LOOP failed: $(cat check.out)"
mount "$LOOP" "$MNT" || fail "mount $LOOP after re-attach failed"
(cd "$MNT" && find . -printf '%y %s %p %l\n' | LC_ALL=C sort) >tree.after
diff tree.before tree.after >tree.diff || fail "directory tree changed across detach/attach: $(cat tree.diff)"
(cd "$MNT" && sha256sum --quiet -c "$TEST_TMP/sums") >sumcheck.out 2>&1 ||
	fail "checksums differ after detach/attach: $(cat sumcheck.out)"
btrfs scrub start -B "$MNT" >scrub.out 2>&1 || fail "btrfs scrub failed (exit $?): $(cat scrub.out)"
grep -q 'no errors found' scrub.out || fail "btrfs scrub did not report 'no errors found': $(cat scrub.out)"
release_and_detach
# The daemon's stderr goes to its log: no sanitizer report in there.
[ -s "$BLOCKCRYPT_RUN_DIR/$NAME.log" ] || fail "daemon log $BLOCKCRYPT_RUN_DIR/$NAME.log missing or empty"
! grep -E 'Sanitizer|runtime error' "$BLOCKCRYPT_RUN_DIR/$NAME.log" >&2 || fail "sanitizer report in the daemon log (above)"
note "btrfs on loop on nbdfuse (4 NBD connections): 35 files intact across detach/attach, check and scrub clean"
exit 0
