#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A full cluster, and one that is not there, give clear errors within the
# client timeout, and the attach daemon lives on (issue #17: "the test
# fills a small OSD and sees a clear error within the timeout, daemon
# alive").  On a private cluster (1 GiB OSD, 10 s client timeouts) with a
# volume attached, a filler image is written until Ceph reports OSD_FULL;
# then a write through NBD fails (EIO to the client) within the timeout
# plus a margin, the daemon still serves (list, status, reads), its log
# has one line on the failed write, and `blockcrypt write` of another
# image exits 7 (I/O) with one line, within the same bound.  Once the
# cluster has room again the same daemon writes again.  Then the monitor
# unreachable (a config naming a dead port; then the cluster stopped):
# `blockcrypt dump` exits 7 within client_mount_timeout plus a margin,
# saying it cannot connect.
#
# What librbd does on a full cluster: the OSD map's full flag makes
# librados hold every write (and even the watch that opening an image
# registers) until rados_osd_op_timeout, so blockcrypt sees ETIMEDOUT
# ("Connection timed out"), not ENOSPC.
. "$(dirname "$0")/functions.bash"
requires ceph-mon ceph-mgr ceph-osd ceph rbd rados jq timeout nbdcopy
. "$TESTS_DIR/shell/rbd-lib.bash"

CLIENT_TIMEOUT=10
# The bound for an error: a few op timeouts (opening an image on a full
# cluster times out twice, ~20 s) and a loaded machine.
BOUND_S=$((3 * CLIENT_TIMEOUT))

# A private cluster: this test fills it, and stops it.  1 GiB is the
# smallest cluster.sh makes.
cleanup_fn "$(printf '%q stop %q' "$CEPH_CLUSTER" "$TEST_TMP/ceph")"
# (detach first: the daemon's goodbye needs the cluster)
cleanup_fn _detach_all
"$CEPH_CLUSTER" start "$TEST_TMP/ceph" --osd-size 1G --client-timeout "$CLIENT_TIMEOUT" >ceph.env 2>ceph.err ||
	fail "cannot start a Ceph cluster: $(cat ceph.err)"
export CEPH_CONF=$TEST_TMP/ceph/ceph.conf
CEPH_POOL=rbd

printf 'full passphrase' >key
rbd_new_volume vol key
rbd_new_volume other key
timeout 120 "$BLOCKCRYPT" attach "$(rbd_spec vol)" --key-file key --name vol >/dev/null 2>attach.err ||
	fail "attach failed: $(cat attach.err)"
pid=$(daemon_pid vol)
log=$BLOCKCRYPT_RUN_DIR/vol.log

# Fill.  A 1 GiB bluestore OSD runs out of space (and aborts: "ENOSPC
# from bluestore, misconfigured cluster") while its reported use is still
# far below the default full ratio (0.95): its reports lag the writes.
# With the ratios at half, the filler fills the OSD up to the full mark
# and the cluster says so long before bluestore's real end.
for r in nearfull:0.45 backfillfull:0.48 full:0.5; do
	timeout 60 ceph osd "set-${r%%:*}-ratio" "${r#*:}" >/dev/null 2>&1 || fail "ceph osd set-${r%%:*}-ratio failed"
done
timeout 60 rbd create --size 2G "$CEPH_POOL/filler" 2>create.err || fail "rbd create filler failed: $(cat create.err)"
# (its object prefix now: opening an image on a full cluster blocks)
filler_prefix=$(timeout 60 rbd info --format json "$CEPH_POOL/filler" | jq -r .block_name_prefix) ||
	fail "rbd info filler failed"
# The filler stops by itself at 600 MiB.  The full flag comes late (a
# loaded CI machine has seen 700 MiB of data written before it, 96% of
# the OSD); an unbounded filler would run the OSD into bluestore's real
# end, where it aborts.
t0=$SECONDS
rbd bench --io-type write --io-size 1M --io-threads 1 --io-total 600M --io-pattern seq "$CEPH_POOL/filler" >bench.out 2>&1 &
bench=$!
cleanup_fn "kill $bench 2>/dev/null"
full() { timeout 30 ceph health detail 2>/dev/null | grep -q OSD_FULL; }
wait_for 300 full || fail "the cluster is not full after $((SECONDS - t0)) s of writing: $(timeout 30 ceph health 2>&1; tail -n 3 bench.out)"
kill "$bench" 2>/dev/null || true
wait "$bench" 2>/dev/null || true
note "full after $((SECONDS - t0)) s: $(timeout 30 ceph osd df 2>/dev/null | awk '$1 == "TOTAL"' | tr -s ' ')"

