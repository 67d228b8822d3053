#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# attach with a wrong key fails with exit 3 and a one-line message, serves
# nothing (no list entry, no socket, no FUSE mount, no daemon left) and
# leaves the backing byte-identical; the right key then attaches.
. "$(dirname "$0")/functions.bash"
requires python3 mountpoint nbdinfo

new_volume vol.img key
printf 'not the passphrase' >wrong1
{ cat key; echo; } >wrong2          # the right one plus a newline: key files are byte-exact
before=$(sha vol.img)
mkdir mnt

for w in wrong1 wrong2; do
	expect_exit 3 bc attach vol.img --key-file "$w" --fuse mnt
	case $ERR in blockcrypt:*) ;; *) fail "error does not start with 'blockcrypt:': $ERR" ;; esac
	note "$w: $ERR"
	expect_exit 3 bc attach vol.img --key-file "$w" --name other --json
	[ ! -s "$TEST_TMP/.out" ] || fail "attach --json with a wrong key printed: $(cat "$TEST_TMP/.out")"
done

out=$(bc list --json) || fail "list --json failed"
python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1]) != [])' "$out" || fail "list after failed attaches: $out"
left=$(files_except "$BLOCKCRYPT_RUN_DIR" '\.log$')
[ -z "$left" ] || fail "failed attaches left runtime files: $left"
! mountpoint -q mnt || fail "a failed attach left a FUSE mount on mnt"
[ "$(sha vol.img)" = "$before" ] || fail "backing modified by failed attaches"

# The right key still works, under the name the failed attempts wanted.
bc attach vol.img --key-file key --fuse mnt >/dev/null || fail "attach with the right key failed"
nbdinfo "$(nbd_uri vol)" >/dev/null || fail "volume not served after the right key"
[ -f mnt/vol ] || fail "no FUSE file after the right key"
exit 0
