#!/usr/bin/env bash
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
. "$(dirname "$0")/functions.sh"
requires cryptsetup losetup mkfs.btrfs btrfs mount umount mountpoint fusermount3 sha256sum grep find /usr/bin/python3

[ "$(id -u)" = 0 ] || { echo "SKIP: $(basename "$0") needs root (loop devices, mount)" >&2; exit 77; }
[ -c /dev/fuse ] || { echo "SKIP: $(basename "$0") needs /dev/fuse" >&2; exit 77; }
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || true
grep -qw btrfs /proc/filesystems || { echo "SKIP: $(basename "$0"): the kernel has no btrfs (modprobe btrfs failed)" >&2; exit 77; }

NAME=vol
FUSE_DIR=$TEST_TMP/fuse
MNT=$TEST_TMP/mnt
DEV=$FUSE_DIR/$NAME
LOOP=
mkdir -p "$FUSE_DIR" "$MNT"

# wait_loop_gone LOOP: losetup -d only sets autoclear while someone (udev,
# blkid) still has the device open; the FUSE file is released only when
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

# fuse_open: opens of the FUSE file, per list --json.
fuse_open() {
	bc list --json | /usr/bin/python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        print(v.get("fuse_open", "missing"))' "$NAME"
}

# Whatever happened, unmount and let go of the loop device before the
# automatic detach (hooks run in reverse order: this one runs first).
teardown() {
	if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
	if [ -n "$LOOP" ]; then
		btrfs device scan --forget "$LOOP" >/dev/null 2>&1 || true
		losetup -d "$LOOP" 2>/dev/null || true
		wait_loop_gone "$LOOP" || true
		LOOP=
	fi
}
cleanup_fn teardown

# attach_and_loop: attach the volume with its FUSE file, check what attach
# prints, and put a loop device on the FUSE file.
attach_and_loop() {
	bc attach vol.img --key-file key --name "$NAME" --fuse "$FUSE_DIR" >attach.out 2>attach.err ||
		fail "attach failed: $(cat attach.err)"
	[ "$(sed -n 2p attach.out)" = "$DEV" ] || fail "attach printed '$(cat attach.out)', expected the FUSE file $DEV on line 2"
	[ -f "$DEV" ] || fail "FUSE file $DEV missing after attach"
	[ "$(stat -c %s "$DEV")" = $((256 * 1024 * 1024 - DATA_OFFSET)) ] ||
		fail "FUSE file is $(stat -c %s "$DEV") bytes, expected $((256 * 1024 * 1024 - DATA_OFFSET))"
	LOOP=$(losetup --find --show "$DEV") || fail "losetup --find --show $DEV failed"
	[ -b "$LOOP" ] || fail "losetup gave '$LOOP', not a block device"
	c=$(fuse_open); [ "$c" -ge 1 ] 2>/dev/null || fail "list --json: fuse_open '$c' while $LOOP holds the FUSE file, expected >= 1"
}

# release_and_detach: umount, drop the loop device, detach; every step
# must succeed and the FUSE mount must be gone afterwards.
release_and_detach() {
	sync
	umount "$MNT" || fail "umount $MNT failed"
	btrfs device scan --forget "$LOOP" >/dev/null 2>&1 || true
	losetup -d "$LOOP" || fail "losetup -d $LOOP failed"
	wait_loop_gone "$LOOP" || fail "$LOOP still holds $DEV 10 s after losetup -d"
	LOOP=
	for ((i = 0; i < 100; i++)); do c=$(fuse_open); [ "$c" = 0 ] && break; sleep 0.05; done
	[ "$c" = 0 ] || fail "list --json: fuse_open '$c' after the loop device let go, expected 0"
	bc detach "$NAME" >detach.out 2>detach.err ||
		fail "detach $NAME failed (exit $?): $(cat detach.err); log: $(tail -5 "$BLOCKCRYPT_RUN_DIR/$NAME.log" 2>/dev/null)"
	! mountpoint -q "$FUSE_DIR" || fail "FUSE mount $FUSE_DIR still there after detach"
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

# The plaintext went through the decrypted device and is not in the backing.
n=$(bc cat vol.img --key-file key 2>cat.err | grep -c -a -F "$MARK") ||
	fail "marker not found in the decrypted device by 'blockcrypt cat' (count '$n'; $(cat cat.err))"
n=$(grep -c -a -F "$MARK" vol.img || true)
[ "$n" = 0 ] || fail "plaintext marker found $n times in the backing file vol.img"

# Second life: same key, everything still there and consistent.
attach_and_loop
btrfs check --readonly "$LOOP" >check.out 2>&1 || fail "btrfs check --readonly $LOOP failed: $(cat check.out)"
mount "$LOOP" "$MNT" || fail "mount $LOOP after re-attach failed"
# While the loop device holds the FUSE file, a plain detach must refuse
# (exit 9) and leave everything working.
expect_exit 9 bc detach "$NAME"
[ -f "$DEV" ] || fail "FUSE file gone after a refused detach"
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
note "btrfs on loop on FUSE file: 35 files intact across detach/attach, check and scrub clean"
exit 0
