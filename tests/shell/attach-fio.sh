#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Concurrent random writes over several NBD connections (fio's nbd engine:
# 4 jobs, one connection each, queue depth 16, mixed 4k-64k blocks, each
# job on its own 8 MiB slice) all verify (crc32c), and still verify after
# detach and re-attach, so they were persisted.  A block overwritten behind
# fio's back must make the same verify job fail (the check has teeth).
. "$(dirname "$0")/functions.bash"
requires fio python3
# nbdsh is 'python3 -m nbd'; the python3 first on PATH may lack libnbd's module.
requires_python_nbd
nbdsh() { /usr/bin/python3 -m nbd "$@"; }
requires_fio_nbd

new_volume vol.img key
bc attach vol.img --key-file key >/dev/null || fail "attach failed"
uri=$(nbd_uri vol)

cat >job.fio <<EOF2
[global]
ioengine=nbd
uri=$uri
rw=randwrite
bsrange=4k-64k
iodepth=16
numjobs=4
size=8m
offset_increment=8m
verify=crc32c
do_verify=1
verify_fatal=1
verify_dump=0
randseed=4242
[slice]
EOF2

run_fio() { fio_verified "$1" 4 $((8 << 20)) "${@:2}"; }

run_fio write.json
bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
bc attach vol.img --key-file key >/dev/null || fail "re-attach failed"
run_fio reverify.json --verify_only

# Overwrite 64 KiB in the middle of job 2's slice: verification must fail now.
nbdsh -u "$uri" -c 'h.pwrite(b"\x5a" * 65536, 12 << 20)' || fail "nbdsh overwrite failed"
if fio --output-format=json --output=bad.json --verify_only job.fio >fio.log 2>&1; then
	fail "fio verify passed over data overwritten behind its back"
fi
grep -q '"error" : [1-9]' bad.json || fail "fio failed but no job reports an error: $(tail -5 fio.log)"
exit 0
