#!/usr/bin/env bash
# A client that starts a big WRITE and then trickles its payload, 64 bytes
# every 100 us, must not make the daemon burn a CPU.  While big WRITEs
# stream in, the reader polls the socket before it sleeps, but only for as
# long as the data received pays for (lib/nbd/nbd_conn.c): a trickle earns
# almost nothing.  (Before that rule, this client held the daemon at about
# 90% of a CPU; now it is a few percent.)  The bound checked, 30% of one
# CPU, is CPU time, not speed.  Afterwards the daemon still serves, and
# the data outside the client's WRITEs is intact.
. "$(dirname "$0")/functions.sh"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3 cmp nbdcopy
find_raw_client

random_volume 'trickle passphrase' 64M $((40 << 20)) "the test writes 32 MiB"
NAME=trickle
attach_as "$NAME"
[ "$(nproc)" -gt 1 ] || note "one CPU: the server never polls here, so this only checks that it sleeps"

share=$(timeout 60 /usr/bin/python3 "$RAW" trickle-write "$SOCK" "$NAME" "$PID" 3 100 2>trickle.err) ||
	fail "the trickling client failed: $(tail -n 1 trickle.err)"
note "daemon CPU while the payload trickled: $share of one CPU"
awk -v s="$share" 'BEGIN { exit !(s < 0.30) }' || fail "the daemon used $share of a CPU for a client trickling 64 bytes per 100 us"

kill -0 "$PID" 2>/dev/null || fail "the daemon died"
# The 32 MiB WRITE was cut short: never applied.  Only the first 1 MiB
# (the complete WRITE) changed.
timeout 60 nbdcopy --no-extents "$URI" - >after.raw 2>nbdcopy.err || fail "the daemon does not serve afterwards: $(cat nbdcopy.err)"
head -c $((1 << 20)) /dev/zero | tr '\0' '\132' >first.raw
cmp -s <(head -c $((1 << 20)) after.raw) first.raw || fail "the complete 1 MiB WRITE is not there"
cmp -s <(tail -c +$(((1 << 20) + 1)) after.raw) <(tail -c +$(((1 << 20) + 1)) expected.raw) ||
	fail "data beyond the complete WRITE changed: the cut-short WRITE was applied"
exit 0
