# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for the end-to-end scenario tests (tests/shell/scenario-*.sh).
# Source it after functions.bash:
#   . "$(dirname "$0")/functions.bash"
#   . "$TESTS_DIR/shell/scenario-lib.bash"
# (Not a test itself: meson runs tests/shell/*.sh only.)
#
# What it gives:
#   tmo SECS WHAT CMD...     run CMD under a timeout; a hang fails the test
#                            with WHAT (stdout+stderr of CMD in $TEST_TMP/.tmo)
#   need_root_fuse           skip unless root with /dev/fuse
#   (wait_for, gone, requires_* and the rest: functions.bash)
#   zfs_need                 skip unless zfs-fuse is installed and not running
#   zfs_start                our own zfs-fuse daemon (the system-wide one,
#                            socket /var/run/zfs/zfs_socket); ZFS_PID
#   zfs_lower_start          a second zfs-fuse in a private mount namespace
#                            with its own control socket, for a LOWER pool
#                            that holds backing files; run its commands with
#                            `lower zpool ...`; mountpoints must be under
#                            $SHARED (a shared subtree, so they show up here)
#   scn_teardown_register    one cleanup hook that tears everything down in
#                            order: upper pools (and scn_pre_detach_hook),
#                            blockcrypt volumes, lower pool, daemons; and,
#                            if any step hangs, aborts the FUSE connections
#                            under $TEST_TMP so nothing stays stuck
#   pool_health POOL, vdev_counts POOL VDEV ("STATE READ WRITE CKSUM")
#   scrub_wait POOL SECS     start a scrub and wait until it completes
#   tree_sums DIR OUT        sha256 of every file under DIR (sorted)
#   tree_check DIR SUMS      every checksum line OK
#   p11_token_setup          SoftHSM token "bctest" (PIN 1234, file ./pin)
#   list_names               names in `blockcrypt list --json`, sorted, one a line
#   list_field NAME FIELD    one field of a `list --json` entry
#
# Why two zfs-fuse daemons for stacked pools: one zfs-fuse process that
# serves both a lower pool (holding the volume's backing file) and an upper
# pool (on the volume's FUSE file) deadlocks on `zpool export`/`zfs umount`
# of the upper pool: the upper pool's final sync writes through blockcrypt
# to the lower pool's FUSE mount, whose requests wait in the same process
# behind the unmount.  With the lower pool in its own daemon (as a real
# ZVOL would be in the kernel) the stack works.

requires timeout mountpoint sha256sum python3

# tmo SECS WHAT CMD...: CMD must finish within SECS seconds.  Returns CMD's
# exit status (so callers can assert it); a timeout fails the test at once.
tmo() {
	local secs=$1 what=$2 rc=0; shift 2
	# timeout(1) runs programs, not shell functions: map ours.
	case $1 in
	bc) set -- "$BLOCKCRYPT" "${@:2}" ;;
	lower) set -- nsenter -t "$LOWER_PID" -m "${@:2}" ;;
	esac
	timeout -k 5 "$secs" "$@" >"$TEST_TMP/.tmo" 2>&1 || rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "$what: hung, killed after ${secs}s: $* (output: $(head -c 2000 "$TEST_TMP/.tmo"))"
	fi
	return "$rc"
}

need_root_fuse() { requires_root_fuse "the scenario tests"; }

zfs_need() {
	requires zfs-fuse zpool zfs unshare nsenter
	need_root_fuse
	requires_no_zfs_fuse
}

ZFS_PID=
LOWER_PID=
SHARED=
_zfs_created=()
_zfs_dirs() {
	local d
	for d in /var/run/zfs /var/lock/zfs; do
		[ -e "$d" ] || { mkdir -p "$d"; _zfs_created+=("$d"); }
	done
}

zfs_start() {
	_zfs_dirs
	zfs-fuse --no-daemon --no-kstat-mount --pidfile "$TEST_TMP/zfs-fuse.pid" </dev/null >"$TEST_TMP/zfs-fuse.log" 2>&1 &
	ZFS_PID=$!
	wait_for 10 eval '[ -S /var/run/zfs/zfs_socket ] && zpool list >/dev/null 2>&1' ||
		fail "zfs-fuse did not come up within 10 s (log: $(cat "$TEST_TMP/zfs-fuse.log"))"
}

# lower CMD...: run CMD in the lower daemon's mount namespace.
lower() { nsenter -t "$LOWER_PID" -m "$@"; }

zfs_lower_start() {
	_zfs_dirs
	SHARED=$TEST_TMP/shared
	mkdir -p "$SHARED"
	mount --bind "$SHARED" "$SHARED" || fail "cannot bind-mount $SHARED"
	mount --make-shared "$SHARED" || fail "cannot make $SHARED a shared mount"
	# unshare execs the shell, which execs zfs-fuse: $! is zfs-fuse's pid.
	unshare -m --propagation unchanged sh -c '
		mount -t tmpfs -o size=1M,mode=755 bc-lower-zfs /var/run/zfs &&
		mount -t tmpfs -o size=1M,mode=755 bc-lower-zfs /var/lock/zfs &&
		exec zfs-fuse --no-daemon --no-kstat-mount --pidfile "$1"' sh "$TEST_TMP/zfs-lower.pid" \
		</dev/null >"$TEST_TMP/zfs-lower.log" 2>&1 &
	LOWER_PID=$!
	wait_for 10 eval 'lower sh -c "[ -S /var/run/zfs/zfs_socket ]" 2>/dev/null && lower zpool list >/dev/null 2>&1' ||
		fail "lower zfs-fuse did not come up within 10 s (log: $(cat "$TEST_TMP/zfs-lower.log"))"
}

