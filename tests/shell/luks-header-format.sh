#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# blockcrypt format --header H (LUKS2 and LUKS1): H is created (mode 0600)
# and is a detached header to cryptsetup (luksDump H: data offset 0);
# cryptsetup open --test-passphrase --header H accepts the passphrase; the
# data file holds no LUKS signature and decrypts with the oracle and the
# volume key cryptsetup dumps from H to what blockcrypt wrote; a key that
# cryptsetup luksAddKey --header H adds opens the volume in blockcrypt; a
# failed format (backing missing, no --size) leaves no header file behind.
. "$(dirname "$0")/functions.bash"
requires cryptsetup /usr/bin/python3 cmp stat
requires_python_cryptography

SIZE=$((8 * 1024 * 1024))
printf 'format --header passphrase' >pass
printf 'added by cryptsetup' >pass2

run_case() { # NAME TYPE SECTOR_SIZE
	local name=$1 type=$2 ssize=$3 data=$1.data hdr=$1.hdr key off
	note "$name: blockcrypt format --type $type --header $hdr"
	random_file "$data" "$SIZE"
	bc format "$data" --type "$type" --header "$hdr" --batch --key-file pass "${FAST_KDF[@]}" \
		--no-progress 2>bc.err || fail "$name: blockcrypt format --header failed: $(cat bc.err)"
	[ -f "$hdr" ] || fail "$name: format did not create the header file"
	[ "$(stat -c %a "$hdr")" = 600 ] || fail "$name: header file mode $(stat -c %a "$hdr"), not 600"
	[ "$(stat -c %s "$data")" = "$SIZE" ] || fail "$name: format changed the data file's size"

	cryptsetup luksDump "$hdr" >dump.txt || fail "$name: cryptsetup luksDump $hdr failed"
	grep -Eq "^Version:[[:space:]]+${type#luks}\$" dump.txt || fail "$name: luksDump shows no version ${type#luks}"
	off=$(awk '/^Payload offset:/{print $3*512; exit} /^[ \t]*offset:/{print $2; exit}' dump.txt)
	[ "$off" = 0 ] || fail "$name: the data starts at '$off' in the header, not 0"
	cryptsetup open --test-passphrase --header "$hdr" --key-file pass "$data" ||
		fail "$name: cryptsetup does not accept the passphrase with --header"
	[ "$(head -c 6 "$data" | od -An -tx1 | tr -d ' \n')" != 4c554b53babe ] ||
		fail "$name: the data file has a LUKS signature"

	# Wiped: reads as zeros.  Then blockcrypt writes, the oracle decrypts.
	bc cat "$data" --header "$hdr" --key-file pass >cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat --header failed: $(cat bc.err)"
	cmp cat.raw <(head -c "$SIZE" /dev/zero) || fail "$name: the new volume does not read as zeros"
	random_file in.raw "$SIZE"
	bc write "$data" --header "$hdr" --key-file pass <in.raw 2>bc.err ||
		fail "$name: blockcrypt write --header failed: $(cat bc.err)"
	key=$(volume_key "$hdr" pass)
	$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size "$ssize" "$data" oracle.raw
	cmp oracle.raw in.raw || fail "$name: oracle decryption differs from what blockcrypt wrote"

	# cryptsetup adds a key to the detached header; blockcrypt opens with it.
	cryptsetup luksAddKey --batch-mode --header "$hdr" --key-file pass \
		--pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$data" pass2 ||
		fail "$name: cryptsetup luksAddKey --header failed"
	bc cat "$data" --header "$hdr" --key-file pass2 >cat.raw 2>bc.err ||
		fail "$name: blockcrypt does not open with the key cryptsetup added: $(cat bc.err)"
	cmp cat.raw in.raw || fail "$name: blockcrypt cat with the added key differs"
	rm -f "$data" "$hdr" cat.raw in.raw oracle.raw
}

run_case luks2 luks2 4096
run_case luks1 luks1 512

# A format that fails leaves no header file it created.
expect_exit 8 bc format missing.data --header new.hdr --batch --key-file pass "${FAST_KDF[@]}"
[ ! -e new.hdr ] || fail "a failed format left the header file behind"
: >small.data
expect_exit 5 bc format small.data --header new.hdr --batch --key-file pass "${FAST_KDF[@]}"
[ ! -e new.hdr ] || fail "a failed format (too small) left the header file behind: $ERR"
# --header with plain is refused before anything is written.
expect_exit 2 bc format small.data --type plain --header new.hdr --batch --key-file pass
[ ! -e new.hdr ] || fail "format --type plain --header created the header file"
