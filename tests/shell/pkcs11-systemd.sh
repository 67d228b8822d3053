#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# blockcrypt unlocks systemd-cryptenroll's "systemd-pkcs11" tokens (an RSA
# key pair + certificate on the token; the slot secret is RSA-encrypted to
# the certificate).  A blockcrypt token is enrolled and removed again first
# (unenroll removes exactly its token and key slot), then systemd-cryptenroll
# enrolls; data written with the passphrase reads back with only the PIN
# (--token-only --pin-file), by cat and by attach; a wrong PIN is exit 3;
# unenroll leaves systemd's token alone (exit 8 with nothing to remove, exit
# 2 for --token-id of systemd's token) without touching the header.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup systemd-cryptenroll openssl nbdcopy cmp
p11_setup

new_volume vol.img pass
random_file data $((4 * 1048576))
bc write vol.img --key-file pass <data 2>err || fail "write with the passphrase failed: $(cat err)"

# A blockcrypt token comes and goes.
genkey bkey
bc enroll vol.img --pkcs11 "$TOKEN_URI;object=bkey" --key-file pass --pin-file pin 2>err ||
	fail "enroll failed: $(cat err)"
expect_tokens vol.img "0:blockcrypt-pkcs11" "after enroll"
bc unenroll vol.img --batch 2>err || fail "unenroll failed: $(cat err)"
expect_tokens vol.img "" "after unenroll"
expect_keyslots vol.img "0" "after unenroll"

# systemd's token: RSA key and self-signed certificate on the token.
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=bctest -days 30 \
	>/dev/null 2>&1 || fail "openssl could not make a key and certificate"
openssl pkey -in key.pem -outform DER -out key.der || fail "openssl pkey failed"
openssl x509 -in cert.pem -outform DER -out cert.der || fail "openssl x509 failed"
ptool --write-object key.der --type privkey --id 01 --label sd >/dev/null 2>&1 || fail "cannot import the RSA key"
ptool --write-object cert.der --type cert --id 01 --label sd >/dev/null 2>&1 || fail "cannot import the certificate"

PASSWORD=$(cat pass) PIN=1234 systemd-cryptenroll --pkcs11-token-uri='pkcs11:token=bctest;object=sd;type=cert' \
	vol.img >sd.out 2>&1 || fail "systemd-cryptenroll failed: $(cat sd.out)"
expect_tokens vol.img "0:systemd-pkcs11" "after systemd-cryptenroll"
expect_keyslots vol.img "0 1" "after systemd-cryptenroll"
before=$(sha vol.img)

# Only the PIN: the systemd token must be what opens it.
bc cat vol.img --token-only --pin-file pin </dev/null >tok.out 2>err ||
	fail "cat --token-only --pin-file with the systemd-pkcs11 token failed: $(cat err)"
cmp -s <(head -c $((4 * 1048576)) tok.out) data || fail "systemd-pkcs11 token: data written with the passphrase does not read back"
bc cat vol.img --key-file pass --batch </dev/null >pass.out 2>err || fail "cat with the passphrase failed: $(cat err)"
cmp -s tok.out pass.out || fail "token and passphrase decrypt the volume differently"

bc attach vol.img --token-only --pin-file pin </dev/null >/dev/null 2>err ||
	fail "attach --token-only with the systemd-pkcs11 token failed: $(cat err)"
nbdcopy "$(nbd_uri vol)" nbd.out || fail "nbdcopy out of the attached volume failed"
bc detach vol 2>/dev/null || fail "detach failed"
cmp -s nbd.out pass.out || fail "attached (systemd token) volume serves different data"

# Wrong PIN.
expect_exit 3 bc cat vol.img --token-only --pin-file badpin
note "wrong PIN: $ERR"

# unenroll only ever removes blockcrypt's own tokens.
expect_exit 8 bc unenroll vol.img --batch
note "unenroll with only a systemd token: $ERR"
expect_exit 2 bc unenroll vol.img --token-id 0 --batch
note "unenroll --token-id of systemd's token: $ERR"
expect_tokens vol.img "0:systemd-pkcs11" "after refused unenrolls"
[ "$(sha vol.img)" = "$before" ] || fail "failed unlocks or refused unenrolls modified the volume"
exit 0
