# SPDX-License-Identifier: GPL-2.0-or-later
# Shared steps of the filesystem shell tests (a real filesystem on an
# attached volume survives a detach/attach cycle).  Source it after
# functions.bash:
#   . "$(dirname "$0")/functions.bash"
#   . "$TESTS_DIR/shell/tree-lib.bash"      (functions.bash has cd-ed away)
# (Not a test itself: meson runs tests/shell/*.sh only.)
#
# The tests set NAME (the attachment), DEV (the file the filesystem lives
# on: FUSE file or nbdfuse file), MNT (btrfs mount point), FUSE_DIR (for
# --fuse), LOOP (loop device, empty when none).  The volume is vol.img with
# key file "key"; working files (sums, tree.before, ...) are in $TEST_TMP.

# new_fs_volume: a 256 MiB volume vol.img (key file "key"); sets DATA_OFFSET.
new_fs_volume() {
	VOLUME_SIZE=256M new_volume vol.img key
	DATA_OFFSET=$(data_offset vol.img)
	[ -n "$DATA_OFFSET" ] || fail "cannot find the data offset of vol.img"
}

# list_field FIELD: FIELD of attachment $NAME, per list --json ("missing"
# when absent).
list_field() {
	bc list --json | /usr/bin/python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        print(v.get(sys.argv[2], "missing"))' "$NAME" "$1"
}

# fuse_open: opens of the FUSE file, per list --json.
fuse_open() { list_field fuse_open; }

# attach_fuse: attach vol.img as $NAME with its FUSE file in $FUSE_DIR;
# attach must print the FUSE file $DEV, which must have the data size.
attach_fuse() {
	bc attach vol.img --key-file key --name "$NAME" --fuse "$FUSE_DIR" >attach.out 2>attach.err ||
		fail "attach failed: $(cat attach.err)"
	[ "$(sed -n 2p attach.out)" = "$DEV" ] || fail "attach printed '$(cat attach.out)', expected the FUSE file $DEV on line 2"
	[ -f "$DEV" ] || fail "FUSE file $DEV missing after attach"
	[ "$(stat -c %s "$DEV")" = $((256 * 1024 * 1024 - DATA_OFFSET)) ] ||
		fail "FUSE file is $(stat -c %s "$DEV") bytes, expected $((256 * 1024 * 1024 - DATA_OFFSET))"
}

# detach_ok: a plain `blockcrypt detach $NAME` must succeed.
detach_ok() {
	bc detach "$NAME" >detach.out 2>detach.err ||
		fail "detach $NAME failed (exit $?): $(cat detach.err); log: $(tail -5 "$BLOCKCRYPT_RUN_DIR/$NAME.log" 2>/dev/null)"
}

# wait_loop_gone LOOP: the loop device has let go of $DEV.
wait_loop_gone() { loop_released "$1" "$DEV"; }

# drop_mount_and_loop: for teardown; whatever state we are in, unmount
# $MNT and let go of $LOOP, quietly and without failing.
drop_mount_and_loop() {
	if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
	if [ -n "$LOOP" ]; then
		btrfs device scan --forget "$LOOP" >/dev/null 2>&1 || true
		losetup -d "$LOOP" 2>/dev/null || true
		wait_loop_gone "$LOOP" || true
		LOOP=
	fi
}

# umount_and_unloop: sync, umount $MNT, drop the loop device $LOOP; every
# step must succeed and the loop device must let go of $DEV.
umount_and_unloop() {
	sync
	umount "$MNT" || fail "umount $MNT failed"
	btrfs device scan --forget "$LOOP" >/dev/null 2>&1 || true
	losetup -d "$LOOP" || fail "losetup -d $LOOP failed"
	wait_loop_gone "$LOOP" || fail "$LOOP still holds $DEV 10 s after losetup -d"
	LOOP=
}

