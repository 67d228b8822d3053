#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# PKCS#11 failures are clean: each is the documented exit code with one
# clear line on stderr, the volume file is byte-identical afterwards (header
# and data), and the passphrase slot still opens it.
#   unlock (--token-only): wrong PIN 3 (cat and attach; attach leaves nothing
#     running), no PIN with --batch 2, PIN file missing 8, token absent
#     (empty SoftHSM token dir) 12, --module nonexistent / not a PKCS#11
#     module 12, token key deleted 12, token key replaced by another key of
#     the same label 3 (wrong key);
#   without --token-only a wrong PIN falls back to the passphrase file;
#   enroll: wrong PIN 3, wrong existing passphrase 3, token=nosuch 12, no
#     such key label 12, --module nonexistent 12, URI naming no key 2 --
#     all without adding a key slot or a token;
#   the wrapped secret is bound to the volume UUID: a copy of the volume
#     with a new UUID is not opened by the token (one line, non-zero).
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup mountpoint
p11_setup

genkey fkey
new_volume vol.img pass
bc enroll vol.img --pkcs11 "$TOKEN_URI;object=fkey" --key-file pass --pin-file pin 2>err ||
	fail "enroll failed: $(cat err)"
bc cat vol.img --key-file pass --batch >ref 2>/dev/null || fail "cat with the passphrase failed"
REF=$(sha ref)
VOL_SHA=$(sha vol.img)
HDR_SHA=$(hdr_sha vol.img)

# unchanged WHAT: the volume is byte-identical, still has exactly slots 0 1
# and one token, and the passphrase (token hidden) decrypts the same data.
unchanged() {
	[ "$(hdr_sha vol.img)" = "$HDR_SHA" ] || fail "$1: the LUKS header changed"
	[ "$(sha vol.img)" = "$VOL_SHA" ] || fail "$1: the volume file changed"
	expect_keyslots vol.img "0 1" "$1"
	expect_tokens vol.img "0:blockcrypt-pkcs11" "$1"
	SOFTHSM2_CONF=$TEST_TMP/empty.conf bc cat vol.img --key-file pass --batch </dev/null >pass.out 2>err ||
		fail "$1: the passphrase no longer opens the volume: $(cat err)"
	[ "$(sha pass.out)" = "$REF" ] || fail "$1: the passphrase decrypts different data"
}
# says WHAT PATTERN: the last error message matches the glob PATTERN.
says() {
	# shellcheck disable=SC2254 # PATTERN is a glob on purpose
	case $ERR in $2) ;; *) fail "$1: unclear message: '$ERR' (expected $2)" ;; esac
	note "$1: $ERR"
}

# The right PIN works (so the failures below are about what they change).
bc cat vol.img --token-only --pin-file pin --batch </dev/null >tok.out 2>err || fail "token unlock failed: $(cat err)"
[ "$(sha tok.out)" = "$REF" ] || fail "token unlock decrypts different data"

# ---- unlock failures -------------------------------------------------------
expect_exit 3 bc cat vol.img --token-only --pin-file badpin
says "cat, wrong PIN" "*PIN*"
unchanged "cat, wrong PIN"

mkdir mnt
expect_exit 3 bc attach vol.img --token-only --pin-file badpin --fuse mnt
says "attach, wrong PIN" "*PIN*"
[ -z "$(files_except "$BLOCKCRYPT_RUN_DIR" '\.log$')" ] ||
	fail "attach with a wrong PIN left runtime files: $(ls -A "$BLOCKCRYPT_RUN_DIR")"
! mountpoint -q mnt 2>/dev/null || fail "attach with a wrong PIN left a FUSE mount"
unchanged "attach, wrong PIN"

expect_exit 2 bc cat vol.img --token-only --batch
says "--batch without --pin-file" "*--pin-file*"
unchanged "--batch without --pin-file"

expect_exit 8 bc cat vol.img --token-only --pin-file no-such-pin-file
says "missing PIN file" "*no-such-pin-file*"
unchanged "missing PIN file"

SOFTHSM2_CONF=$TEST_TMP/empty.conf expect_exit 12 bc cat vol.img --token-only --pin-file pin
says "token absent" "*token*"
unchanged "token absent"

expect_exit 12 bc cat vol.img --token-only --pin-file pin --module /nonexistent.so
says "--module /nonexistent.so" "*/nonexistent.so*"
unchanged "--module /nonexistent.so"

