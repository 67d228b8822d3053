#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Small WRITEs that arrive together are run in batches by one thread, and
# their replies go out in one write (lib/nbd/nbd_conn.c, run_batch).  A
# raw client (nbd_raw_client.py write-bursts) sends bursts of 40 small
# WRITEs in one send() each, some of them refused in the middle (past the
# end, an unknown flag), with simple replies and with structured replies.
# What must hold: every request answered exactly once with its own error;
# the refused ones change nothing and their payloads do not shift the
# stream; the device reads back every good write, over NBD and, after
# detach, with `blockcrypt cat`.  The same bursts go to a daemon with
# --threads 1 (one thread runs every batch) and with the default threads.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3 cmp
find_raw_client

random_volume 'write batches passphrase' 24M

for threads in 1 4; do
	attach_as batches --threads "$threads"
	for structured in 0 1; do
		note "--threads $threads, structured replies $structured: 12 bursts of 40 WRITEs"
		rc=0
		timeout 120 /usr/bin/python3 "$RAW" write-bursts "$SOCK" batches expected.raw \
			"$structured" "$threads$structured" 2>raw.err || rc=$?
		[ "$rc" != 124 ] || fail "--threads $threads, structured $structured: the raw client hung"
		[ "$rc" = 0 ] || fail "--threads $threads, structured $structured: $(tail -n 1 raw.err | sed 's/^FAIL: [^:]*: //')"
	done
	kill -0 "$PID" 2>/dev/null || fail "--threads $threads: the daemon died"
	detach_and_wait batches "$PID"
	bc cat v.img --key-file key >after.raw || fail "cat after detach failed"
	cmp after.raw expected.raw >cmp.out 2>&1 ||
		fail "--threads $threads: the volume holds other data than the clients wrote: $(head -n 1 cmp.out)"
done
exit 0
