#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Tab file entries whose BACKING is an RBD image (rbd:POOL/IMAGE): attach
# --all --tab attaches the auto one (and skips the noauto one), attach
# --from-tab NAME the other, each under its tab name with its rbd: backing
# in list --json, serving over NBD and FUSE the data that blockcrypt write
# put on the image beforehand; detach NAME and detach --all end them and
# release the images' exclusive locks.
. "$(dirname "$0")/functions.bash"
requires nbdcopy cmp timeout /usr/bin/python3
requires_root_fuse "FUSE mounts"
requires_ceph

MiB=$((1024 * 1024))
FUSE_DIR=$TEST_TMP/fuse
mkdir -p "$FUSE_DIR/vola" "$FUSE_DIR/volb"
printf 'rbd tab passphrase' >key

# A volume per entry, holding 1 MiB of known data.
new_rbd_volume() { # IMG DATA
	bc format "rbd:$CEPH_POOL/$1" --batch --key-file key --size 20M "${FAST_KDF[@]}" --no-progress 2>fmt.err ||
		fail "format rbd:$CEPH_POOL/$1 failed: $(cat fmt.err)"
	random_file "$2" "$MiB"
	bc write "rbd:$CEPH_POOL/$1" --key-file key <"$2" 2>write.err || fail "write rbd:$CEPH_POOL/$1 failed: $(cat write.err)"
}
IMG_A=$(ceph_image_name taba)
IMG_B=$(ceph_image_name tabb)
new_rbd_volume "$IMG_A" a.data
new_rbd_volume "$IMG_B" b.data

mkdir -m 755 etc
cat >etc/tab <<EOF
# NAME  BACKING  KEY  OPTIONS
vola  rbd:$CEPH_POOL/$IMG_A  $TEST_TMP/key  fuse=$FUSE_DIR/vola
volb  rbd:$CEPH_POOL/$IMG_B  $TEST_TMP/key  fuse=$FUSE_DIR/volb,noauto
EOF
chmod 644 etc/tab

# attached NAME IMG DATA: NAME is listed with IMG's rbd: backing, and NBD
# and the FUSE file serve DATA at its start.
attached() {
	bc list --json >list.json || fail "list --json failed"
	/usr/bin/python3 - list.json "$1" "rbd:$CEPH_POOL/$2" <<'PY' || problem "$1: not listed with backing rbd:$CEPH_POOL/$2: $(cat list.json)"
import json, sys
e = [v for v in json.load(open(sys.argv[1])) if v["name"] == sys.argv[2]]
sys.exit(0 if len(e) == 1 and e[0]["backing"] == sys.argv[3] else 1)
PY
	timeout 120 nbdcopy "$(nbd_uri "$1")" nbd.out || fail "$1: nbdcopy from $(nbd_uri "$1") failed"
	cmp -s <(head -c "$MiB" nbd.out) "$3" || problem "$1: NBD does not serve the data written to $2"
	cmp -s <(head -c "$MiB" "$FUSE_DIR/$1/$1") "$3" || problem "$1: the FUSE file does not hold the data written to $2"
}
# unlocked IMG: no exclusive lock left on the image.
unlocked() {
	local n
	n=$(timeout 60 rbd lock ls --format json "$CEPH_POOL/$1" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
	[ "$n" = 0 ] || problem "$1: $n exclusive lock(s) left after detach: $(timeout 60 rbd lock ls "$CEPH_POOL/$1")"
}

timeout 180 "$BLOCKCRYPT" attach --all --tab etc/tab --batch >all.out 2>all.err ||
	fail "attach --all --tab failed: $(cat all.err)"
attached vola "$IMG_A" a.data
[ ! -e "$BLOCKCRYPT_RUN_DIR/volb.json" ] || problem "attach --all attached the noauto entry volb"

timeout 180 "$BLOCKCRYPT" attach --from-tab volb --tab etc/tab --batch >one.out 2>one.err ||
	fail "attach --from-tab volb failed: $(cat one.err)"
attached volb "$IMG_B" b.data

pid_a=$(daemon_pid vola)
pid_b=$(daemon_pid volb)
bc detach vola 2>detach.err || fail "detach vola failed: $(cat detach.err)"
gone "$pid_a" 30 || fail "vola's daemon is still running after detach"
unlocked "$IMG_A"
bc detach --all 2>detach.err || fail "detach --all failed: $(cat detach.err)"
gone "$pid_b" 30 || fail "volb's daemon is still running after detach --all"
unlocked "$IMG_B"
[ -z "$(bc list)" ] || problem "list after detach --all: $(bc list)"
check_problems
