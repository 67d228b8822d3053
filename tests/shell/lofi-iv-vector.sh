#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# lofi's IV scheme against the test vectors of blockcrypt-lofi(7), with no
# oracle: key 000102..1f (AES-256), 512-byte sectors of zeros.  The image
# and its CFLOFI header are built here byte by byte (data sector 18, so
# device sectors 0 and 1 are clear of the header); `blockcrypt write
# --type lofi` must produce the documented ciphertext, and a plain volume
# with --skip 0x0102030405060708 the documented sector.
. "$(dirname "$0")/functions.bash"
requires od dd

hex() { od -An -v -tx1 | tr -d ' \n'; }
# at FILE OFFSET: 16 bytes of FILE at OFFSET, in hex
at() { dd if="$1" bs=1 skip="$2" count=16 status=none | hex; }

# shellcheck disable=SC2046 # one argument per byte
printf '%b' "$(printf '\\x%02x' $(seq 0 31))" >key.bin
[ "$(hex <key.bin)" = 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ] ||
	fail "could not build the key"

# 8192 zero bytes, the header (CFLOFI, version 0, 96 reserved, data sector
# 18, padding), 512 zero bytes, then a 16-sector data area.
head -c 8192 /dev/zero >img
{ printf 'CFLOFI\0\0'; head -c 96 /dev/zero; printf '\0\0\0\x12'; head -c 404 /dev/zero; } >>img
head -c $((512 + 16 * 512)) /dev/zero >>img
[ "$(stat -c %s img)" = $((18 * 512 + 16 * 512)) ] || fail "image built wrong"

head -c 1024 /dev/zero | bc write --type lofi --key-file key.bin img 2>/dev/null ||
	fail "blockcrypt write --type lofi failed"
data=$((18 * 512))
[ "$(at img "$data")" = d4e96925c0bfcffb52f8a187ee774aab ] ||
	problem "sector 0: got $(at img "$data"), want d4e96925c0bfcffb52f8a187ee774aab"
[ "$(at img $((data + 512)))" = 78daf2af99803094627289bd8eca7385 ] ||
	problem "sector 1: got $(at img $((data + 512)))"
[ "$(at img $((data + 1024 - 16)))" = c93c572e509b5b57548878bf3dc07788 ] ||
	problem "sector 1, last block: got $(at img $((data + 1024 - 16)))"
[ "$(at img $((data + 1024)))" = 00000000000000000000000000000000 ] ||
	problem "sector 2 was written"
bc cat --type lofi --key-file key.bin img | head -c 1024 | cmp - <(head -c 1024 /dev/zero) ||
	problem "sectors 0 and 1 do not decrypt to zeros"

# n = 0x0102030405060708 through a plain volume's IV offset.
head -c 4096 /dev/zero >plain.img
head -c 512 /dev/zero | bc write --type plain --cipher aes-256-cbc --key-file key.bin \
	--skip $((0x0102030405060708)) plain.img 2>/dev/null || fail "plain write failed"
[ "$(at plain.img 0)" = dfe5fefe0d676b878393da2e49544eec ] ||
	problem "n=0x0102030405060708: got $(at plain.img 0)"

check_problems
