#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The header commands that the other rbd-* tests leave out, on an RBD
# image, each checked with cryptsetup on an `rbd export` of the image:
# enroll of a PKCS#11 token key (one more key slot and its token), attach
# and cat unlocked by the token alone (--token-only --pin-file), unenroll;
# header-backup to a file, erase (no key slot left: the passphrase is
# refused with exit 3, the data area untouched), header-restore from the
# backup (the passphrase opens it again, same data); repair of an image
# whose primary LUKS2 header was damaged (cryptsetup then reads the
# primary again).
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup nbdcopy cmp timeout /usr/bin/python3
requires_ceph
. "$TESTS_DIR/shell/rbd-lib.bash"
p11_setup

IMG=$(ceph_image_name hdr)
R=$(rbd_spec "$IMG")
printf 'rbd header passphrase' >pass
rbd_new_volume "$IMG" pass

# exported: a fresh `rbd export` of the image in exported.img
exported() {
	rm -f exported.img
	timeout 120 rbd export --no-progress "$CEPH_POOL/$IMG" exported.img >/dev/null 2>export.err ||
		fail "rbd export failed: $(cat export.err)"
}

random_file data $((4 * 1048576))
bc write "$R" --key-file pass <data 2>write.err || fail "write failed: $(cat write.err)"

# ---- enroll, token-only attach and cat, unenroll ----------------------------
genkey vkey
bc enroll "$R" --pkcs11 "$TOKEN_URI;object=vkey" --key-file pass --pin-file pin 2>err ||
	fail "enroll on RBD failed: $(cat err)"
exported
expect_keyslots exported.img "0 1" "after enroll"
expect_tokens exported.img "0:blockcrypt-pkcs11" "after enroll"
bc attach "$R" --pin-file pin --token-only </dev/null >out 2>err || fail "attach --token-only on RBD failed: $(cat err)"
timeout 120 nbdcopy "$(nbd_uri "$IMG")" nbd.out || fail "nbdcopy out of the token-unlocked volume failed"
bc detach "$IMG" 2>/dev/null || fail "detach failed"
cmp -s <(head -c $((4 * 1048576)) nbd.out) data || fail "the token-unlocked volume serves other data"
bc cat "$R" --token-only --pin-file pin </dev/null >cat.out 2>err || fail "cat --token-only failed: $(cat err)"
cmp -s cat.out nbd.out || fail "cat --token-only differs from what NBD served"
bc unenroll "$R" --batch 2>err || fail "unenroll on RBD failed: $(cat err)"
exported
expect_keyslots exported.img "0" "after unenroll"
expect_tokens exported.img "" "after unenroll"
DATA_SHA=$(data_sha exported.img)

# ---- header-backup, erase, header-restore -----------------------------------
bc header-backup "$R" backup.img 2>err || fail "header-backup on RBD failed: $(cat err)"
cryptsetup open --test-passphrase --key-file pass backup.img 2>/dev/null ||
	fail "cryptsetup does not open the header backup with the passphrase"
bc erase "$R" --batch 2>err || fail "erase on RBD failed: $(cat err)"
exported
[ -z "$(luks_meta exported.img keyslots)" ] || fail "after erase the image still has key slots: $(luks_meta exported.img keyslots)"
[ "$(data_sha exported.img)" = "$DATA_SHA" ] || fail "erase changed the data area"
expect_exit 3 "$BLOCKCRYPT" cat "$R" --key-file pass
bc header-restore "$R" backup.img --batch 2>err || fail "header-restore on RBD failed: $(cat err)"
exported
expect_keyslots exported.img "0" "after header-restore"
[ "$(data_sha exported.img)" = "$DATA_SHA" ] || fail "header-restore changed the data area"
bc cat "$R" --key-file pass >cat2.out 2>err || fail "cat after header-restore failed: $(cat err)"
cmp -s cat2.out cat.out || fail "after header-restore the volume reads other data"

# ---- repair of a damaged primary header -------------------------------------
# primary_ok IMG: cryptsetup reads IMG's primary LUKS2 header alone (a copy
# with the secondary copy, right after the primary's 16 KiB, zeroed).
primary_ok() {
	cp "$1" primary.img
	dd if=/dev/zero of=primary.img bs=16384 seek=1 count=1 conv=notrunc status=none
	cryptsetup luksDump primary.img >/dev/null 2>&1
}
primary_ok exported.img || fail "before the damage, the primary header alone does not load"
# Damage the primary header's JSON area (from byte 4096) through librbd.
/usr/bin/python3 - "$CEPH_POOL" "$IMG" <<'PY' || fail "cannot damage the primary header"
import rados, rbd, sys
c = rados.Rados(conffile=None); c.conf_read_file(); c.connect()
io = c.open_ioctx(sys.argv[1])
img = rbd.Image(io, sys.argv[2])
img.write(b'\xff' * 512, 4096)
img.close(); io.close(); c.shutdown()
PY
exported
! primary_ok exported.img || fail "the damage did not reach the primary header"
cryptsetup luksDump exported.img >/dev/null 2>&1 || fail "cryptsetup cannot read the damaged image (the secondary copy lost too?)"
bc repair "$R" 2>err || fail "repair on RBD failed: $(cat err)"
exported
primary_ok exported.img || fail "after repair the primary header still does not load: nothing written back"
[ "$(data_sha exported.img)" = "$DATA_SHA" ] || fail "repair changed the data area"
bc cat "$R" --key-file pass >cat3.out 2>err || fail "cat after repair failed: $(cat err)"
cmp -s cat3.out cat.out || fail "after repair the volume reads other data"
