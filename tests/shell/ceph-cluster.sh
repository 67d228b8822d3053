#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test cluster of tests/ceph/cluster.sh is a real one: HEALTH_OK, data
# written through the rbd CLI reads back byte for byte through librbd
# (python3-rbd) and the other way round, and a client of a cluster that is
# not there fails within the configured timeout instead of hanging.  Run
# alone (no BC_TEST_CEPH_CONF), the test has a private cluster, and also
# checks that an OSD that stops answering fails a write with ETIMEDOUT
# (rados_osd_op_timeout) and that `cluster.sh stop` leaves no process.
. "$(dirname "$0")/functions.bash"
requires timeout numfmt
requires_ceph

health=$(timeout 60 ceph health 2>&1) || fail "ceph health failed: $health"
[ "$health" = HEALTH_OK ] || problem "cluster health: $health (want HEALTH_OK)"
# Short enough that a dead cluster fails a test long before meson's
# timeout (the default client_mount_timeout is 300 s, the op timeouts none).
for opt in client_mount_timeout rados_osd_op_timeout rados_mon_op_timeout; do
	val=$(sed -n "s/^${opt//_/ } = //p" "$CEPH_CONF")
	[[ $val =~ ^[0-9]+$ ]] && [ "$val" -ge 1 ] && [ "$val" -le 60 ] ||
		problem "$CEPH_CONF: $opt for clients is '$val', want 1..60 s"
done

# rbd import, read back by librbd.
random_file data 8M
img=$(ceph_image_name import)
timeout 120 rbd import --no-progress data "$CEPH_POOL/$img" 2>import.err ||
	fail "rbd import failed: $(cat import.err)"
