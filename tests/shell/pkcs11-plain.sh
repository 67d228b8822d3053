#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# lofi-style plain volumes keyed by a token: `--type plain ... --pkcs11 URI
# --pin-file F` derives the volume key inside the token (never extracted).
# Data written over NBD reads back after detach/attach, with the RFC 7512
# URI, lofi's ':::LABEL' and 'bctest:::LABEL' spellings, and an explicit
# --module.  Another token key gives different (garbage) data -- plain
# volumes have no header to detect that, by design -- and, as nothing was
# written, the backing is unchanged and the right key still reads the
# original data.  The derivation is the documented one:
#   key = AES-ECB_K(B_0) || AES-ECB_K(B_1) || ..., B_i = "blockcrypt-plain"
#   with its last byte XORed with i
# (checked with a key of known value imported into the token, against
# `--key-file` with the key computed by openssl, for 256- and 512-bit keys).
# Failures: wrong PIN 3, no such key 12, --pkcs11 with --key-file 2; none
# touches the backing.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires nbdcopy openssl od cmp
p11_setup

genkey pkey
genkey other
P=(--type plain --cipher aes-cbc-essiv:sha256 --key-size 256)
URI="$TOKEN_URI;object=pkey"
MiB=1048576
truncate -s 32M plain.img
random_file data $((4 * MiB))

# attach_read NAME OUT ARGS...: attach plain.img, copy the device to OUT, detach.
attach_read() {
	local name=$1 out=$2; shift 2
	bc attach plain.img --name "$name" "$@" </dev/null >/dev/null 2>err || fail "attach $* failed: $(cat err)"
	nbdcopy "$(nbd_uri "$name")" "$out" || fail "nbdcopy from $name failed"
	bc detach "$name" 2>/dev/null || fail "detach $name failed"
}
head_is_data() { cmp -s <(head -c $((4 * MiB)) "$1") data; }

# ---- write, detach, read back ----------------------------------------------
bc attach plain.img --name pl "${P[@]}" --pkcs11 "$URI" --pin-file pin </dev/null >/dev/null 2>err ||
	fail "attach --type plain --pkcs11 failed: $(cat err)"
nbdcopy data "$(nbd_uri pl)" || fail "nbdcopy into the plain volume failed"
bc detach pl 2>/dev/null || fail "detach failed"
! cmp -s <(head -c $((4 * MiB)) plain.img) data || fail "the data was stored unencrypted"
written=$(sha plain.img)

attach_read pl r1 "${P[@]}" --pkcs11 "$URI" --pin-file pin
head_is_data r1 || fail "data does not read back after detach/attach ($URI)"
attach_read pl r2 "${P[@]}" --pkcs11 ':::pkey' --pin-file pin
cmp -s r1 r2 || fail "':::pkey' reads differently from '$URI'"
attach_read pl r3 "${P[@]}" --pkcs11 'bctest:::pkey' --pin-file pin --module "$SOFTHSM_MODULE"
cmp -s r1 r3 || fail "'bctest:::pkey' with --module reads differently"
bc cat plain.img "${P[@]}" --pkcs11 ':::pkey' --pin-file pin </dev/null >c1 2>err || fail "cat --pkcs11 failed: $(cat err)"
cmp -s r1 c1 || fail "cat reads differently from attach"

# ---- another token key: garbage, and nothing is written ---------------------
attach_read pl w1 "${P[@]}" --pkcs11 ':::other' --pin-file pin
! head_is_data w1 || fail "another token key decrypts the data"
cmp -s <(head -c $((4 * MiB)) w1) <(head -c $((4 * MiB)) r1) && fail "another token key reads the same bytes"
# Clearly garbage: (almost) every byte differs, not a partly right decryption.
ndiff=$(cmp -l <(head -c "$MiB" w1) <(head -c "$MiB" data) | wc -l || true)
[ "$ndiff" -gt $((MiB * 99 / 100)) ] || fail "another token key: only $ndiff of $MiB bytes differ from the data"
note "another token key: $ndiff of the first $MiB bytes differ from the data (garbage; no header to detect it)"
[ "$(sha plain.img)" = "$written" ] || fail "attaching/reading with another token key modified the backing"
attach_read pl r4 "${P[@]}" --pkcs11 "$URI" --pin-file pin
cmp -s r1 r4 || fail "after the wrong-key attach the right key no longer reads the original data"

# ---- failures leave the backing alone --------------------------------------
expect_exit 3 bc cat plain.img "${P[@]}" --pkcs11 "$URI" --pin-file badpin
note "wrong PIN: $ERR"
expect_exit 12 bc attach plain.img --name pl "${P[@]}" --pkcs11 ':::nokey' --pin-file pin
note "no such key: $ERR"
printf '%32s' key >raw.key
expect_exit 2 bc cat plain.img "${P[@]}" --pkcs11 "$URI" --pin-file pin --key-file raw.key
note "--pkcs11 and --key-file: $ERR"
[ "$(sha plain.img)" = "$written" ] || fail "failed plain opens modified the backing"

# ---- the documented derivation ---------------------------------------------
random_file known.key 32
ptool --write-object known.key --type secrkey --key-type AES:32 --label known >/dev/null 2>&1 ||
	fail "cannot import an AES key of known value into the token"
hexkey=$(od -An -tx1 known.key | tr -d ' \n')
# derived BYTES: the key the token should derive, computed here with openssl.
derived() {
	local i
	for ((i = 0; i < $1 / 16; i++)); do
		printf 'blockcrypt-plai'
		printf "\\x$(printf %02x $((0x6e ^ i)))"        # 'n' XOR i
	done | openssl enc -aes-256-ecb -nopad -K "$hexkey" -out "derived$1.key" || fail "openssl AES-ECB failed"
}
derived 32
bc cat plain.img "${P[@]}" --pkcs11 ':::known' --pin-file pin </dev/null >k1 2>err || fail "cat with the known key failed: $(cat err)"
bc cat plain.img "${P[@]}" --key-file derived32.key </dev/null >k2 2>err || fail "cat --key-file derived32.key failed: $(cat err)"
cmp -s k1 k2 || fail "aes-cbc-essiv:sha256/256: the token-derived key is not AES-ECB_K(B_0)||AES-ECB_K(B_1)"
derived 64
bc cat plain.img --type plain --pkcs11 ':::known' --pin-file pin </dev/null >x1 2>err ||
	fail "cat (default aes-xts-plain64) with the known key failed: $(cat err)"
bc cat plain.img --type plain --key-file derived64.key </dev/null >x2 2>err || fail "cat --key-file derived64.key failed: $(cat err)"
cmp -s x1 x2 || fail "aes-xts-plain64/512: the token-derived key is not AES-ECB_K(B_0..B_3)"
[ "$(sha plain.img)" = "$written" ] || fail "cat modified the backing"
exit 0
