#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A key change on a detached header that fails half-way changes nothing:
# every write of add-key and change-key --header H to H in turn fails with
# EIO (strace fault injection), and each time the command fails with one
# line and H and the data file stay byte-identical (the header guard
# covers the whole header file, whose data offset is 0).  The same
# commands then succeed, and cryptsetup accepts the new passphrase.
. "$(dirname "$0")/functions.bash"
requires strace cryptsetup

printf 'guard passphrase' >key
printf 'guard new passphrase' >key2
for type in luks2 luks1; do
	rm -f vol.data hdr.orig
	truncate -s 1M vol.data
	bc format vol.data --type "$type" --header hdr.orig --batch --key-file key "${FAST_KDF[@]}" \
		--no-progress 2>/dev/null || fail "$type: format --header failed"
	BEFORE=$(sha hdr.orig)
	DATA=$(sha vol.data)
	for op in add-key change-key; do
		cmd=("$BLOCKCRYPT" "$op" vol.data --header hdr.img --key-file key --new-key-file key2 "${FAST_KDF[@]}")
		cp hdr.orig hdr.img
		"${UNDER_STRACE[@]}" strace -f -qq -c -P "$TEST_TMP/hdr.img" -e trace=pwrite64,write "${cmd[@]}" 2>&1 >/dev/null |
			awk '($NF == "pwrite64" || $NF == "write") && $4 ~ /^[0-9]+$/ { print $NF, $4 }' >counts
		[ -s counts ] || fail "$type $op: strace saw no write to the header file"
		total=0
		while read -r sc count; do
			for n in $(seq "$count"); do
				cp hdr.orig hdr.img
				rc=0
				"${UNDER_STRACE[@]}" strace -f -qq -o /dev/null -P "$TEST_TMP/hdr.img" -e trace="$sc" \
					-e inject="$sc":error=EIO:when="$n" "${cmd[@]}" >/dev/null 2>err || rc=$?
				[ "$rc" != 0 ] || fail "$type $op: $sc #$n failed with EIO, yet the command succeeded"
				[ "$(wc -l <err)" = 1 ] || fail "$type $op: $sc #$n: not one line: $(cat err)"
				[ "$(sha hdr.img)" = "$BEFORE" ] ||
					fail "$type $op: $sc #$n failed: the header file was left changed: $(cat err)"
				[ "$(sha vol.data)" = "$DATA" ] || fail "$type $op: the data file changed"
				total=$((total + 1))
			done
		done <counts
		[ "$total" -ge 2 ] || fail "$type $op: only $total failing writes tried"
		note "$type $op --header: each of $total failing writes left the header file byte-identical"
		cp hdr.orig hdr.img
		"${cmd[@]}" 2>/dev/null || fail "$type $op --header failed without fault injection"
		cryptsetup open --test-passphrase --header hdr.img --key-file key2 vol.data ||
			fail "$type $op --header: cryptsetup does not accept the new passphrase"
	done
done
