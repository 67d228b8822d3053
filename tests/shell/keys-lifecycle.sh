#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key slot life cycle on LUKS2 (and briefly LUKS1): add-key, change-key and
# remove-key (by passphrase and by --key-slot) change exactly the slots they
# should (dump --json, cross-checked with cryptsetup luksDump), every valid
# key decrypts the same data (blockcrypt cat, cryptsetup open
# --test-passphrase) and every removed/replaced key fails with exit 3.
# header-backup refuses to overwrite a file; erase --batch kills every key
# without touching the data area; header-restore --batch brings the keys and
# the data back.
. "$(dirname "$0")/functions.bash"
requires cryptsetup dd sha256sum /usr/bin/python3

# slots VOLUME: active key slots per `blockcrypt dump --json` (which must be
# valid JSON), e.g. "0 5"; must agree with cryptsetup luksDump.
slots() {
	local ours theirs
	bc dump --json "$1" >dump.json || fail "dump --json $1 failed"
	/usr/bin/python3 -m json.tool dump.json >/dev/null || fail "dump --json $1 is not valid JSON"
	ours=$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(str(s["slot"]) for s in d["keyslots"] if s["state"] == "active"))' dump.json)
	theirs=$(cryptsetup luksDump "$1" | awk '
		/^Key Slot [0-7]: ENABLED/ { sub(":", "", $3); s = s " " $3 }
		/^Keyslots:/ { k = 1; next } /^Tokens:/ { k = 0 }
		k && /^  [0-9]+: / { sub(":", "", $1); s = s " " $1 }
		END { sub("^ ", "", s); print s }')
	[ "$ours" = "$theirs" ] || fail "$1: dump --json says slots '$ours', cryptsetup says '$theirs'"
	echo "$ours"
}
expect_slots() {
	local got; got=$(slots "$1")
	[ "$got" = "$2" ] || fail "$1: active slots '$got', expected '$2'"
}

# opens VOLUME KEYFILE: blockcrypt decrypts exactly the reference contents
# and cryptsetup accepts the key too.
opens() {
	bc cat "$1" --key-file "$2" >out 2>err || fail "cat $1 with $2 failed: $(cat err)"
	[ "$(sha out)" = "$REF" ] || fail "cat $1 with $2: decrypted data differs"
	cryptsetup open --test-passphrase --key-file "$2" "$1" ||
		fail "cryptsetup rejects $2 on $1"
}
# rejected VOLUME KEYFILE: exit 3 with one line, and cryptsetup agrees.
rejected() {
	expect_exit 3 bc cat "$1" --key-file "$2"
	! cryptsetup open --test-passphrase --key-file "$2" "$1" 2>/dev/null ||
		fail "cryptsetup still accepts $2 on $1"
}

printf 'first passphrase' >k0
printf 'second passphrase' >k1
printf 'third passphrase' >k2
printf 'fourth passphrase' >k3
random_file data $((2 * 1048576))

# ---- LUKS2 -----------------------------------------------------------------
bc format vol --batch --key-file k0 --size 32M "${FAST_ARGON[@]}" 2>/dev/null
bc write vol --key-file k0 <data 2>/dev/null
bc cat vol --key-file k0 >out
cmp -s <(head -c $((2 * 1048576)) out) data || fail "written data does not read back"
REF=$(sha out)
expect_slots vol "0"

# add-key: the new key opens the same data; the old one still does.
bc add-key vol --key-file k0 --new-key-file k1 "${FAST_ARGON[@]}" 2>/dev/null
expect_slots vol "0 1"
opens vol k1
opens vol k0

# change-key: same slot, old key rejected, new one accepted.
bc change-key vol --key-file k1 --new-key-file k2 "${FAST_ARGON[@]}" 2>/dev/null
expect_slots vol "0 1"
rejected vol k1
opens vol k2
cryptsetup open --test-passphrase --key-slot 1 --key-file k2 vol || fail "new key is not in slot 1"

# add-key into a chosen slot.
bc add-key vol --key-file k0 --new-key-file k3 --key-slot 5 "${FAST_ARGON[@]}" 2>/dev/null
expect_slots vol "0 1 5"
cryptsetup open --test-passphrase --key-slot 5 --key-file k3 vol || fail "k3 is not in slot 5"
opens vol k3

# remove-key by passphrase, then by slot number.
bc remove-key vol --key-file k2 2>/dev/null
expect_slots vol "0 5"
rejected vol k2
opens vol k3
bc remove-key vol --key-slot 5 --batch 2>/dev/null
expect_slots vol "0"
rejected vol k3
opens vol k0

# header-backup, and it refuses to overwrite an existing file.
bc header-backup vol hdr 2>/dev/null
[ -s hdr ] || fail "header-backup wrote no file"
[ "$(cryptsetup luksUUID hdr)" = "$(cryptsetup luksUUID vol)" ] || fail "backup is not vol's header"
hdr_sha=$(sha hdr)
printf 'precious' >other
other_sha=$(sha other)
for f in hdr other; do
	got=0; bc header-backup vol "$f" 2>err || got=$?
	[ "$got" != 0 ] || fail "header-backup overwrote existing file $f"
	[ "$(wc -l <err)" = 1 ] || fail "header-backup onto $f: expected one error line, got: $(cat err)"
	note "header-backup onto existing $f: exit $got: $(cat err)"
done
[ "$(sha hdr)" = "$hdr_sha" ] || fail "refused header-backup modified the existing backup"
[ "$(sha other)" = "$other_sha" ] || fail "refused header-backup modified the existing file"

# erase: every key fails, the data area is untouched.
before=$(data_sha vol)
bc erase vol --batch 2>/dev/null
expect_slots vol ""
rejected vol k0
expect_exit 3 bc write vol --key-file k0 <data
[ "$(data_sha vol)" = "$before" ] || fail "erase changed the data area"

# header-restore: keys and data are back.
bc header-restore vol hdr --batch 2>/dev/null
expect_slots vol "0"
opens vol k0
rejected vol k1
[ "$(data_sha vol)" = "$before" ] || fail "header-restore changed the data area"
[ "$(sha hdr)" = "$hdr_sha" ] || fail "header-restore modified the backup file"

# ---- LUKS1 -----------------------------------------------------------------
bc format v1 --type luks1 --batch --key-file k0 --size 20M "${FAST_KDF[@]}" 2>/dev/null
bc write v1 --key-file k0 <data 2>/dev/null
bc cat v1 --key-file k0 >out
REF=$(sha out)
expect_slots v1 "0"
bc add-key v1 --key-file k0 --new-key-file k1 "${FAST_KDF[@]}" 2>/dev/null
expect_slots v1 "0 1"
opens v1 k1
bc add-key v1 --key-file k1 --new-key-file k3 --key-slot 3 "${FAST_KDF[@]}" 2>/dev/null
expect_slots v1 "0 1 3"
cryptsetup open --test-passphrase --key-slot 3 --key-file k3 v1 || fail "LUKS1: k3 is not in slot 3"
bc remove-key v1 --key-file k0 2>/dev/null
expect_slots v1 "1 3"
rejected v1 k0
opens v1 k1
bc remove-key v1 --key-slot 3 --batch 2>/dev/null
expect_slots v1 "1"
rejected v1 k3
opens v1 k1
exit 0
