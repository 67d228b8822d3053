#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A volume on a Ceph RBD image (rbd:POOL/IMAGE) goes through the same life
# as one in a file, with cryptsetup reading `rbd export` of the image as
# the oracle: format refuses a missing image without --size (exit 8, a
# message naming the image and --size) and creates it with --size;
# reformatting an existing image asks first exactly as for a non-empty
# file (exit 10 without a terminal, --batch goes ahead); dump is
# luksDump's text (LUKS2 and LUKS1); add-key, change-key and remove-key
# change the slots cryptsetup sees; write/cat round-trip random data and
# the python dm-crypt oracle decrypts the exported image to the same bytes;
# a wrong key is exit 3 for every command; a snapshot (IMAGE@SNAP) reads
# the data but refuses write and every key change with exit 6.  A
# command that exited leaves no watch on the image.  Every
# refused command leaves the image (and the snapshot) byte-identical.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum cmp /usr/bin/python3
requires_python_cryptography
requires_ceph

IMG=$(ceph_image_name vol)
R=rbd:$CEPH_POOL/$IMG
MiB=$((1024 * 1024))
printf 'rbd first passphrase' >k0
printf 'rbd second passphrase' >k1
printf 'rbd third passphrase' >k2
printf 'rbd wrong passphrase' >kw

# image_sha [@SNAP]: SHA-256 of the whole image (or snapshot) as rbd exports it.
image_sha() {
	timeout 120 rbd export --no-progress "$CEPH_POOL/$IMG${1:-}" - 2>export.err | sha256sum | cut -d' ' -f1
	[ -z "$(cat export.err)" ] || fail "rbd export $CEPH_POOL/$IMG${1:-} failed: $(cat export.err)"
}
# export_to FILE: the image as a file, for cryptsetup.
export_to() {
	rm -f "$1"
	timeout 120 rbd export --no-progress "$CEPH_POOL/$IMG" "$1" 2>export.err ||
		fail "rbd export $CEPH_POOL/$IMG failed: $(cat export.err)"
}
# unchanged BEFORE WHAT: the image still hashes to BEFORE.
unchanged() {
	[ "$(image_sha)" = "$1" ] || problem "$2 changed the image"
}
# slots_are WANT: active slots per blockcrypt dump --json of the image and
# per cryptsetup luksDump of its export, both WANT (e.g. "0 1").
slots_are() {
	local ours theirs
	bc dump --json "$R" >dump.json 2>dump.err || fail "dump --json $R failed: $(cat dump.err)"
	ours=$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(str(s["slot"]) for s in d["keyslots"] if s["state"] == "active"))' dump.json)
	export_to exp.img
	theirs=$(cryptsetup luksDump exp.img | awk '
		/^Key Slot [0-7]: ENABLED/ { sub(":", "", $3); s = s " " $3 }
		/^Keyslots:/ { k = 1; next } /^Tokens:/ { k = 0 }
		k && /^  [0-9]+: / { sub(":", "", $1); s = s " " $1 }
		END { sub("^ ", "", s); print s }')
	[ "$ours" = "$1" ] || problem "dump --json of $R: active slots '$ours', expected '$1'"
	[ "$theirs" = "$1" ] || problem "cryptsetup luksDump of the exported image: active slots '$theirs', expected '$1'"
}
# cs_accepts KEY [SLOT] / cs_rejects KEY: cryptsetup's word on the export.
cs_accepts() {
	cryptsetup open --test-passphrase --key-file "$1" ${2:+--key-slot "$2"} exp.img ||
		problem "cryptsetup rejects $1${2:+ in slot $2} on the exported image"
}
cs_rejects() {
	! cryptsetup open --test-passphrase --key-file "$1" exp.img 2>/dev/null ||
		problem "cryptsetup still accepts $1 on the exported image"
}

# ---- format: a missing image, created with --size ---------------------------
expect_exit 8 bc format "$R" --batch --key-file k0 "${FAST_KDF[@]}" --no-progress
note "format of a missing image without --size: $ERR"
case $ERR in *"$R"*--size*) ;; *) problem "format of a missing image without --size: the message should name $R and say --size is needed: '$ERR'" ;; esac
! timeout 60 rbd info "$CEPH_POOL/$IMG" >/dev/null 2>&1 || fail "a refused format created $CEPH_POOL/$IMG"

bc format "$R" --batch --key-file k0 --size 32M "${FAST_KDF[@]}" --no-progress 2>fmt.err ||
	fail "format $R --size 32M failed: $(cat fmt.err)"
