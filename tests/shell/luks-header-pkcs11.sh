#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Tokens in a detached header: enroll --header H adds the key slot and the
# blockcrypt-pkcs11 token to H (cryptsetup luksDump H lists both), never
# the data file; cat --header H --token-only --pin-file opens with the PIN
# alone and reads what the passphrase wrote; unenroll --header H removes
# them from H, after which --token-only fails (exit 8, no token) and the passphrase
# still opens.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup cmp grep
p11_setup

genkey vkey
printf 'pkcs11 header passphrase' >pass
truncate -s 4M vol.data
bc format vol.data --header vol.hdr --batch --key-file pass "${FAST_KDF[@]}" --no-progress 2>/dev/null ||
	fail "format --header failed"
random_file in.raw $((4 * 1024 * 1024))
bc write vol.data --header vol.hdr --key-file pass <in.raw 2>/dev/null || fail "write --header failed"
DATA=$(sha vol.data)

bc enroll vol.data --header vol.hdr --pkcs11 "$TOKEN_URI;object=vkey" --key-file pass --pin-file pin 2>err ||
	fail "enroll --header failed: $(cat err)"
cryptsetup luksDump vol.hdr >dump.txt
grep -Eq '^[[:space:]]+1: luks2$' dump.txt || fail "luksDump of the header file shows no key slot 1 after enroll"
grep -Eq '^[[:space:]]+0: blockcrypt-pkcs11$' dump.txt || fail "luksDump of the header file shows no token after enroll"
[ "$(sha vol.data)" = "$DATA" ] || fail "enroll --header wrote the data file"

bc cat vol.data --header vol.hdr --token-only --pin-file pin </dev/null >cat.raw 2>err ||
	fail "cat --header --token-only failed: $(cat err)"
cmp cat.raw in.raw || fail "the token-unlocked volume reads differently"

bc unenroll vol.data --header vol.hdr --batch 2>err || fail "unenroll --header failed: $(cat err)"
cryptsetup luksDump vol.hdr >dump.txt
! grep -q blockcrypt-pkcs11 dump.txt || fail "the token is still in the header file after unenroll"
expect_exit 8 bc cat vol.data --header vol.hdr --token-only --pin-file pin
[[ "$ERR" == *"no PKCS#11 token"* ]] || fail "--token-only after unenroll: unexpected message: $ERR"
bc cat vol.data --header vol.hdr --key-file pass >cat.raw 2>err || fail "the passphrase no longer opens: $(cat err)"
cmp cat.raw in.raw || fail "the volume reads differently after unenroll"
[ "$(sha vol.data)" = "$DATA" ] || fail "unenroll --header wrote the data file"
