#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Linux kernel's dm-crypt as the oracle, both ways, in one guest boot
# (issue #16).  For LUKS1, LUKS2 with 512- and 4096-byte sectors, every
# cipher blockcrypt supports (aes-xts-plain64 with 256- and 512-bit keys,
# aes-xts-plain, aes-cbc-essiv:sha256, aes-cbc-plain64, aes-cbc-plain; 128-
# to 256-bit CBC keys) and plain volumes (cryptsetup's plain defaults, XTS
# with 4096-byte sectors):
#  - blockcrypt makes the volume and writes 8 MiB; the guest opens it with
#    cryptsetup (the kernel's dm-crypt) and must read the same bytes;
#  - the guest makes the volume and writes 8 MiB; blockcrypt must read the
#    bytes the guest printed the hash of.
# Then a whole ext4 file system each way: written by the host kernel
# through blockcrypt's FUSE file (loop device), checked and mounted by the
# guest from dm-crypt; and made by the guest on dm-crypt, checked and
# mounted by the host through blockcrypt's FUSE file.  Last, volumes with
# dm-integrity (hmac-sha256, aes-gcm-random) made by the guest: blockcrypt
# refuses them with one clear line and leaves them as they were.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum losetup mount umount mkfs.ext4 e2fsck fusermount3 mountpoint nbdcopy
requires_root_fuse "loop devices, mount"
. "$TESTS_DIR/shell/vm-lib.bash"

