#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Plain volumes take cryptsetup's plain mode as it is on Debian 12
# (cryptsetup 2.6: aes-cbc-essiv:sha256, a 256-bit key, passphrases hashed
# with ripemd160), so one made by `cryptsetup open --type plain` with its
# defaults opens here with ours.  Judged against an independent
# computation: python's hashlib for cryptsetup's passphrase hashing (the
# hash of the passphrase, then of "A" + it, "AA" + it, ... until the key is
# long enough) and the dm-crypt oracle for the data.  Also the key file
# rules of cryptsetup's plain mode: a key file is the raw key (its first
# key-size bytes after --keyfile-offset; --hash does not apply to it),
# stdin (--key-file -) is a passphrase and is hashed; --size counts
# 512-byte sectors, or bytes with a suffix.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 od nbdcopy
requires_python_cryptography

# plain_key HASH BYTES FILE: cryptsetup's plain-mode key from the
# passphrase in FILE, in hex.
plain_key() {
	/usr/bin/python3 - "$@" <<'PY'
import hashlib, sys
name, n, data = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "rb").read()
out, i = b"", 0
while len(out) < n:
    out += hashlib.new(name, b"A" * i + data).digest()
    i += 1
print(out[:n].hex())
PY
}
hex() { od -An -v -tx1 | tr -d ' \n'; }

SIZE=$((4 * 1024 * 1024))
printf 'correct horse battery staple' >pass
random_file vol.img "$SIZE"
random_file data.raw "$SIZE"

# 1. The oracle encrypts with cryptsetup's default key; blockcrypt with
#    no option but the passphrase (on stdin) reads it back.
key=$(plain_key ripemd160 32 pass)
[ "${#key}" = 64 ] || fail "no key from the independent computation"
$ORACLE encrypt --cipher aes-cbc-essiv:sha256 --key-hex "$key" data.raw vol.img
bc cat vol.img --type plain --key-file - <pass >cat.raw 2>err || fail "cat with plain defaults failed: $(cat err)"
cmp -s cat.raw data.raw || fail "plain defaults: blockcrypt reads other data than cryptsetup's defaults give"
# The same with the defaults spelt out, short options as cryptsetup's.
bc cat vol.img -M plain -c aes-cbc-essiv:sha256 -s 256 -h ripemd160 -d - <pass >cat2.raw 2>err ||
	fail "cat with -M -c -s -h -d failed: $(cat err)"
cmp -s cat2.raw data.raw || fail "short options: other data"
# The old defaults (XTS, sha256) are not silently taken.
bc cat vol.img --type plain --cipher aes-xts-plain64 --key-size 512 --hash sha256 --key-file - <pass >old.raw 2>/dev/null ||
	fail "cat with explicit XTS options failed"
! cmp -s old.raw data.raw || fail "XTS options read the same data: options ignored?"

# 2. blockcrypt writes (attached, passphrase on stdin), the oracle decrypts.
random_file data2.raw "$SIZE"
cp vol.img before.img
bc attach vol.img --type plain --key-file - <pass >uri 2>err || fail "attach with plain defaults failed: $(cat err)"
cleanup_fn "bc detach vol 2>/dev/null"
nbdcopy data2.raw "$(head -n1 uri)" || fail "nbdcopy into the plain volume failed"
bc detach vol 2>err || fail "detach failed: $(cat err)"
$ORACLE decrypt --cipher aes-cbc-essiv:sha256 --key-hex "$key" vol.img dec.raw
cmp -s dec.raw data2.raw || fail "what blockcrypt wrote with plain defaults does not decrypt with cryptsetup's key"

# 3. A key file is the raw key: its first 32 bytes after --keyfile-offset;
#    --hash does not change that (cryptsetup ignores it too), and
#    --keyfile-size does not either.
random_file kf 100
rawkey=$(tail -c +11 kf | head -c 32 | hex)
$ORACLE encrypt --cipher aes-cbc-essiv:sha256 --key-hex "$rawkey" data.raw vol.img
for extra in "" "--hash sha256" "--keyfile-size 50" "-h sha512 -l 40"; do
	# shellcheck disable=SC2086 # EXTRA is a list of options
	bc cat vol.img --type plain --key-file kf --keyfile-offset 10 $extra >kf.raw 2>err ||
		fail "cat --key-file kf --keyfile-offset 10 $extra failed: $(cat err)"
	cmp -s kf.raw data.raw || fail "key file with offset 10 $extra: other data"
done
# A key file too short for the key (after the offset) is refused.
expect_exit 2 bc cat vol.img --type plain --key-file kf --keyfile-offset 80
case $ERR in *kf*) ;; *) fail "short key file: message does not name it: $ERR" ;; esac

# 4. --size in 512-byte sectors (cryptsetup -b), or bytes with a suffix.
n=$(bc cat vol.img --type plain --key-file kf --keyfile-offset 10 --size 16 | wc -c)
[ "$n" = 8192 ] || fail "--size 16 gave $n bytes, not 16 sectors"
n=$(bc cat vol.img --type plain --key-file kf --keyfile-offset 10 -b 2K | wc -c)
[ "$n" = 2048 ] || fail "-b 2K gave $n bytes"
expect_exit 2 bc cat vol.img --type plain --key-file kf --size 1000B
exit 0
