#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Big requests on one NBD connection, with every number of serving threads
# that changes how they are shared out.  A READ or WRITE of 128 KiB or more
# is handed, with the buffer holding its payload, to a sleeping thread
# while the reader reads on (lib/nbd/nbd_conn.c); with --threads 1 nothing
# is ever handed over, with 2 at most one request waits, with 8 up to 7.
# For each: fio writes 128 KiB-2 MiB blocks at queue depth 16 with a FLUSH
# every 4 writes, and reads them all back (crc32c); after detach and
# re-attach with another thread count, everything verifies again.  A buffer
# given to the wrong request, or reused while its request still runs,
# fails the verify.  Last, a client that sends big WRITEs and hangs up
# without reading a reply leaves the daemon serving.
. "$(dirname "$0")/functions.bash"
requires fio python3 nbdcopy
requires_fio_nbd

VOLUME_SIZE=96M new_volume vol.img key
uri=$(nbd_uri vol)

cat >job.fio <<EOF2
[global]
ioengine=nbd
uri=$uri
rw=randwrite
bsrange=128k-2m
iodepth=16
fsync=4
size=64m
verify=crc32c
do_verify=1
verify_fatal=1
verify_dump=0
randseed=${RANDOM}
[big]
EOF2

run_fio() { fio_verified "$1" 1 $((64 << 20)) "${@:2}"; }

for threads in 1 2 8; do
	bc attach vol.img --key-file key --threads "$threads" >/dev/null || fail "attach --threads $threads failed"
	run_fio "write-$threads.json"
	bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
	# Written with THREADS, read back by another layout.
	bc attach vol.img --key-file key --threads $((threads == 8 ? 1 : 8)) >/dev/null || fail "re-attach failed"
	run_fio "reverify-$threads.json" --verify_only
	bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
done

# Everything of the export past the first 6 MiB, hashed, read by nbdcopy.
beyond_6m() { (set -o pipefail; nbdcopy --no-extents "$uri" - | tail -c +$(((6 << 20) + 1)) | sha256sum); }

bc attach vol.img --key-file key --threads 8 >/dev/null || fail "attach failed"
pid=$(daemon_pid vol)
before=$(beyond_6m) || fail "reading the export failed"
/usr/bin/python3 "$TESTS_DIR/shell/nbd_raw_client.py" hangup-big-writes "$BLOCKCRYPT_RUN_DIR/vol.sock" vol ||
	fail "the hang-up client failed"
sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "the daemon died after a client hung up in the middle of big WRITEs"
after=$(beyond_6m) || fail "the daemon does not serve a new client after the hang-up"
[ "$before" = "$after" ] || fail "data outside the hung-up client's WRITEs changed"
note "hang-up: daemon alive, the export beyond the WRITEs unchanged"
exit 0