size=$(timeout 60 rbd info --format json "$CEPH_POOL/$IMG" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
[ "$size" = $((32 * MiB)) ] || problem "format --size 32M made an image of $size bytes"
export_to exp.img
uuid=$(cryptsetup luksUUID exp.img) || fail "cryptsetup finds no LUKS header in the exported image"
cs_accepts k0 0

# ---- reformatting an existing image: asked like a non-empty file ------------
# The file is the reference: no terminal and no --batch is exit 10.
new_volume ref.img k0
ref_sha=$(sha ref.img)
expect_exit 10 bc format ref.img --key-file k0 "${FAST_KDF[@]}" --no-progress </dev/null
file_err=$ERR
[ "$(sha ref.img)" = "$ref_sha" ] || fail "a declined format changed the file"
before=$(image_sha)
expect_exit 10 bc format "$R" --key-file k0 "${FAST_KDF[@]}" --no-progress </dev/null
note "format of an existing image without --batch: $ERR (a file: $file_err)"
[ "${ERR//$R/X}" = "${file_err//ref.img/X}" ] || problem "format declined on an image says '$ERR', on a file '$file_err'"
unchanged "$before" "a declined format"
bc format "$R" --batch --key-file k0 "${FAST_KDF[@]}" --no-progress 2>fmt.err ||
	fail "format --batch of an existing image failed: $(cat fmt.err)"
export_to exp.img
[ "$(cryptsetup luksUUID exp.img)" != "$uuid" ] || problem "format --batch of the existing image left the old header (UUID $uuid)"

# ---- dump is cryptsetup's luksDump, LUKS2 and LUKS1 -------------------------
# (luksDump names the file it read; blockcrypt should name the image.)
dump_matches() { # SPEC EXPORTED
	bc dump "$1" >dump.txt 2>dump.err || fail "dump $1 failed: $(cat dump.err)"
	cryptsetup luksDump "$2" | sed "s|^\(LUKS header information for \).*|\1$1|" >luksdump.txt
	diff -u luksdump.txt dump.txt >dump.diff || problem "dump $1 differs from cryptsetup luksDump of its export: $(cat dump.diff)"
}
dump_matches "$R" exp.img
IMG1=$(ceph_image_name luks1)
bc format "rbd:$CEPH_POOL/$IMG1" --type luks1 --batch --key-file k0 --size 16M "${FAST_KDF[@]}" --no-progress 2>fmt.err ||
	fail "format --type luks1 on rbd:$CEPH_POOL/$IMG1 failed: $(cat fmt.err)"
timeout 120 rbd export --no-progress "$CEPH_POOL/$IMG1" exp1.img 2>export.err || fail "rbd export failed: $(cat export.err)"
dump_matches "rbd:$CEPH_POOL/$IMG1" exp1.img

# ---- write / cat, and the oracle's decryption of the export -----------------
random_file data $((3 * MiB))
bc write "$R" --key-file k0 <data 2>write.err || fail "write $R failed: $(cat write.err)"
# A command that exited has closed the image: no watch of it is left (a
# stale one slows the next writer's lock by seconds, for ~30 s).
watchers=$(timeout 60 rbd status --format json "$CEPH_POOL/$IMG" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["watchers"]))')
[ "$watchers" = 0 ] || problem "after write exited, rbd status lists $watchers watcher(s) of $CEPH_POOL/$IMG: the image was not closed"
bc cat "$R" --key-file k0 >out 2>cat.err || fail "cat $R failed: $(cat cat.err)"
[ "$(stat -c %s out)" = $((16 * MiB)) ] || problem "cat gave $(stat -c %s out) bytes, expected 16 MiB (32 MiB image - 16 MiB header)"
cmp -s <(head -c $((3 * MiB)) out) data || problem "cat $R does not give back what write stored"
export_to exp.img
key=$(volume_key exp.img k0)
off=$(data_offset exp.img)
$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size 4096 --offset "$off" exp.img oracle.out ||
	fail "oracle decryption of the exported image failed"
cmp -s oracle.out out || problem "the oracle's decryption of the exported image differs from blockcrypt cat"

# ---- a wrong key: exit 3 everywhere, nothing changes ------------------------
before=$(image_sha)
expect_exit 3 bc cat "$R" --key-file kw
expect_exit 3 bc write "$R" --key-file kw <data
expect_exit 3 bc add-key "$R" --key-file kw --new-key-file k1 "${FAST_KDF[@]}"
expect_exit 3 bc change-key "$R" --key-file kw --new-key-file k1 "${FAST_KDF[@]}"
expect_exit 3 bc remove-key "$R" --key-file kw
case $ERR in *"$R"*) ;; *) problem "wrong-key message does not name $R: $ERR" ;; esac
unchanged "$before" "commands with a wrong key"

# ---- key slots, cryptsetup as the oracle ------------------------------------
bc add-key "$R" --key-file k0 --new-key-file k1 "${FAST_KDF[@]}" 2>err || fail "add-key failed: $(cat err)"
slots_are "0 1"
cs_accepts k1 1
cs_accepts k0 0
bc change-key "$R" --key-file k1 --new-key-file k2 "${FAST_KDF[@]}" 2>err || fail "change-key failed: $(cat err)"
slots_are "0 1"
cs_rejects k1
cs_accepts k2 1
expect_exit 3 bc cat "$R" --key-file k1
bc remove-key "$R" --key-file k2 2>err || fail "remove-key failed: $(cat err)"
slots_are "0"
cs_rejects k2
cs_accepts k0 0
expect_exit 3 bc cat "$R" --key-file k2
bc cat "$R" --key-file k0 >out2 2>cat.err || fail "cat after the key changes failed: $(cat cat.err)"
cmp -s out out2 || problem "the data changed across add-key/change-key/remove-key"

# ---- a snapshot: readable, never written ------------------------------------
timeout 60 rbd snap create "$CEPH_POOL/$IMG@s1" >/dev/null 2>&1 || fail "rbd snap create failed"
bc cat "$R@s1" --key-file k0 >snap.out 2>cat.err || fail "cat of the snapshot failed: $(cat cat.err)"
cmp -s snap.out out || problem "cat of $R@s1 differs from cat of the image"
before=$(image_sha)
snap_before=$(image_sha @s1)
expect_exit 6 bc write "$R@s1" --key-file k0 <data
note "write to a snapshot: $ERR"
case $ERR in *read-only*) ;; *) problem "write to a snapshot: the message should say read-only: $ERR" ;; esac
expect_exit 6 bc add-key "$R@s1" --key-file k0 --new-key-file k1 "${FAST_KDF[@]}"
expect_exit 6 bc change-key "$R@s1" --key-file k0 --new-key-file k1 "${FAST_KDF[@]}"
expect_exit 6 bc remove-key "$R@s1" --key-file k0
unchanged "$before" "refused writes to the snapshot"
[ "$(image_sha @s1)" = "$snap_before" ] || problem "refused writes changed the snapshot"
check_problems
