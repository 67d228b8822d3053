#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# format refuses backings it cannot use, before writing anything: too small
# for LUKS2 or LUKS1 (1 MiB, empty, or a --size that is too small) -> exit 5;
# a nonexistent path without --size -> exit 8; --sector-size 4096 on a size
# that is not a multiple of 4096 -> exit 2; --type plain -> exit 2.  Existing
# files stay byte-identical and keep their size; missing files are not
# created (blockcrypt(8): "fails with exit code 5 *before writing
# anything*"; "Failures ... leave the backing unchanged").
. "$(dirname "$0")/functions.bash"
requires sha256sum

printf 'small backing' >key

# refused CODE FILE FORMAT-ARGS...: format FILE fails with CODE and one line,
# FILE keeps its contents and size (or still does not exist).
refused() {
	local want=$1 f=$2 before=absent got=0; shift 2
	[ ! -e "$f" ] || before="$(sha "$f") $(stat -c %s "$f")"
	bc format "$f" --batch --key-file key "${FAST_KDF[@]}" "$@" >/dev/null 2>err || got=$?
	note "format $f $*: exit $got: $(cat err)"
	[ "$got" = "$want" ] || problem "format $f $*: expected exit $want, got $got: $(cat err)"
	[ "$(wc -l <err)" = 1 ] || problem "format $f $*: expected one error line, got: $(cat err)"
	if [ "$before" = absent ]; then
		[ ! -e "$f" ] || problem "format $f $* (refused) created $f ($(stat -c %s "$f") bytes)"
		rm -f "$f"
	else
		[ "$(sha "$f") $(stat -c %s "$f")" = "$before" ] ||
			problem "format $f $* (refused) modified $f (now $(stat -c %s "$f") bytes)"
	fi
}

random_file small $((1048576))
refused 5 small                      # LUKS2 needs 16 MiB + one sector
refused 5 small --type luks1         # LUKS1 needs 2 MiB + one sector
: >empty
refused 5 empty
refused 5 new1 --size 1M             # --size too small: must not create the file
cp small small2
refused 5 small2 --size 2M           # ... nor extend an existing one
cp small small3
refused 5 small3 --type luks1 --size 2M
refused 8 nonexistent                # no --size: nothing to create
refused 8 nodir/file --size 20M

random_file odd $((20 * 1048576 + 512))
refused 2 odd --sector-size 4096
refused 2 new2 --size $((20 * 1048576 + 512)) --sector-size 4096

head -c $((64 * 1048576)) /dev/zero >big
refused 2 big --type plain
refused 2 new3 --size 64M --type plain

# The limits are exact: one sector more than the header is enough.
random_file fits $((16 * 1048576 + 4096))
bc format fits --batch --key-file key "${FAST_KDF[@]}" >/dev/null 2>&1 ||
	problem "format of a 16 MiB + 4096 byte file failed"
bc cat fits --key-file key | cmp -s - <(head -c 4096 /dev/zero) ||
	problem "the minimal LUKS2 volume does not read back as 4096 zero bytes"

check_problems
exit 0
