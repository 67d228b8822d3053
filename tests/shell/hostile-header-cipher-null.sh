#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# cipher_null in headers cryptsetup accepts: a LUKS2 data segment that
# says cipher_null-ecb (the data is not encrypted), a LUKS2 key slot whose
# area encryption is cipher_null-ecb or cipher_null (the volume key would
# be stored in clear), and a LUKS1 header whose cipher is cipher_null (both
# at once).  cat, write and attach exit 11 with one line that says the data
# or the named key slot is unencrypted; add-key on the key slot cases exits
# 11 naming the slot too; nothing is attached, the backing stays
# byte-identical, and dump --json says "supported": false.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum /usr/bin/python3

. "$TESTS_DIR/shell/forge-lib.bash"

# refused LABEL FILE REGEX CMD...: the commands (cat, write, attach,
# add-key) exit 11 with one line matching REGEX; FILE unchanged.
refused() {
	local label=$1 f=$2 re=$3 before cmd got; shift 3
	before=$(sha "$f")
	for cmd in "$@"; do
		local args=("$cmd" "$f" --key-file key)
		[ "$cmd" != add-key ] || args+=(--new-key-file newkey "${FAST_KDF[@]}")
		got=0
		timeout 60 "$BLOCKCRYPT" "${args[@]}" <data >out 2>err || got=$?
		note "$label: $cmd: exit $got: $(cat err)"
		refusal_checked "$label: $cmd" 11 "$got" "$re"
		[ "$cmd" != cat ] || [ ! -s out ] || problem "$label: cat printed data"
	done
	nothing_attached "$label"
	dump_says_unsupported "$label" "$f"
	[ "$(sha "$f")" = "$before" ] || problem "$label: the backing was modified"
}

printf 'cipher null' >key
printf 'new key' >newkey
head -c 4096 /dev/urandom >data
bc format l2 --batch --key-file key --size 20M --no-wipe --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 ||
	fail "format LUKS2 failed"
bc format l1 --type luks1 --batch --key-file key --size 20M --no-wipe --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 ||
	fail "format LUKS1 failed"

# LUKS2 data segment in clear.
forge l2 seg segments.0.encryption=cipher_null-ecb
grep -Eq '^[[:space:]]*cipher:[[:space:]]*cipher_null-ecb' seg.dump || fail "luksDump does not show the cipher_null segment"
refused "LUKS2 cipher_null segment" seg 'data segment is not encrypted \(cipher cipher_null-ecb\)' cat write attach

# LUKS2 key slot stored in clear, in both spellings.
for spec in cipher_null-ecb cipher_null; do
	forge l2 "slot-$spec" keyslots.0.area.encryption="$spec"
	grep -Eq "^[[:space:]]*Cipher:[[:space:]]*$spec\$" "slot-$spec.dump" ||
		fail "luksDump does not show key slot 0 with $spec"
	refused "LUKS2 key slot $spec" "slot-$spec" "key slot 0 stores the volume key unencrypted \\(area encryption $spec\\)" \
		cat write attach add-key
done

# LUKS1: one cipher for the data and the key slots.
cp l1 l1null
forge_luks1 l1null cipher_name=cipher_null cipher_mode=ecb
cryptsetup_valid l1null
grep -q '^Cipher name:[[:space:]]*cipher_null$' l1null.dump || fail "could not set the LUKS1 cipher to cipher_null"
refused "LUKS1 cipher_null" l1null 'data segment is not encrypted \(cipher cipher_null-ecb\)' cat write attach

check_problems
exit 0
