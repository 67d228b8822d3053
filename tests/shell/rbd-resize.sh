#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Online growth of an attached volume on a Ceph RBD image, LUKS2 and LUKS1:
# `rbd resize` makes the image bigger while it is attached (librbd hands
# the resize to the lock holder, our daemon), `blockcrypt resize NAME`
# then grows the NBD export, the FUSE file and list --json by exactly the
# image's growth (the new size is the image size minus the data offset);
# what was written before reads back unchanged, the new space takes data,
# and after detach blockcrypt cat gives all of it.
. "$(dirname "$0")/functions.bash"
requires nbdcopy nbdinfo cmp timeout /usr/bin/python3
requires_root_fuse "FUSE mounts"
requires_ceph

MiB=$((1024 * 1024))
FUSE_DIR=$TEST_TMP/fuse
mkdir -p "$FUSE_DIR"
printf 'rbd resize passphrase' >key

size_field() { # NAME: size per list --json
	bc list --json | /usr/bin/python3 -c '
import json, sys
print([v for v in json.load(sys.stdin) if v["name"] == sys.argv[1]][0]["size"])' "$1"
}
sizes_are() { # NAME BYTES WHEN: list --json, the FUSE file, a new NBD connection
	local s
	s=$(size_field "$1"); [ "$s" = "$2" ] || problem "$1, $3: list --json size $s, expected $2"
	s=$(stat -c %s "$FUSE_DIR/$1"); [ "$s" = "$2" ] || problem "$1, $3: FUSE file size $s, expected $2"
	s=$(timeout 30 nbdinfo --size "$(nbd_uri "$1")") || fail "$1, $3: nbdinfo --size failed"
	[ "$s" = "$2" ] || problem "$1, $3: a new NBD connection sees $s bytes, expected $2"
}

# grow TAG FORMAT-ARGS...: a 32 MiB image formatted with FORMAT-ARGS, grown
# to 48 MiB while attached.
grow() {
	local tag=$1 img spec off old new uri pid; shift
	img=$(ceph_image_name "$tag")
	spec=rbd:$CEPH_POOL/$img
	bc format "$spec" --batch --key-file key --size 32M "${FAST_KDF[@]}" --no-progress "$@" 2>fmt.err ||
		fail "$tag: format failed: $(cat fmt.err)"
	off=$(bc dump --json "$spec" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data_offset"])')
	old=$((32 * MiB - off))
	new=$((48 * MiB - off))
	note "$tag: data offset $off, $old -> $new bytes"
	timeout 120 "$BLOCKCRYPT" attach "$spec" --key-file key --fuse "$FUSE_DIR" >/dev/null 2>attach.err ||
		fail "$tag: attach failed: $(cat attach.err)"
	uri=$(nbd_uri "$img")
	pid=$(daemon_pid "$img")
	sizes_are "$img" "$old" "attached"
	random_file old.data "$old"
	timeout 120 nbdcopy old.data "$uri" || fail "$tag: nbdcopy into $uri failed"

	timeout 120 rbd resize --no-progress --size 48M "$CEPH_POOL/$img" 2>resize.err ||
		fail "$tag: rbd resize of the attached image failed: $(cat resize.err)"
	sizes_are "$img" "$old" "image grown, before blockcrypt resize"
	timeout 60 "$BLOCKCRYPT" resize "$img" >resize.out 2>&1 || fail "$tag: blockcrypt resize failed: $(cat resize.out)"
	note "$tag: resize said: $(cat resize.out)"
	sizes_are "$img" "$new" "after resize"

	timeout 120 nbdcopy "$uri" all.out || fail "$tag: nbdcopy from $uri failed"
	cmp -s <(head -c "$old" all.out) old.data || problem "$tag: the old data changed across the resize"
	random_file tail.data $((new - old))
	dd if=tail.data of="$FUSE_DIR/$img" bs=1M seek="$old" oflag=seek_bytes conv=notrunc,fsync status=none ||
		fail "$tag: writing the new space through the FUSE file failed"
	timeout 120 nbdcopy "$uri" all.out || fail "$tag: nbdcopy from $uri failed"
	cat old.data tail.data >want.data
	cmp -s all.out want.data || problem "$tag: the grown export does not hold the old data and the new tail"

	bc detach "$img" 2>detach.err || fail "$tag: detach failed: $(cat detach.err)"
	gone "$pid" 30 || fail "$tag: the daemon is still running after detach"
	bc cat "$spec" --key-file key >cat.out 2>cat.err || fail "$tag: cat after detach failed: $(cat cat.err)"
	cmp -s cat.out want.data || problem "$tag: cat after detach differs from what was written ($(stat -c %s cat.out) bytes)"
}

grow luks2
grow luks1 --type luks1
check_problems
