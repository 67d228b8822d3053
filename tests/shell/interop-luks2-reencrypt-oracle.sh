#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves blockcrypt's LUKS2 data encryption against cryptsetup's own, with
# no dm-crypt kernel module: `cryptsetup reencrypt --encrypt` (offline, in
# userspace) turns a plaintext file into a LUKS2 volume, and `blockcrypt
# cat` must return that plaintext; then `blockcrypt write` stores new data
# and `cryptsetup reencrypt --decrypt` (offline, exporting the header) must
# turn the volume back into exactly that plaintext.  Covers aes-xts-plain64
# with 512- and 4096-byte sectors and CBC (essiv:sha256, plain64).
. "$(dirname "$0")/functions.bash"
requires cryptsetup

SIZE=$((40 * 1024 * 1024))
REDUCE=32M   # the LUKS2 header takes half of it: data offset 16 MiB
printf 'reencrypt oracle passphrase' >pass
random_file orig.raw "$SIZE"

run_case() { # NAME CIPHER KEY_BITS SECTOR_SIZE
	local name=$1 cipher=$2 bits=$3 ssize=$4 img=$1.img off dev plain
	note "$name: cryptsetup reencrypt --encrypt --cipher $cipher --key-size $bits --sector-size $ssize"
	cp orig.raw "$img"
	cryptsetup reencrypt --encrypt --type luks2 --cipher "$cipher" --key-size "$bits" \
		--sector-size "$ssize" --reduce-device-size "$REDUCE" --force-offline-reencrypt \
		--batch-mode --key-file pass --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$img" ||
		fail "$name: cryptsetup reencrypt --encrypt failed"
	cryptsetup luksDump "$img" >dump.txt
	grep -Eq "^[[:space:]]+cipher:[[:space:]]+$cipher\$" dump.txt || fail "$name: luksDump shows no cipher $cipher"
	grep -Eq "^[[:space:]]+sector:[[:space:]]+$ssize " dump.txt || fail "$name: luksDump shows no sector $ssize"
	off=$(data_offset "$img")
	dev=$((SIZE - off))
	# Only the first SIZE - REDUCE bytes of the plaintext are carried over.
	plain=$((SIZE - 32 * 1024 * 1024))

	# cryptsetup encrypted, blockcrypt decrypts.
	bc cat "$img" --key-file pass >cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat failed: $(cat bc.err)"
	[ "$(stat -c %s cat.raw)" = "$dev" ] ||
		fail "$name: blockcrypt cat gave $(stat -c %s cat.raw) bytes, the device has $dev"
	head -c "$plain" orig.raw >want.raw
	head -c "$plain" cat.raw | cmp - want.raw ||
		fail "$name: blockcrypt cat differs from the plaintext cryptsetup encrypted"

	# blockcrypt encrypts, cryptsetup decrypts (moving the data to offset 0
	# and exporting the header to hdr.$name, which must not exist yet).
	random_file new.raw "$dev"
	bc write "$img" --key-file pass <new.raw 2>bc.err ||
		fail "$name: blockcrypt write failed: $(cat bc.err)"
	cryptsetup reencrypt --decrypt --header "hdr.$name" --force-offline-reencrypt \
		--batch-mode --key-file pass "$img" ||
		fail "$name: cryptsetup reencrypt --decrypt failed"
	head -c "$dev" "$img" | cmp - new.raw ||
		fail "$name: cryptsetup decrypted something else than blockcrypt wrote"
}

run_case xts-512 aes-xts-plain64 512 512
run_case xts-4096 aes-xts-plain64 512 4096
run_case essiv-4096 aes-cbc-essiv:sha256 256 4096
run_case cbc-plain64-512 aes-cbc-plain64 256 512