libc=$(ldd /bin/sh | awk '$1 ~ /^libc\.so/ { print $3 }')
if [ -n "$libc" ]; then
	expect_exit 12 bc cat vol.img --token-only --pin-file pin --module "$libc"
	says "--module $libc (not PKCS#11)" "*module*"
	unchanged "--module $libc"
fi

# Without --token-only a failing token falls back to the passphrase file.
bc cat vol.img --pin-file badpin --key-file pass --batch </dev/null >fb.out 2>err ||
	fail "wrong PIN + right passphrase file did not fall back to the passphrase: $(cat err)"
[ "$(sha fb.out)" = "$REF" ] || fail "fallback to the passphrase decrypts different data"
unchanged "wrong PIN with passphrase fallback"

# ---- enroll failures (no slot, no token added) ----------------------------
expect_exit 3 bc enroll vol.img --pkcs11 "$TOKEN_URI;object=fkey" --key-file pass --pin-file badpin
says "enroll, wrong PIN" "*PIN*"
unchanged "enroll, wrong PIN"

printf 'not the passphrase' >wrongpass
expect_exit 3 bc enroll vol.img --pkcs11 "$TOKEN_URI;object=fkey" --key-file wrongpass --pin-file pin
says "enroll, wrong passphrase" "*passphrase*"
unchanged "enroll, wrong passphrase"

expect_exit 12 bc enroll vol.img --pkcs11 'pkcs11:token=nosuch;object=fkey' --key-file pass --pin-file pin
says "enroll, token=nosuch" "*nosuch*"
unchanged "enroll, token=nosuch"

expect_exit 12 bc enroll vol.img --pkcs11 "$TOKEN_URI;object=nokey" --key-file pass --pin-file pin
says "enroll, no such key" "*nokey*"
unchanged "enroll, no such key"

expect_exit 12 bc enroll vol.img --pkcs11 "$TOKEN_URI;object=fkey" --key-file pass --pin-file pin --module /nonexistent.so
says "enroll, --module /nonexistent.so" "*/nonexistent.so*"
unchanged "enroll, --module /nonexistent.so"

expect_exit 2 bc enroll vol.img --pkcs11 "$TOKEN_URI" --key-file pass --pin-file pin
says "enroll, URI without a key" "*object=*"
unchanged "enroll, URI without a key"

# ---- the wrapped secret is bound to the volume UUID -------------------------
# A byte copy of the volume with a new UUID has the same key slots and the
# same token, but the token's AES-GCM additional data no longer matches.
cp vol.img clone.img
cryptsetup luksUUID --batch-mode --uuid 01234567-89ab-cdef-0123-456789abcdef clone.img || fail "cryptsetup luksUUID failed"
clone_sha=$(sha clone.img)
got=0; bc cat clone.img --token-only --pin-file pin </dev/null >clone.out 2>err || got=$?
[ "$got" != 0 ] || fail "the token unlocked a copy of the volume with another UUID (secret not bound to the UUID)"
[ ! -s clone.out ] || fail "the refused clone still produced $(stat -c %s clone.out) bytes"
[ "$(wc -l <err)" = 1 ] || fail "clone with another UUID: expected one error line, got: $(cat err)"
note "token on a copy with another UUID: exit $got: $(cat err)"
[ "$(sha clone.img)" = "$clone_sha" ] || fail "the refused token unlock modified the clone"
bc cat clone.img --key-file pass --batch </dev/null >clone.out 2>err || fail "the passphrase does not open the clone: $(cat err)"
[ "$(sha clone.out)" = "$REF" ] || fail "the clone decrypts different data with the passphrase"
unchanged "token refused on a clone"

# ---- the token key goes away, or is replaced ------------------------------
ptool --delete-object --type secrkey --label fkey >/dev/null 2>&1 || fail "pkcs11-tool could not delete fkey"
[ -z "$(secret_keys)" ] || fail "fkey still on the token after deletion: $(secret_keys)"
expect_exit 12 bc cat vol.img --token-only --pin-file pin
says "token key deleted" "*fkey*"
unchanged "token key deleted"

# A new key under the old label cannot unwrap the slot secret: a wrong key.
genkey fkey
expect_exit 3 bc cat vol.img --token-only --pin-file pin
note "token key replaced: $ERR"
unchanged "token key replaced"
exit 0
