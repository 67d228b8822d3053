#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves that blockcrypt reads and writes LUKS2 volumes made by cryptsetup
# luksFormat (argon2id and pbkdf2 key slots, 512- and 4096-byte sectors,
# aes-xts-plain64 and aes-cbc-essiv:sha256) exactly as dm-crypt would: with
# the volume key cryptsetup itself dumps, the independent oracle decrypts
# what `blockcrypt write` stored to the very bytes written, and data the
# oracle encrypts into the data area comes back unchanged through
# `blockcrypt cat`.  A wrong passphrase is refused with exit 3.
. "$(dirname "$0")/functions.bash"
requires cryptsetup /usr/bin/python3
requires_python_cryptography

SIZE=$((32 * 1024 * 1024))   # 16 MiB of LUKS2 header, 16 MiB of data
printf 'cryptsetup luks2 passphrase' >pass
printf 'cryptsetup luks2 passphrasE' >wrong

# Forced KDF costs skip cryptsetup's benchmark (which takes seconds).
ARGON=(--pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 32768 --pbkdf-parallel 1)
PBKDF2=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)

run_case() { # NAME CIPHER KEY_BITS SECTOR_SIZE KDF-ARGS...
	local name=$1 cipher=$2 bits=$3 ssize=$4 img key off len
	shift 4
	img=$name.img
	note "$name: cryptsetup luksFormat --cipher $cipher --key-size $bits --sector-size $ssize $*"
	truncate -s "$SIZE" "$img"
	cryptsetup luksFormat --type luks2 --batch-mode --key-file pass "$@" \
		--cipher "$cipher" --key-size "$bits" --sector-size "$ssize" "$img"
	key=$(volume_key "$img" pass)
	[ "${#key}" = $((bits / 4)) ] || fail "$name: no $bits-bit volume key from cryptsetup (got '$key')"
	off=$(data_offset "$img")
	[ "${off:-0}" -gt 0 ] || fail "$name: no data offset from luksDump"
	len=$((SIZE - off))
	ORACLE_ARGS=(--cipher "$cipher" --key-hex "$key" --sector-size "$ssize")

	# A wrong passphrase is refused, and changes nothing.
	local before
	before=$(sha "$img")
	expect_exit 3 bc cat "$img" --key-file wrong
	[ "$(sha "$img")" = "$before" ] || fail "$name: a failed open changed the backing"

	# blockcrypt writes, the oracle decrypts with cryptsetup's volume key.
	random_file data.raw "$len"
	bc write "$img" --key-file pass <data.raw 2>bc.err ||
		fail "$name: blockcrypt write failed: $(cat bc.err)"
	$ORACLE decrypt "${ORACLE_ARGS[@]}" --offset "$off" "$img" oracle.raw
	cmp oracle.raw data.raw || fail "$name: oracle decryption differs from what blockcrypt wrote"
	# ...and cryptsetup still opens the volume (the header is untouched).
	cryptsetup open --test-passphrase --key-file pass "$img" ||
		fail "$name: cryptsetup no longer opens the volume after blockcrypt write"

	# The oracle encrypts into the data area, blockcrypt reads.
	random_file data2.raw "$len"
	$ORACLE encrypt "${ORACLE_ARGS[@]}" data2.raw enc.raw
	dd if=enc.raw of="$img" bs=1M oflag=seek_bytes seek="$off" conv=notrunc status=none
	bc cat "$img" --key-file pass >cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat failed: $(cat bc.err)"
	cmp cat.raw data2.raw || fail "$name: blockcrypt cat differs from what the oracle encrypted"
}

run_case argon2id-4096 aes-xts-plain64 512 4096 "${ARGON[@]}"
run_case argon2id-512 aes-xts-plain64 512 512 "${ARGON[@]}"
run_case pbkdf2-4096 aes-xts-plain64 512 4096 "${PBKDF2[@]}"
run_case pbkdf2-512 aes-xts-plain64 512 512 "${PBKDF2[@]}"
run_case xts256-argon2id-4096 aes-xts-plain64 256 4096 "${ARGON[@]}"
run_case essiv-pbkdf2-4096 aes-cbc-essiv:sha256 256 4096 "${PBKDF2[@]}"
