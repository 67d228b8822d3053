#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# attach of a volume on a Ceph RBD image: served under the image's name as
# an NBD export and a FUSE file; data copied in with nbdcopy and a pattern
# written with qemu-io read back the same over NBD and through the FUSE
# file; list --json shows the rbd: backing.  While it is attached the
# image's exclusive lock keeps every other writer out at once (exit 9,
# naming the daemon's pid): a second attach (same or another runtime
# directory) and `write`, none of which changes the image.  detach
# releases the lock: a write right afterwards goes through promptly, and
# a re-attach serves what is now on the image.
. "$(dirname "$0")/functions.bash"
requires nbdcopy nbdinfo qemu-io cmp timeout /usr/bin/python3
requires_root_fuse "FUSE mounts"
requires_ceph

IMG=$(ceph_image_name att)
R=rbd:$CEPH_POOL/$IMG
MiB=$((1024 * 1024))
SIZE=$((16 * MiB))   # 32 MiB image - 16 MiB LUKS2 header
FUSE_DIR=$TEST_TMP/fuse
mkdir -p "$FUSE_DIR"
printf 'rbd attach passphrase' >key

image_sha() {
	timeout 120 rbd export --no-progress "$CEPH_POOL/$IMG" - 2>export.err | sha256sum | cut -d' ' -f1
	[ -z "$(cat export.err)" ] || fail "rbd export failed: $(cat export.err)"
}
# lock_count: exclusive locks on the image (rbd lock ls).
lock_count() {
	timeout 60 rbd lock ls --format json "$CEPH_POOL/$IMG" |
		/usr/bin/python3 -c 'import json,sys; d = json.load(sys.stdin); print(len(d) if isinstance(d, (list, dict)) else 0)'
}
attach() { # WHEN
	local out
	out=$(timeout 120 "$BLOCKCRYPT" attach "$R" --key-file key --fuse "$FUSE_DIR" 2>attach.err) ||
		fail "$1: attach $R failed: $(cat attach.err)"
	[ "$(echo "$out" | head -n 1)" = "$URI" ] || problem "$1: attach printed '$out', expected $URI first"
	[ -f "$FUSE_DIR/$IMG" ] || fail "$1: no FUSE file $FUSE_DIR/$IMG"
}
serves() { # FILE WHEN: NBD and the FUSE file give FILE's bytes
	timeout 120 nbdcopy "$URI" nbd.out || fail "$2: nbdcopy from $URI failed"
	cmp -s nbd.out "$1" || problem "$2: NBD serves other bytes than expected"
	cmp -s "$FUSE_DIR/$IMG" "$1" || problem "$2: the FUSE file holds other bytes than expected"
}

bc format "$R" --batch --key-file key --size 32M "${FAST_KDF[@]}" --no-progress 2>fmt.err ||
	fail "format $R failed: $(cat fmt.err)"
URI=$(nbd_uri "$IMG")

attach "first attach"
pid=$(daemon_pid "$IMG")
[ "$(timeout 30 nbdinfo --size "$URI")" = "$SIZE" ] || problem "nbdinfo --size is not $SIZE"
bc list --json >list.json || fail "list --json failed"
/usr/bin/python3 - list.json "$IMG" "$R" "$SIZE" "$FUSE_DIR/$IMG" <<'PY' || problem "list --json does not show the RBD volume: $(cat list.json)"
import json, sys
l = json.load(open(sys.argv[1]))
name, backing, size, fuse = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
e = [v for v in l if v["name"] == name]
ok = len(e) == 1 and e[0]["backing"] == backing and e[0]["size"] == size and e[0]["fuse_file"] == fuse \
    and e[0]["read_only"] is False and e[0]["responding"] is True
sys.exit(0 if ok else 1)
PY

# NBD I/O: nbdcopy in and out, a qemu-io pattern; FUSE sees the same.
random_file data "$SIZE"
timeout 120 nbdcopy data "$URI" || fail "nbdcopy into $URI failed"
timeout 60 qemu-io -f raw "$URI" -c "write -P 0x5a $((5 * MiB)) 65536" -c "read -P 0x5a $((5 * MiB)) 65536" >qio.out 2>&1 ||
	fail "qemu-io on $URI failed: $(cat qio.out)"
! grep -q 'Pattern verification failed' qio.out || problem "qemu-io read back another pattern: $(cat qio.out)"
head -c 65536 /dev/zero | tr '\0' '\132' | dd of=data bs=65536 seek=$((5 * MiB / 65536)) conv=notrunc status=none
serves data "written over NBD"

# Other writers are refused at once, naming the holder.
before=$(image_sha)
busy() { # WHAT CMD...: exit 9 within 20 s, naming the daemon's pid
	local what=$1 start=$SECONDS; shift
	expect_exit 9 timeout 120 "$@"
	note "$what: exit 9 after $((SECONDS - start)) s: $ERR"
	[ $((SECONDS - start)) -le 20 ] || problem "$what: took $((SECONDS - start)) s to be refused"
	case $ERR in *"$R"*"pid $pid"*) ;; *) problem "$what: the message does not name $R and the holder (pid $pid): $ERR" ;; esac
}
busy "second attach, same runtime directory" "$BLOCKCRYPT" attach "$R" --key-file key --name other
mkdir -m 700 run2
busy "second attach, another runtime directory" env BLOCKCRYPT_RUN_DIR="$TEST_TMP/run2" "$BLOCKCRYPT" attach "$R" --key-file key
busy "write while attached" "$BLOCKCRYPT" write "$R" --key-file key <data
[ "$(image_sha)" = "$before" ] || problem "the refused writers changed the image"
[ -z "$(ls "$TEST_TMP/run2")" ] || problem "the refused attach left files in its runtime directory: $(ls "$TEST_TMP/run2")"
n=$(bc list --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 1 ] || problem "list --json shows $n attachments, expected the one: $(bc list)"
serves data "after the refused writers"

# detach releases the lock at once; a write then goes through promptly.
bc detach "$IMG" 2>detach.err || fail "detach failed: $(cat detach.err)"
gone "$pid" 30 || fail "the daemon (pid $pid) is still running after detach"
locks=$(lock_count)
[ "$locks" = 0 ] || problem "after detach the image still has $locks exclusive lock(s): $(timeout 60 rbd lock ls "$CEPH_POOL/$IMG")"
random_file d2 $((2 * MiB))
start=$SECONDS
timeout 120 "$BLOCKCRYPT" write "$R" --key-file key <d2 2>write.err || fail "write after detach failed: $(cat write.err)"
took=$((SECONDS - start))
note "write right after detach: $took s"
[ "$took" -le 15 ] || problem "write right after detach took $took s (the daemon's lock or watch outlived it)"
dd if=d2 of=data conv=notrunc status=none

attach "re-attach"
serves data "re-attached"
pid=$(daemon_pid "$IMG")
bc detach "$IMG" 2>detach.err || fail "second detach failed: $(cat detach.err)"
gone "$pid" 30 || fail "the daemon (pid $pid) is still running after the second detach"
check_problems
