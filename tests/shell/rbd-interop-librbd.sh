#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# blockcrypt and librbd's own client-side encryption (encryption_format /
# encryption_load, what qemu and rbd-nbd use) read each other's volumes on
# an RBD image byte for byte, LUKS2 and LUKS1, both ways:
#  - formatted by librbd (python3-rbd encryption_format for LUKS2, the
#    `rbd encryption format` CLI for LUKS1, whose payload starts at 4 MiB):
#    what librbd writes, blockcrypt cat reads; what blockcrypt writes,
#    librbd reads; both see the same decrypted size;
#  - formatted by blockcrypt (LUKS2 default, --type luks1; librbd knows
#    aes-xts only, blockcrypt's default): the same, both ways;
#  - qemu's rbd driver with encrypt.format=luks2/luks (qemu >= 6.1; this
#    Debian 12 has 7.2, where it works) reads what blockcrypt wrote.
# librbd's own format uses cryptsetup's benchmarked KDF (seconds per
# unlock): those images are opened as few times as possible.
. "$(dirname "$0")/functions.bash"
requires qemu-img cmp timeout /usr/bin/python3
requires_ceph
qemu-img --help | grep -qw rbd || skip "this qemu-img has no rbd block driver (qemu-block-extra)"

MiB=$((1024 * 1024))
printf 'librbd interop passphrase' >pass

# pyrbd OP POOL IMAGE FORMAT ARG: librbd with its encryption loaded.
#   format: encryption_format(FORMAT, pass)
#   write:  encryption_load, then write file ARG at 0 and flush
#   read:   encryption_load, then the first ARG bytes (ARG=all: everything)
#           to stdout; the decrypted size goes to fd 3 (size.txt)
PYRBD=$(cat <<'PY'
import os, sys, rados, rbd
op, pool, name, fmt, arg = sys.argv[1:6]
f = {"luks1": rbd.RBD_ENCRYPTION_FORMAT_LUKS1, "luks2": rbd.RBD_ENCRYPTION_FORMAT_LUKS2}[fmt]
pw = open("pass", "rb").read()
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as c, c.open_ioctx(pool) as io, rbd.Image(io, name) as img:
    if op == "format":
        img.encryption_format(f, pw)
        sys.exit(0)
    img.encryption_load(f, pw)
    size = img.size()
    with open("size.txt", "w") as s:
        print(size, file=s)
    if op == "write":
        data = open(arg, "rb").read()
        img.write(data, 0)
        img.flush()
    else:
        n = size if arg == "all" else int(arg)
        off = 0
        while off < n:
            chunk = img.read(off, min(4 << 20, n - off))
            sys.stdout.buffer.write(chunk)
            off += len(chunk)
PY
)
pyrbd() { timeout 300 /usr/bin/python3 -c "$PYRBD" "$@"; }

# both_ways NAME FORMAT WIPED: the image NAME (formatted, key "pass") passes
# data librbd -> blockcrypt and blockcrypt -> librbd, and both agree on its
# size.  WIPED=yes (blockcrypt's format wrote the whole data area): every
# byte decrypts the same.  librbd's own format writes no data area, and
# librbd reads a never-written extent as zeros without decrypting it,
# where blockcrypt (as dm-crypt on an `rbd export` would) decrypts the
# zeros stored there: only what was written is compared then.
both_ways() {
	local img=$1 fmt=$2 wiped=$3 spec=rbd:$CEPH_POOL/$1 size
	random_file lib.data $((3 * MiB))
	pyrbd write "$CEPH_POOL" "$img" "$fmt" lib.data 2>py.err || fail "$img: librbd write failed: $(tail -n 3 py.err)"
	size=$(cat size.txt)
	bc cat "$spec" --key-file pass >bc.out 2>cat.err || fail "$img: blockcrypt cat failed: $(cat cat.err)"
	[ "$(stat -c %s bc.out)" = "$size" ] || problem "$img ($fmt): blockcrypt sees $(stat -c %s bc.out) bytes, librbd $size"
	cmp -s <(head -c $((3 * MiB)) bc.out) lib.data || problem "$img ($fmt): blockcrypt cat differs from what librbd wrote"
	random_file bc.data $((5 * MiB))
	bc write "$spec" --key-file pass <bc.data 2>write.err || fail "$img: blockcrypt write failed: $(cat write.err)"
	pyrbd read "$CEPH_POOL" "$img" "$fmt" all >lib.out 2>py.err || fail "$img: librbd read failed: $(tail -n 3 py.err)"
	cmp -s <(head -c $((5 * MiB)) lib.out) bc.data || problem "$img ($fmt): librbd reads other bytes than blockcrypt wrote"
	bc cat "$spec" --key-file pass >bc.out 2>cat.err || fail "$img: blockcrypt cat failed: $(cat cat.err)"
	if [ "$wiped" = yes ]; then
		cmp -s bc.out lib.out || problem "$img ($fmt): blockcrypt and librbd decrypt the whole image differently"
	fi
	note "$img ($fmt): $size bytes, the same both ways"
}

