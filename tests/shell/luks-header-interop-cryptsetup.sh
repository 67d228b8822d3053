#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Detached headers made by cryptsetup (luksFormat --header H, LUKS2 and
# LUKS1): blockcrypt write/cat with --header H read back what was written;
# the data file holds no LUKS signature (its data starts at byte 0) and
# decrypts with the independent oracle and the volume key cryptsetup dumps
# from H to exactly those bytes; data the oracle encrypts comes back through
# blockcrypt cat; the header file is not changed by data writes and
# cryptsetup still accepts the passphrase; without --header the data file
# is "not a volume" (exit 4).
. "$(dirname "$0")/functions.bash"
requires cryptsetup /usr/bin/python3 cmp
requires_python_cryptography

SIZE=$((8 * 1024 * 1024))
printf 'detached header passphrase' >pass
PBKDF2=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)

# no_luks_signature FILE: FILE does not start with a LUKS magic.
no_luks_signature() {
	[ "$(head -c 6 "$1" | od -An -tx1 | tr -d ' \n')" != 4c554b53babe ] ||
		fail "$1: the data file starts with a LUKS signature"
}

run_case() { # NAME TYPE SECTOR_SIZE (LUKS2) ...cryptsetup args
	local name=$1 type=$2 ssize=$3 data=$1.data hdr=$1.hdr key off hsha
	shift 3
	note "$name: cryptsetup luksFormat --type $type --header $hdr $*"
	truncate -s "$SIZE" "$data"
	cryptsetup luksFormat --type "$type" --batch-mode --key-file pass "${PBKDF2[@]}" \
		--header "$hdr" "$@" "$data"
	cryptsetup luksDump "$hdr" >dump.txt
	off=$(awk '/^Payload offset:/{print $3*512; exit} /^[ \t]*offset:/{print $2; exit}' dump.txt)
	[ "$off" = 0 ] || fail "$name: cryptsetup put the data at $off, not 0"
	key=$(volume_key "$hdr" pass)

	# blockcrypt writes through the detached header; the oracle decrypts
	# the data file from byte 0 with cryptsetup's volume key.
	random_file in.raw "$SIZE"
	hsha=$(sha "$hdr")
	bc write "$data" --header "$hdr" --key-file pass <in.raw 2>bc.err ||
		fail "$name: blockcrypt write --header failed: $(cat bc.err)"
	[ "$(sha "$hdr")" = "$hsha" ] || fail "$name: writing data changed the header file"
	no_luks_signature "$data"
	$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size "$ssize" \
		"$data" oracle.raw
	cmp oracle.raw in.raw || fail "$name: oracle decryption of the data file differs from what blockcrypt wrote"
	bc cat "$data" --header "$hdr" --key-file pass >cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat --header failed: $(cat bc.err)"
	cmp cat.raw in.raw || fail "$name: blockcrypt cat --header differs from what it wrote"

	# The oracle encrypts, blockcrypt reads.
	random_file in2.raw "$SIZE"
	$ORACLE encrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size "$ssize" in2.raw "$data"
	bc cat "$data" --header "$hdr" --key-file pass >cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat --header failed: $(cat bc.err)"
	cmp cat.raw in2.raw || fail "$name: blockcrypt cat differs from what the oracle encrypted"

	cryptsetup open --test-passphrase --header "$hdr" --key-file pass "$data" ||
		fail "$name: cryptsetup no longer accepts the passphrase"
	# The data file alone is no volume.
	expect_exit 4 bc cat "$data" --key-file pass
	rm -f "$data" "$hdr" in.raw in2.raw cat.raw oracle.raw
}

run_case luks2-4096 luks2 4096 --sector-size 4096
run_case luks2-512 luks2 512 --sector-size 512
run_case luks1 luks1 512
