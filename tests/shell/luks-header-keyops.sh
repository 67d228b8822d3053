#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Header commands with --header H work on the header file, as cryptsetup's
# --header does, and never write the data file: add-key, change-key and
# remove-key change the key slots cryptsetup then sees in H; dump and
# dump --json show H (data offset 0, "header" in JSON); header-backup
# writes a backup cryptsetup reads; erase empties H's key slots (cryptsetup
# then refuses the passphrase); header-restore puts the backup back (the
# volume opens again); repair accepts a sound H.  The data file stays
# byte-identical throughout.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum grep

printf 'first passphrase' >key
printf 'second passphrase' >key2
printf 'third passphrase' >key3

# cs_accepts KEYFILE: cryptsetup opens the volume with KEYFILE.
cs_accepts() { cryptsetup open --test-passphrase --header vol.hdr --key-file "$1" vol.data 2>/dev/null; }

for type in luks2 luks1; do
	note "$type"
	rm -f vol.data vol.hdr backup.hdr
	random_file vol.data $((2 * 1024 * 1024))
	bc format vol.data --type "$type" --header vol.hdr --batch --key-file key "${FAST_KDF[@]}" --no-progress \
		2>/dev/null || fail "$type: format --header failed"
	DATA=$(sha vol.data)

	bc add-key vol.data --header vol.hdr --key-file key --new-key-file key2 "${FAST_KDF[@]}" 2>/dev/null ||
		fail "$type: add-key --header failed"
	cs_accepts key2 || fail "$type: cryptsetup does not see the key added with --header"
	bc change-key vol.data --header vol.hdr --key-file key2 --new-key-file key3 "${FAST_KDF[@]}" 2>/dev/null ||
		fail "$type: change-key --header failed"
	cs_accepts key3 || fail "$type: cryptsetup does not see the changed key"
	! cs_accepts key2 || fail "$type: the old key still opens after change-key --header"
	bc remove-key vol.data --header vol.hdr --key-file key3 --batch 2>/dev/null ||
		fail "$type: remove-key --header failed"
	! cs_accepts key3 || fail "$type: the removed key still opens"
	cs_accepts key || fail "$type: the first key no longer opens"

	bc dump vol.data --header vol.hdr >dump.txt || fail "$type: dump --header failed"
	grep -Eq "^Version:[[:space:]]+${type#luks}\$" dump.txt || fail "$type: dump --header shows no version ${type#luks}"
	bc dump --json vol.data --header vol.hdr >dump.json || fail "$type: dump --json --header failed"
	/usr/bin/python3 - <<'EOF' || fail "$type: dump --json --header: wrong header, device or data offset"
import json
d = json.load(open('dump.json'))
assert d['header'] == 'vol.hdr' and d['device'] == 'vol.data' and d['data_offset'] == 0, d
assert [s['slot'] for s in d['keyslots']] == [0], d['keyslots']
EOF

	bc header-backup vol.data --header vol.hdr backup.hdr 2>/dev/null || fail "$type: header-backup --header failed"
	cryptsetup open --test-passphrase --header backup.hdr --key-file key vol.data ||
		fail "$type: cryptsetup does not open with the header backup"

	bc erase vol.data --header vol.hdr --batch 2>/dev/null || fail "$type: erase --header failed"
	! cs_accepts key || fail "$type: the key still opens after erase --header"
	expect_exit 3 bc cat vol.data --header vol.hdr --key-file key

	bc header-restore vol.data --header vol.hdr backup.hdr --batch 2>/dev/null ||
		fail "$type: header-restore --header failed"
	cs_accepts key || fail "$type: the key does not open after header-restore --header"
	bc repair vol.data --header vol.hdr 2>/dev/null || fail "$type: repair --header of a sound header failed"
	cs_accepts key || fail "$type: the key does not open after repair --header"
	[ "$(sha vol.data)" = "$DATA" ] || fail "$type: a header command wrote the data file"
done
