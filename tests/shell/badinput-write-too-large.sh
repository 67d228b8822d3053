#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# write with more input than the volume holds: exit 5 with one line
# (blockcrypt(8): "input larger than the device is an error, exit 5").
# When standard input is a regular file its size is known before anything
# is written, so the backing must stay byte-identical ("Failures ... leave
# the backing unchanged").  From a pipe the tool cannot know in advance;
# there only the exit code and message are checked and what happened to the
# backing is reported.  Input of exactly the volume size is fine.
. "$(dirname "$0")/functions.bash"
requires sha256sum

printf 'too much' >key
bc format vol --batch --key-file key --size 20M "${FAST_KDF[@]}" >/dev/null 2>&1
size=$(bc cat vol --key-file key | wc -c)
[ "$size" = $((4 * 1048576)) ] || fail "unexpected volume size $size"

# Regular-file input, a little and a lot too large.
for extra in 1 4096 $((1048576 + 512)); do
	random_file in $((size + extra))
	before=$(sha vol)
	got=0; bc write vol --key-file key <in >/dev/null 2>err || got=$?
	note "regular file, $extra bytes too many: exit $got: $(cat err)"
	[ "$got" = 5 ] || problem "write of $extra bytes too many: expected exit 5, got $got: $(cat err)"
	[ "$(wc -l <err)" = 1 ] || problem "write of $extra bytes too many: expected one error line, got: $(cat err)"
	[ "$(sha vol)" = "$before" ] ||
		problem "write from a regular file $extra bytes larger than the volume failed but modified the backing"
done

# A volume larger than what write reads ahead (64 MiB): from a regular
# file the size is still checked before anything is written.
bc format big --batch --key-file key --size 100M --no-wipe "${FAST_KDF[@]}" >/dev/null 2>&1 || fail "format big failed"
bigsize=$(( $(stat -c %s big) - $(data_offset big) ))
head -c $((bigsize + 4096)) /dev/urandom >bigin
before=$(sha big)
got=0; bc write big --key-file key <bigin >/dev/null 2>err || got=$?
note "regular file into a ${bigsize}-byte volume, 4096 bytes too many: exit $got: $(cat err)"
[ "$got" = 5 ] || problem "big volume: expected exit 5, got $got: $(cat err)"
[ "$(sha big)" = "$before" ] || problem "big volume: a regular file larger than the volume modified the backing"
rm -f big bigin

# Pipe input: exit 5 and one line; report what was written.
random_file in $((size + 1048576))
bc cat vol --key-file key >old
got=0; cat in | bc write vol --key-file key >/dev/null 2>err || got=$?
[ "$got" = 5 ] || problem "write from a pipe, 1 MiB too many: expected exit 5, got $got: $(cat err)"
[ "$(wc -l <err)" = 1 ] || problem "write from a pipe: expected one error line, got: $(cat err)"
bc cat vol --key-file key >now
if cmp -s now old; then
	note "pipe, 1 MiB too many: exit $got, backing unchanged"
elif cmp -s now <(head -c "$size" in); then
	note "pipe, 1 MiB too many: exit $got, the volume was filled with the first $size bytes"
else
	note "pipe, 1 MiB too many: exit $got, the volume holds part of the input"
fi

# Exactly the volume size is not an error.
random_file in "$size"
bc write vol --key-file key <in >/dev/null 2>err || problem "write of exactly the volume size failed: $(cat err)"
bc cat vol --key-file key | cmp -s - in || problem "write of exactly the volume size does not read back"

check_problems
exit 0