# mkfs_and_mount: a new btrfs on $LOOP, mounted on $MNT.
mkfs_and_mount() {
	mkfs.btrfs -q -f -L bcfs "$LOOP" >mkfs.out 2>&1 || fail "mkfs.btrfs on $LOOP failed: $(cat mkfs.out)"
	mount "$LOOP" "$MNT" || fail "mount $LOOP failed"
}

# check_and_mount: after re-attach, `btrfs check --readonly` of $LOOP is
# clean and it mounts on $MNT again.
check_and_mount() {
	btrfs check --readonly "$LOOP" >check.out 2>&1 || fail "btrfs check --readonly $LOOP failed: $(cat check.out)"
	mount "$LOOP" "$MNT" || fail "mount $LOOP after re-attach failed"
}

# scrub_clean: `btrfs scrub start -B $MNT` succeeds and finds no errors.
scrub_clean() {
	btrfs scrub start -B "$MNT" >scrub.out 2>&1 || fail "btrfs scrub failed (exit $?): $(cat scrub.out)"
	grep -q 'no errors found' scrub.out || fail "btrfs scrub did not report 'no errors found': $(cat scrub.out)"
}

# fill_tree DIR: in DIR, random files of several MiB, an odd-sized and an
# empty file, a directory tree of 30 small random files, a symlink and
# marker.txt (lines of the random plaintext marker, set in MARK); record
# the tree in tree.before and the checksums of its 35 files in sums.
fill_tree() {
	local dir=$1 d i
	MARK="blockcrypt-plaintext-marker-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	random_file "$dir/one-mib" $((1024 * 1024))
	random_file "$dir/three-mib" $((3 * 1024 * 1024))
	random_file "$dir/odd-size" $((5 * 1024 * 1024 + 4097))
	: >"$dir/empty"
	mkdir -p "$dir/tree/a/b/c" "$dir/tree/x/y"
	for d in tree tree/a tree/a/b tree/a/b/c tree/x tree/x/y; do
		for i in 1 2 3 4 5; do random_file "$dir/$d/f$i" $((RANDOM * 7 + i)); done
	done
	ln -s ../one-mib "$dir/tree/link"
	for ((i = 0; i < 4096; i++)); do echo "$MARK $i"; done >"$dir/marker.txt"
	(cd "$dir" && find . -printf '%y %s %p %l\n' | LC_ALL=C sort) >tree.before
	(cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >sums
	[ "$(wc -l <sums)" = 35 ] || fail "expected 35 files in the checksum list, got $(wc -l <sums)"
}

# check_marker: with the volume detached, MARK is in the decrypted data
# (`blockcrypt cat`) and nowhere in the backing file vol.img.
check_marker() {
	local n
	n=$(bc cat vol.img --key-file key 2>cat.err | grep -c -a -F "$MARK") ||
		fail "marker not found in the decrypted device by 'blockcrypt cat' (count '$n'; $(cat cat.err))"
	n=$(grep -c -a -F "$MARK" vol.img || true)
	[ "$n" = 0 ] || fail "plaintext marker found $n times in the backing file vol.img"
}

# check_tree DIR: DIR holds the same tree as tree.before, and every file
# matches its recorded checksum.
check_tree() {
	(cd "$1" && find . -printf '%y %s %p %l\n' | LC_ALL=C sort) >tree.after
	diff tree.before tree.after >tree.diff || fail "directory tree changed across detach/attach: $(cat tree.diff)"
	(cd "$1" && sha256sum --quiet -c "$TEST_TMP/sums") >sumcheck.out 2>&1 ||
		fail "checksums differ after detach/attach: $(cat sumcheck.out)"
}

# check_daemon_log: the daemon's stderr goes to its log: it exists and has
# no sanitizer report in it.
check_daemon_log() {
	[ -s "$BLOCKCRYPT_RUN_DIR/$NAME.log" ] || fail "daemon log $BLOCKCRYPT_RUN_DIR/$NAME.log missing or empty"
	! grep -E 'Sanitizer|runtime error' "$BLOCKCRYPT_RUN_DIR/$NAME.log" >&2 || fail "sanitizer report in the daemon log (above)"
}
