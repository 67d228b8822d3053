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
# Usage: scripts/demo.sh [DIR]   (default: a new temporary directory)
set -euo pipefail
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
