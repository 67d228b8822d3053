#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key slot removal on hostile headers (cryptsetup-valid, forged with
# luks2_forge.py on a LUKS2 volume with two pbkdf2 key slots):
#  - an unknown mandatory requirement makes the header read-only (LUKS2
#    specification; libcryptsetup 2.6 itself does not stop a key slot
#    being destroyed): remove-key by passphrase, remove-key --key-slot 1
#    and erase exit 11 with one line naming the requirement;
#  - key slot 0 asking for 2^32 PBKDF2 iterations: remove-key by
#    passphrase (which has to find the slot by deriving keys) exits 11
#    naming the slot instead of deriving for hours (timeout: hang guard).
# The backing stays byte-identical each time.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum timeout /usr/bin/python3

. "$TESTS_DIR/shell/forge-lib.bash"

# refused LABEL FILE REGEX CMD...: exit 11, one line matching REGEX, FILE unchanged.
refused() {
	local label=$1 f=$2 re=$3 before got=0; shift 3
	before=$(sha "$f")
	timeout 30 "$BLOCKCRYPT" "$@" >out 2>err </dev/null || got=$?
	note "$label: exit $got: $(cat err)"
	refusal_checked "$label" 11 "$got" "$re"
	[ "$(sha "$f")" = "$before" ] || problem "$label: the backing was modified"
}

printf 'key ops' >key
printf 'other key' >key1
bc format vol --batch --key-file key --size 20M --no-wipe --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 ||
	fail "format failed"
bc add-key vol --key-file key --new-key-file key1 --key-slot 1 "${FAST_KDF[@]}" 2>/dev/null || fail "add-key failed"

REQ='config.requirements={"mandatory":["x-future-feature"]}'
forge vol req "$REQ"
refused "unknown requirement: remove-key" req 'x-future-feature' remove-key req --key-file key1 --batch
forge vol req "$REQ"
refused "unknown requirement: remove-key --key-slot 1" req 'x-future-feature' remove-key req --key-slot 1 --batch
forge vol req "$REQ"
refused "unknown requirement: erase" req 'x-future-feature' erase req --batch

forge vol pb32 keyslots.0.kdf.iterations=4294967296
refused "pbkdf2 2^32 in slot 0: remove-key" pb32 'key slot 0: pbkdf2 iteration count 4294967296 ' \
	remove-key pb32 --key-file key1 --batch

check_problems
exit 0
