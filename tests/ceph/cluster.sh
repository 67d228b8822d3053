#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A throw-away single-node Ceph cluster for the tests, without systemd:
# one mon, one mgr, one bluestore OSD on a sparse file, cephx on, an "rbd"
# pool initialised for RBD.  Everything it makes -- ceph.conf, keyrings,
# daemon data, logs, admin sockets, pid files, crash dumps -- lives under
# DIR; nothing goes to /etc/ceph or /var/lib/ceph, and all traffic stays on
# 127.0.0.1 (the mon on a free port, so several clusters can run at once).
#
#   cluster.sh start DIR [--osd-size SIZE] [--client-timeout SECONDS]
#       DIR must be missing or empty.  Waits for HEALTH_OK (at most
#       $BC_CEPH_START_TIMEOUT seconds, default 180), then prints
#       shell-sourceable lines: CEPH_CONF=..., CEPH_KEYRING=...,
#       CEPH_MON_ADDR=..., CEPH_POOL=rbd.  SIZE (default 10G, sparse) takes
#       K/M/G/T suffixes.  The generated ceph.conf gives clients
#       client_mount_timeout, rados_mon_op_timeout and rados_osd_op_timeout
#       of SECONDS (default $BC_CEPH_CLIENT_TIMEOUT or 30), so a client of a
#       dead cluster fails instead of hanging; a client may still override
#       them (CEPH_ARGS="--rados-osd-op-timeout 5").  On failure: one line
#       on stderr, non-zero exit, and whatever it started is stopped (the
#       logs stay in DIR/log).
#   cluster.sh stop DIR
#       Stops the daemons by their pid files (SIGTERM, then SIGKILL after
#       $BC_CEPH_STOP_TIMEOUT seconds, default 20) and waits until they are
#       gone.  Harmless on a DIR with nothing running (or no DIR at all).
#   cluster.sh status DIR
#       Which daemons run, and `ceph health`; exit 0 only when all three
#       run and the cluster answers.
#
# By hand:  eval "$(tests/ceph/cluster.sh start /tmp/c)"; export CEPH_CONF
#           rbd create --size 1G img; ceph -s; tests/ceph/cluster.sh stop /tmp/c
set -euo pipefail

