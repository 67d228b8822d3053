#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job, end to end, on a file-backed default (run as root on
# Debian 12; installs what it needs):
#   1. a LUKS2 volume in a file (the stand-in for a ZVOL), data written and
#      read through it, its header shown;
#   2. its key moved into a PKCS#11 token (softhsm2 here): a
#      non-extractable AES key wraps the unlock secret;
#   3. attached from a tab file: an NBD export plus a FUSE file, with a ZFS
#      pool (zfs-fuse; checksum=sha256, a canmount=off parent, a child
#      dataset, a snapshot) on top;
#   4. "reboot": export, detach --all, then the one step `attach --all`
#      brings the pool back (after-attach imports it), data checked;
#   5. the backing grows: resize online, the pool expands.
# With --rbd, the same job on Ceph RBD instead of a file, on a throw-away
# single-node cluster (tests/ceph/cluster.sh, all on 127.0.0.1, under
# DIR/ceph, stopped at exit):
#   R1. the cluster starts (20-45 s);
#   R2. `format rbd:rbd/demo --size 512M` creates the image and a LUKS2
#       volume on it; data written and read, ciphertext only in the image;
#   R3. attached (NBD + FUSE), so it holds the image's exclusive lock: a
#       second attach is refused (exit 9); ext4 on a loop device over the
#       FUSE file, files written; detached;
#   R4. attached again: the file system checks clean, the files are intact;
#   R5. the attaching host "dies" (kill -9): a plain attach is still
#       refused (exit 9: a dead holder looks like a slow one), attach
#       --break-lock blocklists (fences) the dead client and takes the
#       lock; the files are intact.
# Usage: scripts/demo.sh [--rbd] [DIR]   (default: a new temporary directory)
set -euo pipefail
rbd=0
if [ "${1:-}" = --rbd ]; then rbd=1; shift; fi
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" --test
"$top/scripts/build.sh" build
bc="$top/build/src/blockcrypt"
dir=${1:-$(mktemp -d /tmp/blockcrypt-demo.XXXXXX)}
mkdir -p "$dir"
cd "$dir"
umask 077
export BLOCKCRYPT_RUN_DIR="$dir/run"
step() { printf '\n== %s\n' "$*"; }