printf 'vm oracle passphrase, also long enough to be a 512-bit raw key for plain volumes...' >key
[ "$(wc -c <key)" -ge 64 ] || fail "the key file is shorter than a 512-bit key"
: >cases
disks=()
# disk NAME SIZE: a new sparse image; its guest device name is in $DEV.
disk() {
	truncate -s "$2" "$1.img"
	disks+=(--disk "$TEST_TMP/$1.img")
	local n=$((${#disks[@]} / 2)) letters=abcdefghijklmnopqrstuvwxyz
	# The kernel's names: vda..vdz, then vdaa, vdab, ...
	if [ "$n" -le 26 ]; then
		DEV=/dev/vd${letters:n-1:1}
	else
		DEV=/dev/vd${letters:(n-1)/26-1:1}${letters:(n-1)%26:1}
	fi
}

# --- blockcrypt writes, the guest's dm-crypt reads -----------------------
# h2g NAME CRYPTSETUP-OPEN-ARGS -- BLOCKCRYPT-ARGS...
h2g() {
	local name=$1 open=$2; shift 3
	disk "h2g-$name" 32M
	bc format "h2g-$name.img" --batch --key-file key "${FAST_KDF[@]}" "$@" 2>fmt.err ||
		fail "h2g $name: blockcrypt format $* failed: $(cat fmt.err)"
	random_file "h2g-$name.data" 8M
	bc write "h2g-$name.img" --key-file key <"h2g-$name.data" 2>w.err || fail "h2g $name: blockcrypt write failed: $(cat w.err)"
	echo "h2g $name $DEV $(sha "h2g-$name.data") $open" >>cases
}
# A plain volume has no format step: blockcrypt writes with the options.
h2g_plain() { # NAME CRYPTSETUP-OPEN-ARGS -- BLOCKCRYPT-ARGS...
	local name=$1 open=$2; shift 3
	disk "h2g-$name" 16M
	random_file "h2g-$name.data" 8M
	bc write "h2g-$name.img" --key-file key --type plain "$@" <"h2g-$name.data" 2>w.err ||
		fail "h2g $name: blockcrypt write $* failed: $(cat w.err)"
	echo "h2g $name $DEV $(sha "h2g-$name.data") $open" >>cases
}
# Plain with nothing but a passphrase on both sides: cryptsetup's defaults
# (aes-cbc-essiv:sha256, 256 bits, ripemd160) are blockcrypt's.  Written
# through an attachment, as `write` reads the data from standard input.
h2g_plain_pass() { # NAME
	local name=$1
	disk "h2g-$name" 16M
	random_file "h2g-$name.data" 8M
	bc attach "h2g-$name.img" --name "$name" --type plain --key-file - <key >/dev/null 2>att.err ||
		fail "h2g $name: attach --type plain --key-file - failed: $(cat att.err)"
	nbdcopy "h2g-$name.data" "$(nbd_uri "$name")" || fail "h2g $name: nbdcopy into the plain volume failed"
	bc detach "$name" 2>det.err || fail "h2g $name: detach failed: $(cat det.err)"
	echo "h2gp $name $DEV $(sha "h2g-$name.data") --type plain" >>cases
}
h2g_plain_pass plain-pass-defaults
h2g luks1 "" -- --type luks1
h2g luks2-512 "" -- --type luks2 --sector-size 512
h2g luks2-4k "" -- --type luks2 --sector-size 4096
h2g luks2-essiv "" -- --type luks2 --cipher aes-cbc-essiv:sha256 --key-size 256
h2g luks1-cbc-plain64 "" -- --type luks1 --cipher aes-cbc-plain64 --key-size 256
h2g luks2-xts-256 "" -- --type luks2 --cipher aes-xts-plain64 --key-size 256
h2g luks1-essiv-192 "" -- --type luks1 --cipher aes-cbc-essiv:sha256 --key-size 192
h2g_plain plain-defaults "--type plain" -- --cipher aes-cbc-essiv:sha256 --key-size 256
h2g_plain plain-xts-plain "--type plain --cipher aes-xts-plain --key-size 512" -- --cipher aes-xts-plain --key-size 512
h2g_plain plain-cbc-plain-128 "--type plain --cipher aes-cbc-plain --key-size 128" -- --cipher aes-cbc-plain --key-size 128
h2g_plain plain-xts-4k "--type plain --cipher aes-xts-plain64 --key-size 512 --sector-size 4096" -- \
	--cipher aes-xts-plain64 --key-size 512 --sector-size 4096

# --- the guest's dm-crypt writes, blockcrypt reads -----------------------
# g2h NAME luks|plain GUEST-ARGS -- BLOCKCRYPT-READ-ARGS...
declare -A G2H_ARGS
g2h() {
	local name=$1 kind=$2 args=$3; shift 4
	disk "g2h-$name" 32M
	echo "g2h $name $DEV $kind $args" >>cases
	G2H_ARGS[$name]="$*"
}
g2h luks1 luks "--type luks1" --
g2h luks2-512 luks "--type luks2 --sector-size 512" --
g2h luks2-4k luks "--type luks2 --sector-size 4096" --
g2h luks2-essiv luks "--type luks2 --cipher aes-cbc-essiv:sha256 --key-size 256" --
g2h luks1-cbc-plain64 luks "--type luks1 --cipher aes-cbc-plain64 --key-size 256" --
g2h luks2-xts-256 luks "--type luks2 --cipher aes-xts-plain64 --key-size 256" --
g2h luks1-essiv-192 luks "--type luks1 --cipher aes-cbc-essiv:sha256 --key-size 192" --
g2h plain-defaults plain "--type plain" -- --type plain --cipher aes-cbc-essiv:sha256 --key-size 256
g2h plain-xts-plain plain "--type plain --cipher aes-xts-plain --key-size 512" -- --type plain --cipher aes-xts-plain --key-size 512
g2h plain-cbc-plain-128 plain "--type plain --cipher aes-cbc-plain --key-size 128" -- \
	--type plain --cipher aes-cbc-plain --key-size 128
g2h plain-xts-4k plain "--type plain --cipher aes-xts-plain64 --key-size 512 --sector-size 4096" -- \
	--type plain --cipher aes-xts-plain64 --key-size 512 --sector-size 4096

# The guest opens with cryptsetup's plain defaults and a passphrase on
# stdin; blockcrypt reads with nothing but the passphrase on stdin.
disk g2h-plain-pass-defaults 32M
echo "g2hp plain-pass-defaults $DEV plain --type plain" >>cases
G2H_STDIN=plain-pass-defaults
G2H_ARGS[plain-pass-defaults]="--type plain"

# --- ext4 through blockcrypt's FUSE file, read by the guest ---------------
FUSE_DIR=$TEST_TMP/fuse MNT=$TEST_TMP/mnt LOOP=
mkdir -p "$FUSE_DIR" "$MNT"
unmount_all() {
	mountpoint -q "$MNT" && umount "$MNT"
	[ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null
	LOOP=
}
cleanup_fn unmount_all
# fuse_loop NAME IMAGE [ro]: attach IMAGE with a FUSE file, loop device in $LOOP.
fuse_loop() {
	bc attach "$2" --batch --key-file key --name "$1" --fuse "$FUSE_DIR" >/dev/null 2>att.err ||
		fail "attach --fuse $2 failed: $(cat att.err)"
	LOOP=$(losetup --find --show ${3:+--read-only} "$FUSE_DIR/$1") || fail "losetup on the FUSE file failed"
}
unloop_detach() { # NAME
	unmount_all
	wait_for 10 bc detach "$1" >/dev/null 2>det.err || fail "detach $1 failed: $(cat det.err)"
}
disk fsh2g 96M
bc format fsh2g.img --batch --key-file key "${FAST_KDF[@]}" 2>fmt.err || fail "format fsh2g failed: $(cat fmt.err)"
fuse_loop fsh2g fsh2g.img
# -b 4096: the volume has 4096-byte sectors (dm-crypt's logical block
# size in the guest); a small file system would get 1 KiB blocks, which
# the kernel refuses to mount on such a device.
mkfs.ext4 -q -b 4096 "$LOOP" || fail "mkfs.ext4 on the FUSE file's loop device failed"
mount -t ext4 "$LOOP" "$MNT" || fail "mount of the FUSE file's loop device failed"
mkdir "$MNT/dir"
for f in one dir/two three; do random_file "$MNT/$f" $((${#f} * 300000 + 12345)); done
(cd "$MNT" && sha256sum one dir/two three) >fsh2g.sha256
unloop_detach fsh2g
echo "fsh2g fsh2g $DEV" >>cases

# --- ext4 made by the guest, read through blockcrypt's FUSE file ----------
disk fsg2h 96M
echo "fsg2h fsg2h $DEV" >>cases

# --- dm-integrity volumes: made by the guest, refused by blockcrypt ------
# The recipe of the authenticated volumes (for later work on them).
disk integ-hmac 64M
echo "integ integ-hmac $DEV --cipher aes-xts-plain64 --key-size 512 --integrity hmac-sha256" >>cases
disk integ-gcm 64M
echo "integ integ-gcm $DEV --cipher aes-gcm-random --key-size 256 --integrity aead" >>cases

note "$(wc -l <cases) cases, ${#disks[@]} / 2 disks"
vm_run --timeout 600 --mem 768 "${disks[@]}" --file key --file cases --file fsh2g.sha256 \
	"$TESTS_DIR/vm/guest-dmcrypt.sh"
oks=$(grep -c '^ok: ' vm.out || true)
note "guest: $oks checks ok, exit $VM_RC"
if [ "$VM_RC" != 0 ] || grep -q '^FAIL: ' vm.out; then
	vm_show
	problem "the guest reported failures (exit $VM_RC): $(grep '^FAIL: ' vm.out | tr '\n' ' ')"
fi
# Every h2g, fsh2g and integ case says ok; every g2h and fsg2h prints its data.
for n in $(awk '$1 == "h2g" || $1 == "h2gp" || $1 == "fsh2g" || $1 == "integ" {print $2}' cases); do
	grep -q "^ok: [a-z0-9]* $n: " vm.out || problem "the guest said nothing on case $n"
done

# --- blockcrypt reads what the guest wrote --------------------------------
for name in "${!G2H_ARGS[@]}"; do
	want=$(awk -v n="$name" '$1 == "G2H" && $2 == n {print $3}' vm.out)
	[ -n "$want" ] || { problem "g2h $name: the guest printed no hash"; continue; }
	# shellcheck disable=SC2086 # a list of options
	keyarg=(--key-file key)
	[ "$name" != "$G2H_STDIN" ] || keyarg=(--key-file -)
	bc cat "g2h-$name.img" "${keyarg[@]}" ${G2H_ARGS[$name]} <key >cat.out 2>cat.err ||
		{ problem "g2h $name: blockcrypt cat failed: $(cat cat.err)"; continue; }
	got=$(head -c 8M cat.out | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] && note "g2h $name: blockcrypt reads what dm-crypt wrote" ||
		problem "g2h $name: blockcrypt reads $got, dm-crypt wrote $want"
done

# The guest's ext4: e2fsck and every file, through the FUSE file.
awk '$1 == "FSG2H" {print $4 "  " $3}' vm.out >fsg2h.sha256
[ "$(wc -l <fsg2h.sha256)" = 3 ] || problem "fsg2h: the guest printed $(wc -l <fsg2h.sha256) file hashes, want 3"
fuse_loop fsg2h fsg2h.img ro
e2fsck -f -n "$LOOP" >fsck.out 2>&1 || problem "fsg2h: e2fsck -f -n of the guest's ext4 through blockcrypt: $(tail -n 3 fsck.out)"
mount -t ext4 -o ro "$LOOP" "$MNT" || fail "fsg2h: mount of the guest's ext4 through blockcrypt failed"
(cd "$MNT" && sha256sum -c --quiet "$TEST_TMP/fsg2h.sha256") >sum.out 2>&1 ||
	problem "fsg2h: the guest's files read differently through blockcrypt: $(head -n 3 sum.out)"
unloop_detach fsg2h

# Integrity volumes: one line, exit code of an unsupported volume, and
# the image as the guest left it.
for name in integ-hmac integ-gcm; do
	before=$(sha "$name.img")
	for cmd in "cat" "attach --batch --name $name"; do
		rc=0
		# shellcheck disable=SC2086 # the command and its options
		bc $cmd "$name.img" --key-file key >out 2>err || rc=$?
		[ "$rc" != 0 ] || { problem "$name: blockcrypt $cmd accepted a dm-integrity volume"; bc detach "$name" >/dev/null 2>&1; continue; }
		[ "$rc" = 11 ] || problem "$name: blockcrypt $cmd: exit $rc, want 11 (unsupported volume)"
		[ "$(wc -l <err)" = 1 ] || problem "$name: blockcrypt $cmd: not one line: $(cat err)"
		grep -q 'authenticated (integrity) volumes are not supported' err ||
			problem "$name: blockcrypt $cmd: unclear message: $(cat err)"
		note "$name: blockcrypt $cmd: exit $rc: $(cat err)"
	done
	[ "$(sha "$name.img")" = "$before" ] || problem "$name: blockcrypt changed the refused volume"
done
check_problems
