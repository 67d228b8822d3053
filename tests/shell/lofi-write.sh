#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What `blockcrypt write --type lofi` stores decrypts with the independent
# oracle (tests/oracle/lofi.py) to the bytes written, for each AES key
# size.  Writing the decrypted header block back as device sector 0 keeps
# the CFLOFI header byte for byte (lofi's data area starts on it); writing
# other bytes there replaces the header, as under lofi: the image then no
# longer opens as lofi (exit 4), but its data still decrypts with the
# oracle and as `--type plain --cipher aes-N-cbc --offset 16`.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 cmp dd
requires_python_cryptography
LOFI="/usr/bin/python3 $TESTS_DIR/oracle/lofi.py"

SIZE=$((2 * 1024 * 1024))

header_sha() { dd if="$1" bs=512 skip=16 count=1 status=none | sha256sum | cut -d' ' -f1; }

for bits in 128 192 256; do
	note "aes-$bits-cbc: write keeping the header"
	random_file key.bin $((bits / 8))
	random_file seed.raw "$SIZE"
	$LOFI create --key-file key.bin seed.raw img
	hdr=$(header_sha img)
	head -c 8192 img >front.raw
	bc cat --type lofi --key-file key.bin img >dev.raw
	random_file data.raw "$SIZE"
	{ head -c 512 dev.raw; cat data.raw; } >new.raw
	bc write --type lofi --key-file key.bin img <new.raw 2>bc.err ||
		fail "aes-$bits-cbc: blockcrypt write failed: $(cat bc.err)"
	[ "$(header_sha img)" = "$hdr" ] || problem "aes-$bits-cbc: the CFLOFI header changed"
	head -c 8192 img | cmp - front.raw || problem "aes-$bits-cbc: write touched the first 8 KiB"
	$LOFI decrypt --key-file key.bin img oracle.raw
	cmp oracle.raw new.raw || problem "aes-$bits-cbc: the oracle does not decrypt what blockcrypt wrote"

	note "aes-$bits-cbc: a write over device sector 0 replaces the header"
	random_file data.raw $((SIZE + 512))
	bc write --type lofi --key-file key.bin img <data.raw
	[ "$(header_sha img)" != "$hdr" ] || problem "aes-$bits-cbc: sector 0 did not land on the header"
	before=$(sha img)
	expect_exit 4 bc cat --type lofi --key-file key.bin img
	[ "$(sha img)" = "$before" ] || problem "aes-$bits-cbc: the failed open changed the image"
	$LOFI decrypt --key-file key.bin --data-sector 16 img oracle.raw
	cmp oracle.raw data.raw || problem "aes-$bits-cbc: the oracle does not decrypt the whole-device write"
	bc cat --type plain --cipher "aes-$bits-cbc" --key-file key.bin --offset 16 img | cmp - data.raw ||
		problem "aes-$bits-cbc: --type plain --offset 16 does not read the data"
done

check_problems
