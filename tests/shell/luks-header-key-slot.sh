#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# --key-slot N on open (cat, write, attach; LUKS2 and LUKS1, header on the
# backing or detached): the passphrase is tried on slot N only, so slot 0's
# passphrase with --key-slot 1 is refused (exit 3, one line naming the
# slot) and slot 1's opens; an unused slot is exit 3, a slot beyond the
# format's (LUKS1 has 8) is exit 2, --key-slot with --type plain is exit 2;
# without --key-slot either passphrase opens.  Nothing changes on refusal.
. "$(dirname "$0")/functions.bash"
requires cryptsetup qemu-io cmp

printf 'slot zero passphrase' >key0
printf 'slot one passphrase' >key1
random_file in.raw 4096

# check NAME DATA [--header HDR]: the --key-slot cases on one volume.
check() {
	local name=$1 data=$2 h dsha
	shift 2
	h=("$@")
	note "$name"
	bc add-key "$data" "${h[@]}" --key-file key0 --new-key-file key1 --key-slot 1 "${FAST_KDF[@]}" 2>/dev/null ||
		fail "$name: add-key --key-slot 1 failed"
	dsha=$(sha "$data")
	expect_exit 3 bc cat "$data" "${h[@]}" --key-file key0 --key-slot 1
	[[ "$ERR" == *"key slot 1"* ]] || fail "$name: the refusal does not name key slot 1: $ERR"
	expect_exit 3 bc write "$data" "${h[@]}" --key-file key0 --key-slot 1 <in.raw
	expect_exit 3 bc cat "$data" "${h[@]}" --key-file key1 --key-slot 0
	expect_exit 3 bc cat "$data" "${h[@]}" --key-file key1 --key-slot 5
	[[ "$ERR" == *"not in use"* ]] || fail "$name: an unused slot is not said to be unused: $ERR"
	expect_exit 3 bc attach "$data" "${h[@]}" --key-file key0 --key-slot 1
	[ "$(sha "$data")" = "$dsha" ] || fail "$name: a refused open changed the volume"
	bc write "$data" "${h[@]}" --key-file key1 --key-slot 1 <in.raw 2>bc.err ||
		fail "$name: write --key-slot 1 with slot 1's passphrase failed: $(cat bc.err)"
	bc cat "$data" "${h[@]}" --key-file key0 --key-slot 0 >cat.all
	cmp -n 4096 cat.all in.raw || fail "$name: cat --key-slot 0 does not read what was written"
	bc cat "$data" "${h[@]}" --key-file key1 >cat.all
	cmp -n 4096 cat.all in.raw || fail "$name: cat without --key-slot does not open with slot 1's passphrase"
	bc attach "$data" "${h[@]}" --key-file key1 --key-slot 1 --name ks --read-only >/dev/null 2>bc.err ||
		fail "$name: attach --key-slot 1 failed: $(cat bc.err)"
	qemu-io -r -f raw "$(nbd_uri ks)" -c "read -P 0 4096 4096" >qio.out 2>&1 ||
		fail "$name: reading the attached volume failed: $(cat qio.out)"
	bc detach ks 2>/dev/null || fail "$name: detach failed"
}

bc format luks2.img --batch --key-file key0 --size 20M "${FAST_KDF[@]}" --no-progress 2>/dev/null ||
	fail "format failed"
check "LUKS2, header on the backing" luks2.img
truncate -s 4M detached.data
bc format detached.data --type luks1 --header detached.hdr --batch --key-file key0 "${FAST_KDF[@]}" --no-progress \
	2>/dev/null || fail "format --type luks1 --header failed"
check "LUKS1, detached header" detached.data --header detached.hdr
expect_exit 2 bc cat detached.data --header detached.hdr --key-file key0 --key-slot 8
expect_exit 2 bc cat detached.data --type plain --key-file key0 --key-slot 1
[[ "$ERR" == *key-slot* ]] || fail "plain --key-slot: the message does not name --key-slot: $ERR"