# qemu_reads NAME QEMU_FORMAT: qemu-img through the rbd driver's
# encryption reads what blockcrypt cat gives (bc.out, from both_ways; a
# wiped image, so holes do not matter).
qemu_reads() {
	local img=$1 qfmt=$2
	timeout 300 qemu-img convert -O raw --object secret,id=sec0,file=pass \
		--image-opts "driver=rbd,pool=$CEPH_POOL,image=$img,encrypt.format=$qfmt,encrypt.key-secret=sec0" \
		qemu.out 2>qemu.err || { problem "$img: qemu-img convert (encrypt.format=$qfmt) failed: $(cat qemu.err)"; return 0; }
	cmp -s qemu.out bc.out || problem "$img: qemu's rbd driver (encrypt.format=$qfmt) reads other bytes than blockcrypt cat"
}

# ---- formatted by librbd --------------------------------------------------
L2=$(ceph_image_name lib-luks2)
timeout 60 rbd create --size 32M "$CEPH_POOL/$L2" || fail "rbd create failed"
pyrbd format "$CEPH_POOL" "$L2" luks2 - 2>py.err || fail "librbd encryption_format luks2 failed: $(tail -n 3 py.err)"
bc dump --json "rbd:$CEPH_POOL/$L2" >dump.json 2>dump.err || fail "dump of the librbd LUKS2 image failed: $(cat dump.err)"
both_ways "$L2" luks2 no

L1=$(ceph_image_name lib-luks1)
timeout 60 rbd create --size 32M "$CEPH_POOL/$L1" || fail "rbd create failed"
timeout 300 rbd encryption format "$CEPH_POOL/$L1" luks1 pass 2>rbd.err ||
	fail "rbd encryption format luks1 failed: $(cat rbd.err)"
off=$(bc dump --json "rbd:$CEPH_POOL/$L1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data_offset"])')
[ "$off" = $((4 * MiB)) ] || note "rbd encryption format luks1: payload at $off bytes (4 MiB expected in Ceph 16)"
both_ways "$L1" luks1 no

# ---- formatted by blockcrypt ----------------------------------------------
B2=$(ceph_image_name bc-luks2)
bc format "rbd:$CEPH_POOL/$B2" --batch --key-file pass --size 32M "${FAST_KDF[@]}" --no-progress 2>fmt.err ||
	fail "blockcrypt format (LUKS2) failed: $(cat fmt.err)"
both_ways "$B2" luks2 yes
qemu_reads "$B2" luks2

B1=$(ceph_image_name bc-luks1)
bc format "rbd:$CEPH_POOL/$B1" --type luks1 --batch --key-file pass --size 32M "${FAST_KDF[@]}" --no-progress 2>fmt.err ||
	fail "blockcrypt format --type luks1 failed: $(cat fmt.err)"
both_ways "$B1" luks1 yes
qemu_reads "$B1" luks
check_problems