size=$(timeout 60 rbd info --format json "$CEPH_POOL/$img" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
[ "$size" = $((8 << 20)) ] || problem "rbd info: size $size, want $((8 << 20))"

# python3-rbd works with /usr/bin/python3 only (Debian's module).
PYRBD=$(cat <<'PY'
import hashlib, os, rados, rbd, sys
op, pool, name, path = sys.argv[1:5]
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster, cluster.open_ioctx(pool) as ioctx, rbd.Image(ioctx, name) as image:
    if op == "read":
        h, off, size = hashlib.sha256(), 0, image.size()
        while off < size:
            chunk = image.read(off, min(1 << 20, size - off))
            h.update(chunk)
            off += len(chunk)
        print(h.hexdigest())
    else:
        data = open(path, "rb").read()
        image.write(data, 0)
        image.flush()
PY
)
pyrbd() { timeout 120 /usr/bin/python3 -c "$PYRBD" "$@"; }

got=$(pyrbd read "$CEPH_POOL" "$img" - 2>read.err) || fail "python3-rbd read failed: $(tail -n 1 read.err)"
[ "$got" = "$(sha data)" ] || problem "librbd read of an rbd-imported image: sha256 $got, want $(sha data)"

# rbd create + librbd write, read back by rbd export and by librbd.
random_file data2 4M
img2=$(ceph_image_name write)
timeout 60 rbd create --size 4M "$CEPH_POOL/$img2" 2>create.err || fail "rbd create failed: $(cat create.err)"
pyrbd write "$CEPH_POOL" "$img2" data2 2>write.err || fail "python3-rbd write failed: $(tail -n 1 write.err)"
timeout 120 rbd export --no-progress "$CEPH_POOL/$img2" exported 2>export.err ||
	fail "rbd export failed: $(cat export.err)"
[ "$(sha exported)" = "$(sha data2)" ] || problem "rbd export of a librbd-written image differs"
got=$(pyrbd read "$CEPH_POOL" "$img2" - 2>read.err) || fail "python3-rbd read failed: $(tail -n 1 read.err)"
[ "$got" = "$(sha data2)" ] || problem "librbd read of a librbd-written image: sha256 $got, want $(sha data2)"

# A cluster that is not there: the same config with the mon on a port
# nothing listens on, and a 5 s timeout.  rbd and librados must fail with
# their own error, well before `timeout` (the safety net) would.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s/^mon host = .*/mon host = [v2:127.0.0.1:$port]/" \
	-e 's/^\(client mount timeout\|rados mon op timeout\|rados osd op timeout\) = .*/\1 = 5/' \
	"$CEPH_CONF" >dead.conf
start=$SECONDS rc=0
timeout 120 rbd -c dead.conf ls "$CEPH_POOL" >/dev/null 2>dead.err || rc=$?
took=$((SECONDS - start))
note "rbd ls on a dead cluster: exit $rc after $took s: $(tail -n 1 dead.err)"
[ "$rc" != 0 ] || problem "rbd ls on a dead cluster succeeded"
[ "$rc" != 124 ] || problem "rbd ls on a dead cluster hung until timeout(1) killed it"
[ "$took" -le 30 ] || problem "rbd ls on a dead cluster took $took s with a 5 s client_mount_timeout"
grep -qi 'timed out\|error connecting' dead.err || problem "rbd ls on a dead cluster: no timeout error: $(cat dead.err)"
start=$SECONDS rc=0
timeout 120 /usr/bin/python3 - dead.conf >dead-py.out 2>&1 <<'PY' || rc=$?
import rados, sys
try:
    rados.Rados(conffile=sys.argv[1]).connect()
except rados.TimedOut as e:
    print("TimedOut:", e)
    sys.exit(3)
sys.exit(0)
PY
took=$((SECONDS - start))
[ "$rc" = 3 ] || problem "librados connect to a dead cluster: exit $rc, want rados.TimedOut: $(cat dead-py.out)"
[ "$took" -le 30 ] || problem "librados connect to a dead cluster took $took s with a 5 s timeout"

if [ "$CEPH_PRIVATE" = 1 ]; then
	dir=$(dirname "$CEPH_CONF")
	# The OSD stops serving (paused): a write must fail with ETIMEDOUT
	# after rados_osd_op_timeout, not hang.
	timeout 60 ceph osd pause >/dev/null 2>&1 || fail "ceph osd pause failed"
	start=$SECONDS rc=0
	timeout 120 rados -p "$CEPH_POOL" --rados-osd-op-timeout 5 put paused data >/dev/null 2>paused.err || rc=$?
	took=$((SECONDS - start))
	note "rados put on a paused cluster: exit $rc after $took s: $(tail -n 1 paused.err)"
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || problem "rados put on a paused cluster: exit $rc, want an error of its own"
	[ "$took" -le 30 ] || problem "rados put on a paused cluster took $took s with a 5 s rados_osd_op_timeout"
	grep -qi 'timed out' paused.err || problem "rados put on a paused cluster: no ETIMEDOUT: $(cat paused.err)"
	timeout 60 ceph osd unpause >/dev/null 2>&1 || problem "ceph osd unpause failed"

	pids=$(cat "$dir"/run/*.pid)
	[ "$(echo "$pids" | wc -w)" = 3 ] || problem "expected 3 pid files in $dir/run, got: $pids"
	start=$SECONDS
	timeout 120 "$CEPH_CLUSTER" stop "$dir" 2>stop.err || fail "cluster.sh stop failed: $(cat stop.err)"
	note "cluster.sh stop: $((SECONDS - start)) s"
	for pid in $pids; do
		! running "$pid" || problem "pid $pid is still running after cluster.sh stop"
	done
	left=$(pgrep -af -- "$dir/ceph.conf" || true)
	[ -z "$left" ] || problem "processes of the cluster left after stop: $left"
	"$CEPH_CLUSTER" status "$dir" >status.out 2>&1 && problem "cluster.sh status of a stopped cluster exited 0"
	grep -q 'mon.a: not running' status.out || problem "cluster.sh status: $(cat status.out)"
else
	note "shared cluster (BC_TEST_CEPH_CONF): the pause and stop checks run when this test runs alone"
fi
check_problems
