#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Soak: six concurrent NBD clients, mixed operations, over 1 GiB written and
# over 1 GiB verified in total, zero mismatches, and everything still there
# after detach and re-attach.
#
# One LUKS2 volume (4096-byte sectors) attached with --allow-discards, cut
# into six 48 MiB regions, one per client, all running at once:
#   - four fio jobs (nbd engine, one connection each), 4 passes over their
#     region each, every block verified (crc32c) after each pass (not
#     verify_backlog: with it, fio --verify_only misses corruption): 4k
#     blocks at queue depth 32;
#     4k-128k; 512 B-8k (mostly partial 4096-byte sectors: read-modify-write);
#     64k-1M; each with FLUSHes every 16 to 128 writes;
#   - two python clients (soak_client.py) with 8 requests in flight: WRITE
#     (byte-granular, some FUA), WRITE_ZEROES (some NO_HOLE), TRIM, READ and
#     FLUSH, every READ checked against an exact model (TRIM leaves its range
#     undefined, and only it; bytes outside must be untouched).
# Afterwards: fio wrote and verified exactly what it should with no error;
# the python clients found no mismatch; detach, re-attach, and fio
# --verify_only plus the python models verify every region again.  Finally
# a 4 KiB block overwritten behind fio's back must make its verify fail, and
# the python checker proves it catches a flipped byte.
. "$(dirname "$0")/functions.bash"
requires fio
requires_python_nbd
requires_fio_nbd
CLIENT=(/usr/bin/python3 "$TESTS_DIR/shell/soak_client.py")
SEED=${SOAK_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
note "seed $SEED (SOAK_SEED=$SEED repeats the python clients' operations)"
MiB=1048576
REGION=$((48 * MiB))
LOOPS=4
PY_EXTRA=$((112 * MiB))   # bytes each python client writes after filling its region

VOLUME_SIZE=$((16 + 6 * 48))M new_volume vol.img key --sector-size 4096 --no-wipe
uri=$(bc attach vol.img --key-file key --allow-discards) || fail "attach failed"
size=$(/usr/bin/python3 -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); print(h.get_size())' "$uri")
[ "$size" -ge $((6 * REGION)) ] || fail "volume has only $size bytes"

cat >soak.fio <<EOF
[global]
ioengine=nbd
uri=$uri
rw=randwrite
size=48m
loops=$LOOPS
verify=crc32c
verify_fatal=1
verify_dump=0
randseed=$SEED
[j4k]
offset=0
bs=4k
iodepth=32
fsync=128
[jmix]
offset=48m
bsrange=4k-128k
iodepth=16
fsync=32
[jsmall]
offset=96m
bsrange=512-8k
blockalign=512
iodepth=16
fsync=64
[jbig]
offset=144m
bsrange=64k-1m
iodepth=8
fsync=16
EOF

timeout 300 fio --output-format=json --output=fio.json soak.fio >fio.log 2>&1 &
fio_pid=$!
py_pids=()
for i in 0 1; do
	timeout 300 "${CLIENT[@]}" run "$uri" "model$i" --offset $(((4 + i) * REGION)) --length "$REGION" \
		--seed $((SEED * 10 + i)) --write-bytes $((REGION + PY_EXTRA)) --stats "py$i.json" 2>"py$i.err" &
	py_pids+=($!)
done
rc=0
wait "$fio_pid" || rc=$?
[ "$rc" = 0 ] || fail "fio failed (exit $rc): $(tail -5 fio.log) $(grep -h '"error"' fio.json 2>/dev/null | sort | uniq -c)"
for i in 0 1; do
	rc=0
	wait "${py_pids[i]}" || rc=$?
	grep '^#' "py$i.err" >&2 || true
	[ "$rc" = 0 ] || fail "python client $i failed (exit $rc): $(grep -v '^#' "py$i.err")"
done

# fio: every job error-free, wrote LOOPS x its region, and read (verified) as much.
totals=$(/usr/bin/python3 - fio.json "$LOOPS" "$REGION" py0.json py1.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
loops, region = int(sys.argv[2]), int(sys.argv[3])
jobs = d["jobs"]
ok = len(jobs) == 4
written = verified = 0
for j in jobs:
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    print("# fio %s: error %d, wrote %d, verified %d, flushes %d" % (
        j["jobname"], j["error"], w, r, j.get("sync", {}).get("total_ios", -1)), file=sys.stderr)
    ok &= j["error"] == 0 and w == loops * region and r == loops * region
    written += w
    verified += r
for p in sys.argv[4:]:
    s = json.load(open(p))
    written += s["written"] + s["zeroed"]
    verified += s["read_verified"]
print(written, verified)
sys.exit(0 if ok else 1)
PY
) || fail "fio did not write and verify everything it should have"
read -r written verified <<<"$totals"

# Detach, re-attach: everything again.
bc detach vol >/dev/null 2>detach.err || fail "detach failed: $(cat detach.err)"
uri=$(bc attach vol.img --key-file key --allow-discards) || fail "re-attach failed"
sed -i "s|^uri=.*|uri=$uri|" soak.fio
timeout 300 fio --output-format=json --output=reverify.json --verify_only soak.fio >fio.log 2>&1 ||
	fail "fio --verify_only after re-attach failed: $(tail -5 fio.log) $(grep -h '"error"' reverify.json | sort | uniq -c)"
# (--verify_only repeats the job's loops: each region is read LOOPS times;
# counted once)
/usr/bin/python3 - reverify.json $((LOOPS * REGION)) <<'PY' || fail "fio --verify_only after re-attach did not read back every region"
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
ok = len(jobs) == 4 and all(j["error"] == 0 and j["read"]["io_bytes"] == int(sys.argv[2]) for j in jobs)
for j in jobs:
    print("# fio --verify_only %s: error %d, verified %d" % (j["jobname"], j["error"], j["read"]["io_bytes"]),
          file=sys.stderr)
sys.exit(0 if ok else 1)
PY
verified=$((verified + 4 * REGION))
for i in 0 1; do
	timeout 120 "${CLIENT[@]}" verify "$uri" "model$i" 2>py.err ||
		fail "python region $i after re-attach: $(cat py.err)"
	verified=$((verified + REGION))
done
note "written (incl. zeroes) $((written / MiB)) MiB, verified $((verified / MiB)) MiB"
[ "$written" -ge $((1024 * MiB)) ] || fail "only $written bytes written, less than 1 GiB"
[ "$verified" -ge $((1024 * MiB)) ] || fail "only $verified bytes verified, less than 1 GiB"

# The fio check has teeth: a block changed behind its back is caught.
/usr/bin/python3 -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); h.pwrite(b"\x5a" * 4096, 60 << 20)' "$uri" ||
	fail "overwrite behind fio's back failed"
if timeout 300 fio --output-format=json --output=bad.json --verify_only --section=jmix soak.fio >fio.log 2>&1; then
	fail "fio verify passed over a block overwritten behind its back"
fi
grep -q '"error" : [1-9]' bad.json || fail "fio failed but reports no job error: $(tail -5 fio.log)"
exit 0
