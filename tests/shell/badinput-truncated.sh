#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Truncated volumes: a LUKS2 volume cut inside the primary header (4 KiB,
# 12 KiB), after both header copies but inside the key slot area (20 KiB,
# 1 MiB), exactly at the data offset (16 MiB) and inside the first data
# sector; and a LUKS1 volume cut inside its header and at its data offset.
# Every command fails with one line and a documented meaningful code (4 not
# a volume/damaged, 5 too small/truncated, 7 I/O error; never 1), exactly 5
# where the header is intact but the data area is missing, and the file is
# byte-identical afterwards (no command "repairs" or extends it).
. "$(dirname "$0")/functions.bash"
requires sha256sum truncate

printf 'truncation test' >key
printf 'another key' >key2
random_file data 8192

# try ALLOWED FILE CMD...: CMD fails with one of the ALLOWED codes ("4 5 7")
# and a single line on stderr.
try() {
	local allowed=$1 f=$2 got=0; shift 2
	"$@" >/dev/null 2>err || got=$?
	[ "$2" != cat ] || note "cut at $(stat -c %s "$f") bytes: cat: exit $got: $(head -n 1 err)"
	case " $allowed " in *" $got "*) ;; *) problem "$*: expected exit in {$allowed}, got $got: $(cat err)" ;; esac
	[ "$(wc -l <err)" = 1 ] || problem "$*: expected one error line, got: $(cat err)"
}

# check_cut ORIG BYTES ALLOWED FULL: copy ORIG, truncate it to BYTES and run
# the commands.  FULL=yes: the header is cut too, so the header commands
# (add-key, erase, header-backup, repair) must fail as well.
check_cut() {
	local orig=$1 bytes=$2 allowed=$3 full=$4 f=cut.$2 before
	cp "$orig" "$f"
	truncate -s "$bytes" "$f"
	before=$(sha "$f")
	try "$allowed" "$f" bc cat "$f" --key-file key
	try "$allowed" "$f" bc write "$f" --key-file key <data
	try "$allowed" "$f" bc write "$f" --key-file key </dev/null
	if [ "$full" = yes ]; then
		try "$allowed" "$f" bc dump "$f"
		try "$allowed" "$f" bc add-key "$f" --key-file key --new-key-file key2 "${FAST_KDF[@]}"
		try "$allowed" "$f" bc remove-key "$f" --key-file key --batch
		try "$allowed" "$f" bc erase "$f" --batch
		try "$allowed" "$f" bc repair "$f"
		try "$allowed" "$f" bc header-backup "$f" "$f.hdr"
		[ ! -e "$f.hdr" ] || problem "header-backup of $f (cut at $bytes) created a backup"
	fi
	[ "$(stat -c %s "$f")" = "$bytes" ] || problem "$f (cut at $bytes) changed size to $(stat -c %s "$f")"
	[ "$(sha "$f")" = "$before" ] || problem "$f (cut at $bytes) was modified"
	rm -f "$f"
}

bc format l2 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" 2>/dev/null
off=$(data_offset l2)
[ "$off" = 16777216 ] || fail "unexpected LUKS2 data offset $off"
bc cat l2 --key-file key >/dev/null || fail "the untruncated volume does not open"

check_cut l2 4096 "4 5 7" yes          # binary header only, JSON area missing
check_cut l2 12288 "4 5 7" yes         # inside the primary JSON area
check_cut l2 20480 "4 5 7" yes         # secondary binary header, no key slots
check_cut l2 1048576 "4 5 7" yes       # inside the key slot area
check_cut l2 "$off" "5" no             # headers intact, no data area
check_cut l2 $((off + 2048)) "5" no    # less than one 4096-byte data sector

bc format l1 --type luks1 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" 2>/dev/null
off=$(data_offset l1)
check_cut l1 300 "4 5 7" yes           # inside the 592-byte LUKS1 header
check_cut l1 65536 "4 5 7" yes         # inside the key material
check_cut l1 "$off" "5" no             # header intact, no data area

check_problems
exit 0