# ---- scripts/demo.sh --rbd: the volume on a Ceph RBD image -------------
# Globals: the cluster's directory and the loop device in use (for the
# cleanup at exit).
cluster=""
loop=""
rbd_demo() {
	local img=demo spec out rc pid off holder start
	dir=$PWD     # DIR may have been relative
	cluster=$dir/ceph
	# cluster.sh keeps admin sockets (at most 107 bytes a path) in its DIR.
	[ ${#cluster} -le 60 ] || cluster=$(mktemp -d /tmp/bc-demo-ceph.XXXXXX)
	if [ -e "$cluster" ] && [ -n "$(ls -A "$cluster")" ]; then
		grep -qs 'Made by tests/ceph/cluster.sh' "$cluster/ceph.conf" ||
			{ echo "$cluster is in the way (not a demo cluster): choose another DIR"; exit 1; }
		"$top/tests/ceph/cluster.sh" stop "$cluster"   # an earlier run's
		rm -rf "$cluster"
	fi
	trap rbd_cleanup EXIT
	step "R1. a throw-away Ceph cluster: one mon, mgr and OSD on 127.0.0.1, in $cluster (20-45 s)"
	# (Not eval "$(...)": that would hide a failed start.)
	out=$("$top/tests/ceph/cluster.sh" start "$cluster")
	eval "$out"
	export CEPH_CONF     # every Ceph client, blockcrypt too, finds the cluster through it
	ceph health

	step "R2. format: a 512 MiB RBD image and a LUKS2 volume on it, in one step"
	spec=rbd:rbd/$img
	head -c 32 /dev/urandom | base64 > demo.key     # demo only: normally a typed passphrase
	"$bc" format "$spec" --size 512M --key-file demo.key --batch --no-wipe
	rbd info "rbd/$img" | sed -n '1,4p'
	head -c 10M /dev/urandom > plain.bin
	"$bc" write "$spec" --key-file demo.key < plain.bin
	"$bc" cat "$spec" --key-file demo.key | head -c 10M | cmp - plain.bin && echo "10 MiB written and read back identically"
	off=$("$bc" dump "$spec" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_offset"])')
	# The raw image, read with librbd's python binding (Debian's python3,
	# where python3-rbd lives): ciphertext only.
	/usr/bin/python3 - "$img" "$off" plain.bin <<'PY'
import os, sys, rados, rbd
name, off, plain = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "rb").read()
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster, cluster.open_ioctx("rbd") as io, \
        rbd.Image(io, name, read_only=True) as image:
    raw = image.read(off, len(plain))
if len(raw) != len(plain) or raw == plain:
    sys.exit("plaintext in the image!")
print("the image holds ciphertext only (%d MiB read at offset %d MiB)" % (len(raw) >> 20, off >> 20))
PY
	# The explicit spelling, without CEPH_CONF: the config file and the
	# cephx user in the backing itself.
	env -u CEPH_CONF "$bc" dump "$spec:conf=$CEPH_CONF:id=admin" | sed -n '1,20p'

	step "R3. attach: NBD + FUSE, holding the image's exclusive lock; ext4 on it"
	mkdir -p fuse mnt
	"$bc" attach "$spec" --name demo --key-file demo.key --fuse "$dir/fuse"
	"$bc" list
	rbd lock ls "rbd/$img"     # the daemon's Ceph client holds the exclusive lock
	if "$bc" attach "$spec" --name demo2 --key-file demo.key 2>second.err; then
		echo "a second attach of the same image succeeded: two writers!"; exit 1
	else
		rc=$?
	fi
	[ "$rc" = 9 ] || { echo "a second attach exited $rc, not 9 (busy): $(cat second.err)"; exit 1; }
	echo "a second attach is refused (exit 9): $(cat second.err)"
	loop=$(losetup --find --show "$dir/fuse/demo")
	mkfs.ext4 -q "$loop"
	mount "$loop" mnt
	mkdir mnt/docs
	cp plain.bin mnt/
	seq 1 100000 > mnt/docs/numbers.txt
	cp "$top/README.md" mnt/docs/
	(cd mnt && sha256sum plain.bin docs/*) > sums
	df -h mnt | tail -n 1
	rbd_unmount
	"$bc" detach demo

	step "R4. attach again: the file system is clean, the files intact"
	rbd_check_fs

	step "R5. the host dies (kill -9 the daemon): attach --break-lock fences it and takes over"
	rbd_unmount
	pid=$("$bc" status demo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	holder=$(rbd lock ls "rbd/$img" | awk '$1 ~ /^client\./ {print $NF}')
	[ -n "$holder" ] || { echo "rbd lock ls shows no holder of the attached image"; exit 1; }
	kill -KILL "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	echo "daemon $pid killed: its Ceph client $holder still holds the lock"
	rc=0
	"$bc" attach "rbd:rbd/demo" --name demo --key-file demo.key 2>attach.err || rc=$?
	[ "$rc" = 9 ] || { cat attach.err; echo "attach of a held image: exit $rc, expected 9"; exit 1; }
	echo "a plain attach is refused: $(cat attach.err)"
	start=$SECONDS
	rbd_check_fs --break-lock
	echo "attach --break-lock took over in $((SECONDS - start)) s"
	ceph osd blocklist ls 2>/dev/null | grep -F "$holder" ||
		{ echo "the dead client $holder is not blocklisted"; exit 1; }
	echo "the dead client is blocklisted: should it come back, the OSDs refuse its writes"
	rbd_unmount
	"$bc" detach demo
	echo
	echo "demo done: everything is in $dir (the cluster is stopped on exit; its logs are in $cluster/log)"
	exit 0
}

# rbd_check_fs: attach the demo image with its FUSE file,
# put a loop device on it, check the file system and every file.
rbd_check_fs() {
	"$bc" attach "rbd:rbd/demo" --name demo --key-file demo.key --fuse "$dir/fuse" "$@"
	loop=$(losetup --find --show "$dir/fuse/demo")
	e2fsck -fn "$loop" >e2fsck.out 2>&1 || { cat e2fsck.out; echo "e2fsck found errors"; exit 1; }
	echo "e2fsck -fn: clean"
	mount "$loop" mnt
	(cd mnt && sha256sum -c --quiet ../sums) && echo "files intact"
}

rbd_unmount() {
	if mountpoint -q mnt; then umount mnt; fi
	if [ -n "$loop" ]; then losetup -d "$loop"; loop=""; fi
}

# Unmount, detach, then stop the cluster (in that order: a volume whose
# cluster is gone could only fail its last flush).
rbd_cleanup() {
	cd "$dir" || return
	rbd_unmount 2>/dev/null || true
	"$bc" detach --all >/dev/null 2>&1 || "$bc" detach --all --force >/dev/null 2>&1 || true
	# A killed daemon's FUSE mount, if no attach has cleared it.
	if mountpoint -q "$dir/fuse"; then fusermount3 -uz "$dir/fuse" || true; fi
	# The OSD's data goes (a sparse file, but it holds the demo image);
	# the logs stay.
	"$top/tests/ceph/cluster.sh" stop "$cluster" && rm -f "$cluster/osd-block"
}

[ "$rbd" = 0 ] || rbd_demo

step "1. format a 512 MiB file-backed LUKS2 volume (aes-xts-plain64, 4096-byte sectors)"
head -c 32 /dev/urandom | base64 > demo.key     # demo only: normally a typed passphrase
rm -f demo.img
"$bc" format demo.img --size 512M --key-file demo.key --batch --no-wipe
head -c 10M /dev/urandom > plain.bin
"$bc" write demo.img --key-file demo.key < plain.bin
"$bc" cat demo.img --key-file demo.key | head -c 10M | cmp - plain.bin && echo "10 MiB written and read back identically"
if cmp -s <(dd if=demo.img bs=1M skip=16 count=10 status=none) plain.bin; then echo "plaintext on disk!"; exit 1; fi
echo "the backing holds ciphertext only"
"$bc" dump demo.img | sed -n '1,20p'

step "2. a token key (softhsm2) unlocks the volume: genkey + enroll"
mkdir -p tokens
echo "directories.tokendir = $dir/tokens" > softhsm2.conf
export SOFTHSM2_CONF="$dir/softhsm2.conf"
softhsm2-util --init-token --free --label demo --pin 1234 --so-pin 12345678 >/dev/null
printf '1234\n' > pin
"$bc" genkey --token pkcs11:token=demo --label demo-key --pin-file pin
"$bc" enroll demo.img --pkcs11 'pkcs11:token=demo;object=demo-key' --key-file demo.key --pin-file pin
"$bc" dump demo.img --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("key slots:", [s["slot"] for s in d["keyslots"]], "tokens:", [t["type"] for t in d["metadata"]["tokens"].values()])'

if pgrep -x zfs-fuse >/dev/null; then
	echo "another zfs-fuse daemon is running: stopping the demo before the pool part"
	exit 0
fi
step "3. attach from a tab file, a ZFS pool on the FUSE file"
mkdir -p fuse
cat > blockcrypttab <<TAB
# NAME  BACKING           KEY    OPTIONS
demo    $dir/demo.img     token  fuse=$dir/fuse,pin-file=$dir/pin,after-attach=zpool import -o cachefile=none -d $dir/fuse demo 2>/dev/null || true
TAB
cat blockcrypttab
zfs-fuse --no-daemon --no-kstat-mount --pidfile "$dir/zfs-fuse.pid" </dev/null >zfs-fuse.log 2>&1 &
zfs_pid=$!
cleanup() {
	zpool export demo >/dev/null 2>&1 || true
	"$bc" detach --all >/dev/null 2>&1 || true
	kill "$zfs_pid" 2>/dev/null || true
	wait "$zfs_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do zpool list >/dev/null 2>&1 && break; sleep 0.1; done
"$bc" attach --all --tab blockcrypttab
zpool create -f -o cachefile=none -O checksum=sha256 -m "$dir/mnt" demo "$dir/fuse/demo"
zfs create -o canmount=off demo/data
zfs create demo/data/docs
cp plain.bin "$dir/mnt/data/docs/"
seq 1 100000 > "$dir/mnt/data/docs/numbers.txt"
(cd "$dir/mnt/data/docs" && sha256sum * > "$dir/sums")
zfs snapshot demo/data/docs@first
"$bc" list
zpool list demo

step "4. reboot: export, detach --all; then the one step attach --all"
zpool export demo
"$bc" detach --all
[ -z "$(ls fuse)" ] && echo "nothing to import now: the FUSE directory is empty"
"$bc" attach --all --tab blockcrypttab
zfs mount -a 2>/dev/null || true
(cd "$dir/mnt/data/docs" && sha256sum -c --quiet "$dir/sums") && echo "files intact"
zfs list -t snapshot -o name | grep -q 'demo/data/docs@first' && echo "snapshot intact"

step "5. the backing grows: resize online, the pool expands"
before=$(zpool list -H -o size demo)
truncate -s 1G demo.img
"$bc" resize demo
ls -l "$dir/fuse/demo"
# zfs-fuse's `zpool online -e` does not expand; autoexpand at import does.
zpool set autoexpand=on demo
zpool export demo
zpool import -o cachefile=none -d "$dir/fuse" demo
after=$(zpool list -H -o size demo)
echo "pool size: $before -> $after"
zpool scrub demo
for _ in $(seq 100); do zpool status demo | grep -q "scrub in progress" || break; sleep 0.2; done
zpool status demo | grep -E "scan:|errors:"
echo
echo "demo done: everything is in $dir (the pool is exported and the volume detached on exit)"