# _fuse_abort_all: abort every FUSE connection mounted under $TEST_TMP (in
# our namespace and the lower one): whatever waits on them gets an error.
_fuse_abort_all() {
	local minor
	mountpoint -q /sys/fs/fuse/connections || mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
	for minor in $( { cat /proc/self/mountinfo; [ -n "$LOWER_PID" ] && cat "/proc/$LOWER_PID/mountinfo" 2>/dev/null; } |
		awk -v p="$TEST_TMP/" '{ sep = 0; for (i = 7; i <= NF; i++) if ($i == "-") { sep = i; break } }
			sep && $(sep + 1) ~ /^fuse/ && index($5 "/", p) == 1 { split($3, d, ":"); if (d[1] == 0) print d[2] }' | sort -u); do
		echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null || true
	done
}

_stop_daemon() { # PID
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_for 30 eval '! kill -0 "$pid" 2>/dev/null'; then
		note "zfs-fuse (pid $pid) did not stop within 30 s: aborting FUSE connections and killing it"
		_fuse_abort_all
		kill -KILL "$pid" 2>/dev/null || true
		wait_for 10 eval '! kill -0 "$pid" 2>/dev/null' || note "zfs-fuse (pid $pid) still there after SIGKILL"
	fi
	wait "$pid" 2>/dev/null || true
}

# Pools in the upper daemon to export at teardown (the scenario sets them).
UPPER_POOLS=()
LOWER_POOLS=()
scn_pre_detach_hook=:

_scn_teardown() {
	local p hung=0 m
	set +e
	if [ -n "$ZFS_PID" ]; then
		for p in "${UPPER_POOLS[@]}"; do
			zpool list -H -o name "$p" >/dev/null 2>&1 || continue
			timeout -k 5 60 zpool export -f "$p" >/dev/null 2>&1 || { hung=1; note "teardown: zpool export -f $p failed or hung"; }
		done
	fi
	$scn_pre_detach_hook
	if [ "$hung" = 1 ]; then _fuse_abort_all; fi
	timeout -k 5 60 "$BLOCKCRYPT" detach --all --force >/dev/null 2>&1 || { note "teardown: detach --all --force failed or hung"; _fuse_abort_all; _detach_all; }
	_stop_daemon "$ZFS_PID"; ZFS_PID=
	if [ -n "$LOWER_PID" ]; then
		for p in "${LOWER_POOLS[@]}"; do
			lower zpool list -H -o name "$p" >/dev/null 2>&1 || continue
			timeout -k 5 60 nsenter -t "$LOWER_PID" -m zpool export -f "$p" >/dev/null 2>&1 || note "teardown: lower zpool export -f $p failed or hung"
		done
		_stop_daemon "$LOWER_PID"; LOWER_PID=
	fi
	# Anything still mounted under $TEST_TMP: lazily unmount, deepest first.
	for m in $(awk -v p="$TEST_TMP/" 'index($5 "/", p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	for m in "${_zfs_created[@]}"; do rm -f "$m"/zfs_lock "$m"/zfs_socket; rmdir "$m" 2>/dev/null || true; done
	_zfs_created=()
	set -e
}
scn_teardown_register() { cleanup_fn _scn_teardown; }

pool_health() { zpool list -H -o health "$1" 2>/dev/null; }

# vdev_counts POOL VDEV: "STATE READ WRITE CKSUM" of that config line.
vdev_counts() {
	zpool status "$1" 2>/dev/null | awk -v v="$2" '$1 == v && NF >= 5 { print $2, $3, $4, $5; exit }'
}

# scrub_wait POOL SECS: start a scrub and wait for it; status in $TEST_TMP/scrub.status.
scrub_wait() {
	local pool=$1 secs=$2
	# An import or `zpool clear` may start a resilver, and zpool refuses to
	# scrub until it ends ("currently resilvering"): let it finish first.
	wait_for "$secs" eval '! zpool status "$pool" | grep -q "resilver in progress"' ||
		fail "resilver of $pool still running after ${secs}s: $(zpool status "$pool")"
	tmo 60 "zpool scrub $pool" zpool scrub "$pool" || fail "zpool scrub $pool failed: $(cat "$TEST_TMP/.tmo")"
	wait_for "$secs" eval '! zpool status "$pool" | grep -q "scrub in progress"' ||
		fail "scrub of $pool still running after ${secs}s: $(zpool status "$pool")"
	zpool status "$pool" >"$TEST_TMP/scrub.status" 2>&1 || fail "zpool status $pool failed"
	grep -q 'scrub completed' "$TEST_TMP/scrub.status" || fail "no completed scrub in: $(cat "$TEST_TMP/scrub.status")"
}

tree_sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) >"$2"; }
tree_check() {
	(cd "$1" && tmo 120 "sha256sum -c in $1" sha256sum --quiet -c "$2") ||
		fail "checksums differ under $1: $(cat "$TEST_TMP/.tmo")"
}

p11_token_setup() {
	. "$TESTS_DIR/shell/pkcs11-lib.bash"
	p11_setup
}

list_names() {
	"$BLOCKCRYPT" list --json | python3 -c 'import json,sys; [print(v["name"]) for v in sorted(json.load(sys.stdin), key=lambda v: v["name"])]'
}
list_field() {
	"$BLOCKCRYPT" list --json | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        print(v.get(sys.argv[2], "missing"))' "$1" "$2"
}
