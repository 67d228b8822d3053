#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A backing that is neither a regular file nor a block device -- a FIFO
# (whose open would wait for a writer forever), a character device such
# as /dev/zero, a directory, a socket -- is refused by every command at
# once: exit 2, one line saying what it is; no command hangs, nothing is
# created.
. "$(dirname "$0")/functions.bash"
requires timeout mkfifo
printf 'pass' >key
mkfifo fifo
mkdir dir
/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' sock
for b in fifo /dev/zero dir sock; do
	for cmd in "format $b --batch --key-file key ${FAST_KDF[*]}" "dump $b" "cat $b --key-file key" \
		"write $b --key-file key" "add-key $b --key-file key --new-key-file key" "erase $b --batch" \
		"header-backup $b hdr.$RANDOM" "attach $b --key-file key" \
		"cat $b --type plain --cipher aes-xts-plain64 --key-size 512 --key-file key"; do
		# shellcheck disable=SC2086
		expect_exit 2 timeout 20 "$BLOCKCRYPT" $cmd </dev/null
		[[ "$ERR" == *"not a regular file or block device"* ]] || fail "$cmd: unexpected message: $ERR"
	done
	note "$b: $ERR"
done
[ -z "$(ls hdr.* 2>/dev/null)" ] || fail "a refused command created a file: $(ls hdr.*)"
[ -z "$(ls -A "$BLOCKCRYPT_RUN_DIR" 2>/dev/null)" ] || fail "a refused attach left runtime files"
exit 0
