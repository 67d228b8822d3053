#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# lofi images made by the independent oracle (tests/oracle/lofi.py: CFLOFI
# header at byte 8192, AES-CBC with lofi's IV, see blockcrypt-lofi(7)) read
# byte-identically with `blockcrypt cat --type lofi --key-file K`, for each
# of the three AES key sizes, with and without a matching --cipher; an
# image whose data starts past the header reads from its first sector; and
# reading leaves the image unchanged.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 cmp
requires_python_cryptography
LOFI="/usr/bin/python3 $TESTS_DIR/oracle/lofi.py"

SIZE=$((3 * 1024 * 1024 + 4096))   # whole 512-byte sectors, not whole MiB

$LOFI selftest >/dev/null || fail "oracle selftest failed"

for bits in 128 192 256; do
	note "aes-$bits-cbc, header at byte 8192, data sector 16"
	random_file key.bin $((bits / 8))
	random_file plain.raw "$SIZE"
	$LOFI create --key-file key.bin plain.raw img
	before=$(sha img)
	$LOFI decrypt --key-file key.bin img want.raw
	bc cat --type lofi --key-file key.bin img >got.raw 2>bc.err ||
		fail "aes-$bits-cbc: blockcrypt cat failed: $(cat bc.err)"
	cmp got.raw want.raw || problem "aes-$bits-cbc: blockcrypt and the oracle decrypt differently"
	# Device sector 0 is the header's block; the plaintext starts at sector 1.
	tail -c +513 got.raw | cmp - plain.raw || problem "aes-$bits-cbc: data differs from what the oracle encrypted"
	[ "$(stat -c %s got.raw)" = $((SIZE + 512)) ] || problem "aes-$bits-cbc: device size $(stat -c %s got.raw)"
	bc cat --type lofi --key-file key.bin --cipher "AES-$bits-CBC" img | cmp - want.raw ||
		problem "aes-$bits-cbc: --cipher AES-$bits-CBC reads differently"
	[ "$(sha img)" = "$before" ] || problem "aes-$bits-cbc: cat changed the image"
done

note "aes-256-cbc, data sector 40: the header stands alone"
random_file key.bin 32
random_file plain.raw "$SIZE"
$LOFI create --key-file key.bin --data-sector 40 plain.raw img40
bc cat --type lofi --key-file key.bin img40 | cmp - plain.raw ||
	problem "data sector 40: blockcrypt does not read the oracle's plaintext"

note "a wrong key reads, but not the data (lofi has no key check)"
random_file wrong.bin 32
bc cat --type lofi --key-file wrong.bin img40 >wrong.raw
if cmp -s wrong.raw plain.raw; then problem "a wrong key decrypted the data"; fi

check_problems
