#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Valid LUKS headers whose data cipher blockcrypt's sector engine cannot do
# (it does AES only): a LUKS2 volume whose data segment says
# serpent-xts-plain64 (key slots still AES, both header copies rewritten
# with correct checksums, so cryptsetup accepts the header and the key) and
# a LUKS1 header saying twofish, a LUKS2 one saying lofi's aes-256-cbc
# (format refuses to make one).  cat and write must exit 11 (unsupported)
# with one line and leave the backing byte-identical -- never decrypt with
# the wrong cipher, never blame the disk (7) -- and dump --json must say
# "supported": false (blockcrypt(8): whether blockcrypt can read the data).
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum /usr/bin/python3
. "$TESTS_DIR/shell/forge-lib.bash"

printf 'unsupported' >key
random_file data 4096

# refused LABEL FILE: cat and write exit 11, FILE unchanged, dump --json
# says unsupported.
refused() {
	local label=$1 f=$2 before cmd got
	before=$(sha "$f")
	for cmd in cat write; do
		got=0; bc $cmd "$f" --key-file key <data >out 2>err || got=$?
		note "$label: $cmd: exit $got: $(cat err)"
		[ "$got" = 11 ] || problem "$label: $cmd: expected exit 11, got $got: $(cat err)"
		[ "$(wc -l <err)" = 1 ] || problem "$label: $cmd: expected one error line, got: $(cat err)"
		[ "$cmd" = write ] || [ ! -s out ] || problem "$label: cat wrote $(wc -c <out) bytes of data"
	done
	dump_says_unsupported "$label" "$f"
	[ "$(sha "$f")" = "$before" ] || problem "$label: the backing was modified"
}

# LUKS2: data segment serpent, key slots AES.
bc format l2 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" >/dev/null 2>&1
forge_in_place l2 segments.0.encryption=serpent-xts-plain64
cryptsetup luksDump l2 | grep -q 'cipher: serpent-xts-plain64' || fail "could not rewrite the LUKS2 segment cipher"
cryptsetup open --test-passphrase --key-file key l2 || fail "cryptsetup no longer accepts the patched LUKS2 header"
refused "LUKS2 serpent data segment" l2

# LUKS1: cipher-name field (offset 8, 32 bytes) says twofish.
bc format l1 --type luks1 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" >/dev/null 2>&1
forge_luks1 l1 cipher_name=twofish
cryptsetup luksDump l1 | grep -q '^Cipher name:[[:space:]]*twofish$' || fail "could not rewrite the LUKS1 cipher name"
refused "LUKS1 twofish" l1

# LUKS2 whose segment says lofi's aes-256-cbc (dm-crypt has no such IVs),
# and format asked for it: refused, nothing made.
bc format l3 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" >/dev/null 2>&1
forge_in_place l3 segments.0.encryption=aes-256-cbc
cryptsetup luksDump l3 | grep -q 'cipher: aes-256-cbc' || fail "could not rewrite the LUKS2 segment cipher to aes-256-cbc"
refused "LUKS2 lofi cipher name" l3
expect_exit 2 bc format l4 --batch --key-file key --size 20M --cipher aes-256-cbc
case $ERR in *"lofi's cipher"*) ;; *) problem "format --cipher aes-256-cbc: unclear: $ERR" ;; esac
[ ! -e l4 ] || problem "format --cipher aes-256-cbc left a file"

check_problems
exit 0
