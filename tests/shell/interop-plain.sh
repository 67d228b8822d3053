#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves that blockcrypt's plain (headerless) volumes are byte-identical to
# `cryptsetup open --type plain` / dm-crypt, using the independent oracle:
# what `blockcrypt write` stores decrypts with the raw key (the first
# key-size/8 bytes of the key file) to the bytes written, leaving the backing
# before --offset untouched; and what the oracle encrypts comes back through
# `blockcrypt cat`.  Covers aes-cbc-essiv:sha256, aes-cbc-plain64 and
# aes-xts-plain64, --offset/--skip, and 4096-byte sectors with and without
# --iv-large-sectors.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 od
requires_python_cryptography

SIZE=$((8 * 1024 * 1024))

hex() { od -An -v -tx1 | tr -d ' \n'; }

run_case() { # NAME CIPHER KEY_BITS SECTOR OFFSET SKIP LARGE(0|1) KEYFILE_BYTES
	local name=$1 cipher=$2 bits=$3 ssize=$4 offset=$5 skip=$6 large=$7 kbytes=$8
	local img=$name.img key n
	note "$name: plain $cipher, $bits bits, sector $ssize, offset $offset, skip $skip, large IVs $large, $kbytes-byte key file"
	random_file "$img" "$SIZE"
	random_file key.bin "$kbytes"
	# A key file is the raw key: only its first key-size/8 bytes count.
	key=$(head -c $((bits / 8)) key.bin | hex)
	[ "${#key}" = $((bits / 4)) ] || fail "$name: could not read the key back"
	BC_ARGS=(--type plain --cipher "$cipher" --key-size "$bits" --key-file key.bin
		--sector-size "$ssize" --offset "$offset" --skip "$skip")
	ORACLE_ARGS=(--cipher "$cipher" --key-hex "$key" --sector-size "$ssize" --iv-offset "$skip")
	if [ "$large" = 1 ]; then
		BC_ARGS+=(--iv-large-sectors)
		ORACLE_ARGS+=(--iv-large-sectors)
	fi
	n=$((SIZE - offset * 512))
	head -c $((offset * 512)) "$img" >before.raw

	# blockcrypt writes, the oracle decrypts.
	random_file data.raw "$n"
	bc write "$img" "${BC_ARGS[@]}" <data.raw 2>bc.err ||
		fail "$name: blockcrypt write failed: $(cat bc.err)"
	$ORACLE decrypt "${ORACLE_ARGS[@]}" --offset $((offset * 512)) "$img" oracle.raw
	cmp oracle.raw data.raw || fail "$name: oracle decryption differs from what blockcrypt wrote"
	head -c $((offset * 512)) "$img" | cmp - before.raw ||
		fail "$name: blockcrypt write changed the backing before --offset"

	# The oracle encrypts, blockcrypt reads.
	random_file data2.raw "$n"
	$ORACLE encrypt "${ORACLE_ARGS[@]}" data2.raw enc.raw
	dd if=enc.raw of="$img" bs=1M oflag=seek_bytes seek=$((offset * 512)) conv=notrunc status=none
	bc cat "$img" "${BC_ARGS[@]}" >cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat failed: $(cat bc.err)"
	cmp cat.raw data2.raw || fail "$name: blockcrypt cat differs from what the oracle encrypted"
}

#        NAME                CIPHER               BITS SECTOR OFFSET SKIP LARGE KEYFILE
run_case essiv-256           aes-cbc-essiv:sha256 256  512    0      0    0     32
run_case cbc-plain64-off-skip aes-cbc-plain64     256  512    8      8    0     64
run_case xts-512             aes-xts-plain64      512  512    0      0    0     64
run_case xts-256-skip        aes-xts-plain64      256  512    0      123  0     40
run_case xts-4096            aes-xts-plain64      512  4096   8      16   0     64
run_case xts-4096-large      aes-xts-plain64      512  4096   8      16   1     64
run_case essiv-4096-large    aes-cbc-essiv:sha256 256  4096   0      8    1     32