prog=${0##*/}
DAEMONS=(osd.0 mgr.x mon.a)

die() { echo "$prog: $*" >&2; exit 1; }

# pid_of DIR NAME: the pid of daemon NAME, if its pid file names a live
# process that runs with DIR's ceph.conf (a recycled pid is not ours).
pid_of() {
	local pid
	pid=$(cat "$1/run/$2.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $1/ceph.conf " || return 1
	# A zombie is as good as gone.
	[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" != Z ] || return 1
	echo "$pid"
}

# stop_daemons DIR: SIGTERM every daemon of DIR, SIGKILL what is left after
# the grace time; false if something still runs after that.
stop_daemons() {
	local dir=$1 name pid i grace=$((${BC_CEPH_STOP_TIMEOUT:-20} * 10))
	# The OSD first: it tells the mon it is going, and with no mon left to
	# tell it waits osd_mon_shutdown_timeout (5 s) in vain.
	if pid=$(pid_of "$dir" osd.0); then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			pid_of "$dir" osd.0 >/dev/null || break
			sleep 0.1
		done
	fi
	for name in "${DAEMONS[@]}"; do
		pid=$(pid_of "$dir" "$name") || continue
		kill -TERM "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < grace; i++)); do
		alive "$dir" || return 0
		sleep 0.1
	done
	for name in "${DAEMONS[@]}"; do
		pid=$(pid_of "$dir" "$name") || continue
		echo "$prog: $name (pid $pid) ignored SIGTERM for ${BC_CEPH_STOP_TIMEOUT:-20} s: killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		alive "$dir" || return 0
		sleep 0.1
	done
	return 1
}

# alive DIR: true while any daemon of DIR runs.
alive() {
	local name
	for name in "${DAEMONS[@]}"; do
		pid_of "$1" "$name" >/dev/null && return 0
	done
	return 1
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_daemon DIR NAME CMD...: run CMD in the foreground (-f) in the
# background, output to DIR/log/NAME.out, pid to DIR/run/NAME.pid.
start_daemon() {
	local dir=$1 name=$2; shift 2
	"$@" -f </dev/null >>"$dir/log/$name.out" 2>&1 &
	echo $! >"$dir/run/$name.pid"
}

cmd_start() {
	local dir="" size=10G timeout=${BC_CEPH_CLIENT_TIMEOUT:-30}
	while [ $# -gt 0 ]; do
		case $1 in
		--osd-size) [ $# -ge 2 ] || die "start: --osd-size needs a value"; size=$2; shift 2 ;;
		--client-timeout) [ $# -ge 2 ] || die "start: --client-timeout needs a value"; timeout=$2; shift 2 ;;
		-*) die "start: unknown option $1" ;;
		*) [ -z "$dir" ] || die "start: one DIR only"; dir=$1; shift ;;
		esac
	done
	[ -n "$dir" ] || die "usage: $prog start DIR [--osd-size SIZE] [--client-timeout SECONDS]"
	local bytes
	bytes=$(numfmt --from=iec "$size" 2>/dev/null) && [ "$bytes" -ge $((1 << 30)) ] ||
		die "start: --osd-size $size: not a size of at least 1G (e.g. 10G)"
	[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "start: --client-timeout $timeout: not a number of seconds"
	local t
	for t in ceph-mon ceph-mgr ceph-osd ceph ceph-authtool monmaptool rbd; do
		command -v "$t" >/dev/null || die "start: $t is not installed (scripts/deps.sh --test)"
	done
	mkdir -p "$dir" || die "start: cannot create $dir"
	dir=$(cd "$dir" && pwd)
	# ceph-mon --mkfs does nothing, and says nothing, when the mon data
	# directory is not empty: a reused DIR would start an old cluster (or
	# none) with a new config.  Refuse it.
	[ -z "$(ls -A "$dir")" ] || die "start: $dir is not empty (stop that cluster and remove it, or use a new directory)"
	# The admin sockets (unix sockets: 107 bytes) live in DIR/run.
	[ ${#dir} -le 60 ] || die "start: $dir is too long for the admin sockets in it (at most 60 characters)"
	mkdir "$dir"/{mon,mgr,osd,run,log,crash}

	local conf=$dir/ceph.conf port fsid
	port=$(free_port) || die "start: no free port on 127.0.0.1"
	fsid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$conf" <<EOF
# Made by tests/ceph/cluster.sh: a throw-away test cluster, all under $dir.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $dir/keyring
run dir = $dir/run
crash dir = $dir/crash
# One OSD holds every replica.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
mon warn on pool no redundancy = false
mon allow pool delete = true
# A shared disk: the mon's "low disk space" warning would say nothing
# about this cluster.
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $dir/mon
keyring = $dir/mon/keyring
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log

[mgr]
mgr data = $dir/mgr
keyring = $dir/mgr/keyring
log file = $dir/log/\$name.log

[osd]
osd data = $dir/osd
keyring = $dir/osd/keyring
log file = $dir/log/\$name.log
osd objectstore = bluestore
bluestore block path = $dir/osd-block
bluestore block create = true
bluestore block size = $bytes
osd memory target = 1073741824

[client]
# A client of a dead or unreachable cluster fails (ETIMEDOUT) instead of
# hanging.
client mount timeout = $timeout
rados mon op timeout = $timeout
rados osd op timeout = $timeout
EOF

	# From here on, a failure stops what was started.
	START_DIR=$dir
	trap 'rc=$?; [ $rc = 0 ] || stop_daemons "$START_DIR" || true; exit $rc' EXIT
	local ceph=(ceph -c "$conf" --connect-timeout "$timeout")

	# Keys: the mon's, the admin's (the clients' keyring).
	ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null 2>"$dir/log/setup.err" ||
		fail_start "ceph-authtool failed: $(head -n 1 "$dir/log/setup.err")"
	ceph-authtool --create-keyring "$dir/keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null 2>"$dir/log/setup.err" ||
		fail_start "ceph-authtool failed: $(head -n 1 "$dir/log/setup.err")"
	ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring" >/dev/null 2>"$dir/log/setup.err" ||
		fail_start "ceph-authtool --import-keyring failed: $(head -n 1 "$dir/log/setup.err")"
	chmod 600 "$dir/keyring" "$dir/mon.keyring"

	# The mon: mkfs, then run it.  The mkfs keyring stays outside the mon
	# directory: ceph-mon --mkfs refuses a mon directory that is not empty
	# and still exits 0; it then copies the keyring into DIR/mon/keyring.
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null 2>"$dir/log/setup.err" ||
		fail_start "monmaptool failed: $(head -n 1 "$dir/log/setup.err")"
	ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/mon.keyring" >"$dir/log/mon-mkfs.out" 2>&1 ||
		fail_start "ceph-mon --mkfs failed: $(tail -n 1 "$dir/log/mon-mkfs.out")"
	[ -d "$dir/mon/store.db" ] || fail_start "ceph-mon --mkfs made no store in $dir/mon"
	start_daemon "$dir" mon.a ceph-mon -c "$conf" -i a
	"${ceph[@]}" mon stat >/dev/null 2>"$dir/log/setup.err" ||
		fail_start "the mon does not answer on 127.0.0.1:$port: $(last_error "$dir/log/setup.err" "$dir/log/mon.a.out")"

	# The mgr (pg states, and so HEALTH_OK, come from it).
	"${ceph[@]}" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
		-o "$dir/mgr/keyring" 2>"$dir/log/setup.err" ||
		fail_start "ceph auth get-or-create mgr.x failed: $(head -n 1 "$dir/log/setup.err")"
	start_daemon "$dir" mgr.x ceph-mgr -c "$conf" -i x

	# The OSD: register it with its key (osd new), mkfs without asking the
	# mon for config (with cephx it would need a key it has not got yet).
	local uuid secret id
	uuid=$(cat /proc/sys/kernel/random/uuid)
	secret=$(ceph-authtool --gen-print-key)
	id=$(printf '{"cephx_secret": "%s"}' "$secret" | "${ceph[@]}" osd new "$uuid" -i - 2>"$dir/log/setup.err") ||
		fail_start "ceph osd new failed: $(head -n 1 "$dir/log/setup.err")"
	[ "$id" = 0 ] || fail_start "ceph osd new gave id '$id', not 0"
	ceph-authtool --create-keyring "$dir/osd/keyring" --name osd.0 --add-key "$secret" >/dev/null 2>"$dir/log/setup.err" ||
		fail_start "ceph-authtool (osd key) failed: $(head -n 1 "$dir/log/setup.err")"
	ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" --no-mon-config >"$dir/log/osd-mkfs.out" 2>&1 ||
		fail_start "ceph-osd --mkfs failed: $(last_error "$dir/log/osd-mkfs.out")"
	start_daemon "$dir" osd.0 ceph-osd -c "$conf" -i 0

	# The rbd pool (rbd pool init waits for the OSD to take writes).
	"${ceph[@]}" osd pool create rbd 8 8 >/dev/null 2>"$dir/log/setup.err" ||
		fail_start "ceph osd pool create rbd failed: $(head -n 1 "$dir/log/setup.err")"
	rbd -c "$conf" pool init rbd 2>"$dir/log/setup.err" ||
		fail_start "rbd pool init failed: $(last_error "$dir/log/setup.err" "$dir/log/osd.0.out")"

	# Ready: HEALTH_OK, the mgr active, the OSD up and in, and every PG
	# active+clean (the mon says HEALTH_OK while the PGs of a new pool are
	# still being created).
	local deadline=$((SECONDS + ${BC_CEPH_START_TIMEOUT:-180})) health="" name
	while :; do
		for name in "${DAEMONS[@]}"; do
			pid_of "$dir" "$name" >/dev/null ||
				fail_start "$name exited: $(last_error "$dir/log/$name.out" "$dir/log/$name.log")"
		done
		health=$("${ceph[@]}" status --format json 2>&1 | /usr/bin/python3 -c "$READY" 2>&1 | tr '\n' ' ') && break
		[ $SECONDS -lt "$deadline" ] ||
			fail_start "not ready within ${BC_CEPH_START_TIMEOUT:-180} s: $health"
		sleep 0.5
	done
	trap - EXIT
	printf 'CEPH_CONF=%q\nCEPH_KEYRING=%q\nCEPH_MON_ADDR=%q\nCEPH_POOL=rbd\n' \
		"$conf" "$dir/keyring" "127.0.0.1:$port"
}

# last_error FILE...: the last line that looks like an error in the FILEs
# (or the last line of the first non-empty one), to quote in a one-line
# message.
last_error() {
	local f line
	for f in "$@"; do
		[ -s "$f" ] || continue
		line=$(grep -iE 'error|fail|denied|refused|timed out|unable' "$f" | tail -n 1) || true
		[ -n "$line" ] || line=$(tail -n 1 "$f")
		echo "$line"
		return
	done
	echo "(no message; see the logs)"
}

# READY: python code that reads `ceph status --format json` and fails,
# saying what is missing, unless the cluster is ready.
READY='
import json, sys
text = sys.stdin.read()
try:
    s = json.loads(text)
except ValueError:
    print((text.strip().splitlines() or ["ceph status: no answer"])[-1])
    sys.exit(1)
h, pgs = s["health"], s["pgmap"]["pgs_by_state"]
not_ok = [why for why, ok in (
    (" ".join([h["status"]] + [c["summary"]["message"] + ";" for c in h.get("checks", {}).values()]),
     h["status"] == "HEALTH_OK"),
    ("no active mgr", s["mgrmap"].get("available")),
    ("osd not up and in", s["osdmap"]["num_up_osds"] == 1 and s["osdmap"]["num_in_osds"] == 1),
    ("pgs: " + ", ".join("%d %s" % (p["count"], p["state_name"]) for p in pgs),
     pgs and all(p["state_name"] == "active+clean" for p in pgs))) if not ok]
print("; ".join(not_ok))
sys.exit(1 if not_ok else 0)
'

fail_start() { die "start $START_DIR: $* (logs: $START_DIR/log)"; }

cmd_stop() {
	[ $# = 1 ] || die "usage: $prog stop DIR"
	local dir=$1
	[ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd)
	stop_daemons "$dir" || die "stop $dir: a daemon is still running after SIGKILL"
	rm -f "$dir"/run/*.pid "$dir"/run/*.asok
}

cmd_status() {
	[ $# = 1 ] || die "usage: $prog status DIR"
	local dir=$1 name pid rc=0
	[ -f "$dir/ceph.conf" ] || die "status: no cluster in $dir (no ceph.conf)"
	dir=$(cd "$dir" && pwd)
	for name in "${DAEMONS[@]}"; do
		if pid=$(pid_of "$dir" "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; rc=1; fi
	done
	if [ $rc = 0 ]; then
		ceph -c "$dir/ceph.conf" --connect-timeout 10 health || rc=1
	fi
	return $rc
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
*) die "usage: $prog start DIR [--osd-size SIZE] [--client-timeout SECONDS] | stop DIR | status DIR" ;;
esac