# A write through NBD: an error within the bound, not a hang.
random_file data 4M
t0=$(now_ms) rc=0
timeout 300 nbdcopy data "$(nbd_uri vol)" 2>nbd.err || rc=$?
took=$(($(now_ms) - t0))
note "NBD write on a full cluster: exit $rc after $took ms: $(tail -n 1 nbd.err)"
[ "$rc" != 0 ] || problem "a write on a full cluster succeeded"
[ "$rc" != 124 ] || problem "a write on a full cluster hung (300 s)"
[ "$took" -le $((BOUND_S * 1000)) ] || problem "the write on a full cluster failed after $took ms (want <= $BOUND_S s)"
grep -q 'Input/output error\|No space left' nbd.err || problem "the NBD client got no EIO/ENOSPC: $(cat nbd.err)"
# The daemon lives, says what happened in one line, and still serves.
running "$pid" || fail "the daemon (pid $pid) died on a full cluster"
line=$(grep 'WRITE.*failed' "$log" | head -n 1) || true
note "daemon log: $line"
[ -n "$line" ] || problem "the daemon's log says nothing of the failed write: $(cat "$log")"
[[ $line == *"RBD write"* ]] || problem "the log line does not say an RBD write failed: $line"
[[ $line =~ timed\ out|[Nn]o\ space|full|quota ]] || problem "the log line does not say why (timeout/full): $line"
timeout 60 "$BLOCKCRYPT" list >list.out 2>&1 || problem "list failed: $(cat list.out)"
grep -q '^vol ' list.out || problem "list does not show vol: $(cat list.out)"
timeout 60 "$BLOCKCRYPT" status vol >status.out 2>&1 || problem "status vol failed: $(cat status.out)"
timeout 60 nbdcopy "$(nbd_uri vol)" - 2>read.err | head -c 4M >/dev/null || true
[ ! -s read.err ] || problem "reading through NBD on a full cluster failed: $(cat read.err)"

# blockcrypt write of another image: exit 7 (I/O), one line, in the bound.
t0=$(now_ms)
expect_exit 7 timeout 300 "$BLOCKCRYPT" write "$(rbd_spec other)" --key-file key <data
took=$(($(now_ms) - t0))
note "blockcrypt write on a full cluster: exit 7 after $took ms: $ERR"
[ "$took" -le $((BOUND_S * 1000)) ] || problem "blockcrypt write on a full cluster failed after $took ms (want <= $BOUND_S s)"
[[ $ERR == "blockcrypt: $(rbd_spec other)"* ]] || problem "the error does not name the image: $ERR"
[[ $ERR == *"full or unreachable"* ]] || problem "the error does not say what a timeout means here: $ERR"

# Room again: the filler's data goes (rados rm --force-full: a full
# cluster holds even deletes otherwise), and the same daemon writes again.
# Raising the full ratio instead would not do: the OSD may already be
# past any ratio by the time the flag came.
timeout 60 rados -p "$CEPH_POOL" ls 2>ls.err | grep "^$filler_prefix\." >filler.objects ||
	fail "no objects of the filler image ($filler_prefix) in pool $CEPH_POOL: $(cat ls.err)"
xargs -a filler.objects timeout 120 rados -p "$CEPH_POOL" rm --force-full 2>rm.err ||
	fail "cannot remove the filler's objects on a full cluster: $(cat rm.err)"
not_full() { ! full; }
wait_for 120 not_full ||
	fail "the cluster still says OSD_FULL after the filler's $(wc -l <filler.objects) objects went: $(timeout 30 ceph osd df 2>/dev/null | awk '$1 == "TOTAL"' | tr -s ' ')"
timeout 120 nbdcopy data "$(nbd_uri vol)" 2>nbd.err || problem "the daemon cannot write once the cluster has room: $(cat nbd.err)"
timeout 120 nbdcopy "$(nbd_uri vol)" - | head -c 4M >back || true
cmp -s back data || problem "what the daemon wrote once the cluster had room does not read back"

# The monitor unreachable: a config naming a port nothing listens on.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s/^mon host = .*/mon host = [v2:127.0.0.1:$port]/" "$CEPH_CONF" >dead.conf
t0=$(now_ms)
expect_exit 7 env CEPH_ARGS="--client-mount-timeout 5" timeout 120 "$BLOCKCRYPT" dump "$(rbd_spec vol):conf=$TEST_TMP/dead.conf"
took=$(($(now_ms) - t0))
note "dump with an unreachable monitor: exit 7 after $took ms: $ERR"
[ "$took" -le 15000 ] || problem "dump with an unreachable monitor failed after $took ms (client_mount_timeout 5 s)"
[[ $ERR == *"cannot connect to the Ceph cluster"* ]] || problem "dump with an unreachable monitor: unclear message: $ERR"

# The cluster stopped: the same, and the daemon lives on.
timeout 120 "$CEPH_CLUSTER" stop "$TEST_TMP/ceph" 2>stop.err || fail "cluster.sh stop failed: $(cat stop.err)"
t0=$(now_ms)
expect_exit 7 env CEPH_ARGS="--client-mount-timeout 5" timeout 120 "$BLOCKCRYPT" dump "$(rbd_spec vol)"
took=$(($(now_ms) - t0))
note "dump with the cluster stopped: exit 7 after $took ms: $ERR"
[ "$took" -le 15000 ] || problem "dump with the cluster stopped failed after $took ms (client_mount_timeout 5 s)"
t0=$(now_ms) rc=0
timeout 300 nbdcopy data "$(nbd_uri vol)" 2>nbd.err || rc=$?
took=$(($(now_ms) - t0))
note "NBD write with the cluster stopped: exit $rc after $took ms: $(tail -n 1 nbd.err)"
[ "$rc" != 0 ] && [ "$rc" != 124 ] || problem "NBD write with the cluster stopped: exit $rc, want an error"
[ "$took" -le $((BOUND_S * 1000)) ] || problem "the NBD write with the cluster stopped failed after $took ms (want <= $BOUND_S s)"
running "$pid" || problem "the daemon died when the cluster went away"
check_problems
