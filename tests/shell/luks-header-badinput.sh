#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad detached headers: a --header file of random bytes makes every command
# that takes --header fail with exit 4 and one line naming the header file,
# the header and data files byte-identical; a missing header file is exit 8
# and is not created; a directory is refused (exit 2); --header with
# --type plain is refused (exit 2) before anything is read; a wrong
# passphrase on a good detached header is exit 3, nothing changed; the data
# file of a detached-header volume opened without --header is not a volume
# (exit 4).
. "$(dirname "$0")/functions.bash"
requires sha256sum

printf 'right passphrase' >key
printf 'wrong passphrase' >wrong
printf 'new passphrase' >key2
random_file junk.hdr $((2 * 1024 * 1024))
random_file data.img $((4 * 1024 * 1024))
random_file in.raw 4096

# every_command CODE HEADER: every command given --header HEADER fails
# with CODE and a one-line message, and nothing changes.
every_command() {
	local want=$1 h=$2 hsha dsha
	hsha=$( [ -f "$h" ] && sha "$h" || echo none)
	dsha=$(sha data.img)
	expect_exit "$want" bc cat data.img --header "$h" --key-file key
	expect_exit "$want" bc write data.img --header "$h" --key-file key <in.raw
	expect_exit "$want" bc dump data.img --header "$h"
	expect_exit "$want" bc dump --json data.img --header "$h"
	expect_exit "$want" bc add-key data.img --header "$h" --key-file key --new-key-file key2 "${FAST_KDF[@]}"
	expect_exit "$want" bc change-key data.img --header "$h" --key-file key --new-key-file key2 "${FAST_KDF[@]}"
	expect_exit "$want" bc remove-key data.img --header "$h" --key-file key --batch
	expect_exit "$want" bc erase data.img --header "$h" --batch
	expect_exit "$want" bc unenroll data.img --header "$h" --batch
	expect_exit "$want" bc repair data.img --header "$h"
	expect_exit "$want" bc header-backup data.img --header "$h" backup.hdr
	[ ! -e backup.hdr ] || fail "header-backup of a bad header (--header $h) wrote a backup"
	expect_exit "$want" bc attach data.img --header "$h" --key-file key
	[ "$(sha data.img)" = "$dsha" ] || fail "--header $h: the data file changed"
	[ "$( [ -f "$h" ] && sha "$h" || echo none)" = "$hsha" ] || fail "--header $h: the header file changed"
}

every_command 4 junk.hdr
[[ "$ERR" == *junk.hdr* ]] || fail "the error does not name the header file: $ERR"
every_command 8 missing.hdr
[ ! -e missing.hdr ] || fail "a missing header file was created"
mkdir dir.hdr
every_command 2 dir.hdr

# --header is for LUKS: plain is refused before any key is read.
expect_exit 2 bc cat data.img --type plain --header junk.hdr --key-file /nonexistent
[[ "$ERR" == *--header* ]] || fail "plain --header: the message does not name --header: $ERR"

# A good detached header: a wrong passphrase is exit 3, nothing changed;
# the data file alone is not a volume.
truncate -s $((4 * 1024 * 1024)) vol.data
bc format vol.data --header vol.hdr --batch --key-file key "${FAST_KDF[@]}" --no-progress 2>/dev/null ||
	fail "format --header failed"
hsha=$(sha vol.hdr)
dsha=$(sha vol.data)
expect_exit 3 bc cat vol.data --header vol.hdr --key-file wrong
expect_exit 3 bc write vol.data --header vol.hdr --key-file wrong <in.raw
expect_exit 3 bc add-key vol.data --header vol.hdr --key-file wrong --new-key-file key2 "${FAST_KDF[@]}"
expect_exit 4 bc cat vol.data --key-file key
[ "$(sha vol.hdr)" = "$hsha" ] || fail "a wrong passphrase changed the header file"
[ "$(sha vol.data)" = "$dsha" ] || fail "a wrong passphrase changed the data file"
