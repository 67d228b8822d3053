#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# PKCS#11 key slot, end to end: genkey makes a sensitive, never-extractable
# AES key (its value cannot be read); enroll adds exactly one key slot and
# one blockcrypt-pkcs11 token; attach with only the PIN (--pin-file
# --token-only, no key file) serves the volume; data written over NBD
# survives detach and a second PIN-only attach (this time with an explicit
# --module); `cat --token-only --pin-file` gives the same bytes; and the
# passphrase alone still opens the volume, even with the token gone.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup nbdcopy cmp
p11_setup

# ---- the token key ---------------------------------------------------------
genkey vkey
[ "$(secret_keys)" = "vkey:AES length 32" ] || fail "after genkey the token holds: $(secret_keys)"
access=$(secret_key_access vkey)
note "token key vkey: $access"
case ", $access," in *", never extractable,"*) ;; *) fail "vkey is not never-extractable: '$access'" ;; esac
case ", $access," in *", sensitive,"*) ;; *) fail "vkey is not sensitive: '$access'" ;; esac
case ", $access," in *", extractable,"*) fail "vkey is extractable: '$access'" ;; esac
if ptool --read-object --type secrkey --label vkey --output-file keyval >/dev/null 2>&1; then
	fail "pkcs11-tool read the value (CKA_VALUE) of the token key"
fi
[ ! -s keyval ] || fail "pkcs11-tool wrote $(stat -c %s keyval) bytes of the token key's value"

# ---- enroll ----------------------------------------------------------------
new_volume vol.img pass
expect_keyslots vol.img "0" "new volume"
expect_tokens vol.img "" "new volume"
bc enroll vol.img --pkcs11 "$TOKEN_URI;object=vkey" --key-file pass --pin-file pin 2>err ||
	fail "enroll failed: $(cat err)"
expect_keyslots vol.img "0 1" "after enroll"
expect_tokens vol.img "0:blockcrypt-pkcs11" "after enroll"
tok=$(luks_meta vol.img token 0)
python3 -c '
import json, sys
t = json.loads(sys.argv[1])
assert t["keyslots"] == ["1"], t["keyslots"]
assert t["blockcrypt-pkcs11-uri"] == "pkcs11:token=bctest;object=vkey", t["blockcrypt-pkcs11-uri"]' "$tok" ||
	fail "enrolled token JSON is not bound to slot 1 / the given URI: $tok"

# ---- attach with the PIN only, write, detach, attach again -----------------
random_file data $((8 * 1048576))
bc attach vol.img --pin-file pin --token-only </dev/null >out 2>err ||
	fail "attach --pin-file --token-only failed: $(cat err)"
[ "$(cat out)" = "$(nbd_uri vol)" ] || fail "attach printed '$(cat out)', expected $(nbd_uri vol)"
nbdcopy data "$(nbd_uri vol)" || fail "nbdcopy into the token-unlocked volume failed"
bc detach vol 2>/dev/null || fail "detach failed"

bc attach vol.img --pin-file pin --token-only --module "$SOFTHSM_MODULE" </dev/null >/dev/null 2>err ||
	fail "attach --token-only --module $SOFTHSM_MODULE failed: $(cat err)"
nbdcopy "$(nbd_uri vol)" nbd.out || fail "nbdcopy out of the re-attached volume failed"
bc detach vol 2>/dev/null || fail "detach failed"
cmp -s <(head -c $((8 * 1048576)) nbd.out) data || fail "data written over NBD does not read back after re-attach"

# ---- cat with the PIN, cat with the passphrase -----------------------------
bc cat vol.img --token-only --pin-file pin </dev/null >cat.out 2>err || fail "cat --token-only --pin-file failed: $(cat err)"
cmp -s cat.out nbd.out || fail "cat --token-only differs from what NBD served"
printf '1234' >pin-no-newline
bc cat vol.img --token-only --pin-file pin-no-newline </dev/null >cat2.out 2>err ||
	fail "cat with a PIN file without a newline failed: $(cat err)"
cmp -s cat2.out nbd.out || fail "cat with a PIN file without a newline differs"

# The passphrase slot needs no token at all: hide the token from SoftHSM.
SOFTHSM2_CONF=$TEST_TMP/empty.conf bc cat vol.img --key-file pass </dev/null >pass.out 2>err ||
	fail "cat --key-file pass failed (token unavailable): $(cat err)"
cmp -s pass.out nbd.out || fail "cat with the passphrase differs from the token-unlocked data"
bc cat vol.img --key-file pass --batch </dev/null >pass2.out 2>err || fail "cat --key-file pass failed: $(cat err)"
cmp -s pass2.out nbd.out || fail "cat with the passphrase (token present) differs"
cryptsetup open --test-passphrase --key-file pass --key-slot 0 vol.img || fail "cryptsetup rejects the passphrase in slot 0"
exit 0
