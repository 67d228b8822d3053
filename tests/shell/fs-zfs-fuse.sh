#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A ZFS pool (zfs-fuse, userspace ZFS) whose only vdev is the decrypted
# FUSE file survives export, detach, attach and import: volume -> attach
# --fuse -> start our own zfs-fuse -> `zpool create` on DIR/NAME (file
# vdev, cachefile=none so nothing is remembered system-wide) -> dataset
# with sha256 checksums, no compression -> random files of several MiB, an
# odd-sized and an empty file, a directory tree, a symlink -> zpool export
# (zfs-fuse lets go of the FUSE file: list --json fuse_open 0) -> detach
# (exit 0) -> the plaintext marker of one file is in the decrypted data but
# not in the backing file -> attach again with the same key -> `zpool
# import -d DIR` -> pool ONLINE, same tree, every `sha256sum -c` line OK ->
# `zpool scrub` completes with 0 errors, no READ/WRITE/CKSUM errors and "No
# known data errors" -> export, detach, stop zfs-fuse.  zfs-fuse serves one
# system-wide socket (/var/run/zfs/zfs_socket): if one is already running
# (not ours) the test skips rather than touch someone else's pools.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/tree-lib.bash"
requires cryptsetup zfs-fuse zpool zfs mountpoint sha256sum grep find /usr/bin/python3

requires_root_fuse zfs-fuse
requires_no_zfs_fuse

NAME=vol
POOL=bcfs$$
FUSE_DIR=$TEST_TMP/fuse
ZMNT=$TEST_TMP/pool
DEV=$FUSE_DIR/$NAME
DATA=$ZMNT/data
ZFS_PID=
mkdir -p "$FUSE_DIR"

fuse_closed() { c=$(fuse_open); [ "$c" = 0 ]; }

# zfs-fuse creates these; remove those that did not exist before us.
created=()
for d in /var/run/zfs /var/lock/zfs; do [ -e "$d" ] || created+=("$d"); done

# stop_zfs: stop our zfs-fuse (it takes a few seconds to let its worker
# threads finish), then tidy up what it created.
stop_zfs() {
	local d
	[ -n "$ZFS_PID" ] || return 0
	kill -TERM "$ZFS_PID" 2>/dev/null || true
	if ! wait_for 30 eval '! kill -0 "$ZFS_PID" 2>/dev/null'; then
		note "zfs-fuse (pid $ZFS_PID) ignored SIGTERM for 30 s: killing it"
		kill -KILL "$ZFS_PID" 2>/dev/null || true
	fi
	wait "$ZFS_PID" 2>/dev/null || true
	ZFS_PID=
	for d in "${created[@]}"; do rm -f "$d"/zfs_lock "$d"/zfs_socket; rmdir "$d" 2>/dev/null || true; done
}

# drop_pool: whatever happened, do not leave the pool imported.
drop_pool() {
	[ -n "$ZFS_PID" ] || return 0
	zpool list -H -o name "$POOL" >/dev/null 2>&1 || return 0
	zpool export -f "$POOL" 2>/dev/null || zpool destroy -f "$POOL" 2>/dev/null || true
}

# export_and_detach: export the pool; zfs-fuse must let go of the FUSE
# file, and then a plain detach must succeed.
export_and_detach() {
	zpool export "$POOL" >export.out 2>&1 || fail "zpool export $POOL failed: $(cat export.out)"
	! zpool list -H -o name "$POOL" >/dev/null 2>&1 || fail "pool $POOL still listed after export"
	wait_for 10 fuse_closed || fail "FUSE file still open (fuse_open '$c') 10 s after zpool export"
	detach_ok
	! mountpoint -q "$FUSE_DIR" || fail "FUSE mount $FUSE_DIR still there after detach"
}

new_fs_volume

# Our own zfs-fuse, in the foreground so that we hold its pid.
cleanup_fn stop_zfs
zfs-fuse --no-daemon --no-kstat-mount --pidfile "$TEST_TMP/zfs-fuse.pid" </dev/null >zfs-fuse.log 2>&1 &
ZFS_PID=$!
cleanup_fn drop_pool
wait_for 10 eval '[ -S /var/run/zfs/zfs_socket ] && zpool list >/dev/null 2>&1' ||
	fail "zfs-fuse did not come up within 10 s (running: $(kill -0 "$ZFS_PID" 2>/dev/null && echo yes || echo no); log: $(cat zfs-fuse.log))"

# First life: pool, dataset, files.
attach_fuse
zpool create -f -o cachefile=none -m "$ZMNT" "$POOL" "$DEV" >create.out 2>&1 ||
	fail "zpool create $POOL on $DEV failed: $(cat create.out)"
zfs create -o checksum=sha256 -o compression=off "$POOL/data" >zfs.out 2>&1 ||
	fail "zfs create $POOL/data failed: $(cat zfs.out)"
mountpoint -q "$DATA" || fail "dataset $POOL/data is not mounted on $DATA"
c=$(fuse_open); [ "$c" -ge 1 ] 2>/dev/null || fail "list --json: fuse_open '$c' with the pool imported, expected >= 1"

fill_tree "$DATA"
export_and_detach

# The plaintext went through the FUSE file and is not in the backing.
check_marker

# Second life: same key, import, everything intact and scrubbed clean.
attach_fuse
zpool import -o cachefile=none -d "$FUSE_DIR" "$POOL" >import.out 2>&1 ||
	fail "zpool import -d $FUSE_DIR $POOL failed: $(cat import.out)"
[ "$(zpool list -H -o health "$POOL")" = ONLINE ] || fail "pool $POOL not ONLINE after import: $(zpool status "$POOL")"
mountpoint -q "$DATA" || fail "dataset $POOL/data not mounted on $DATA after import"
check_tree "$DATA"

zpool scrub "$POOL" || fail "zpool scrub $POOL failed"
wait_for 60 eval '! zpool status "$POOL" | grep -q "scrub in progress"' ||
	fail "scrub of $POOL still running after 60 s: $(zpool status "$POOL")"
zpool status "$POOL" >status.out 2>&1 || fail "zpool status $POOL failed: $(cat status.out)"
grep -Eq 'scrub completed .* with 0 errors' status.out || fail "scrub did not complete with 0 errors: $(cat status.out)"
grep -q 'errors: No known data errors' status.out || fail "zpool status reports data errors: $(cat status.out)"
# Config lines: NAME STATE READ WRITE CKSUM, for the pool and the vdev.
awk -v pool="$POOL" -v dev="$DEV" '
	($1 == pool || $1 == dev) && NF >= 5 { n++; if ($2 != "ONLINE" || $3 != 0 || $4 != 0 || $5 != 0) bad = 1 }
	END { exit (n == 2 && !bad) ? 0 : 1 }' status.out ||
	fail "pool or vdev not ONLINE with 0 READ/WRITE/CKSUM errors: $(cat status.out)"

export_and_detach
stop_zfs
! pgrep -x zfs-fuse >/dev/null || fail "a zfs-fuse daemon is still running after stopping ours"
# The daemon's stderr goes to its log: no sanitizer report in there.
check_daemon_log
note "zfs-fuse pool on FUSE file: 35 files intact across export/detach/attach/import, scrub clean"
exit 0
