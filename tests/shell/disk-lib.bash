# SPDX-License-Identifier: GPL-2.0-or-later
# A "disk" for the durability tests: an image served by nbdkit (with the
# filters a test chooses) on a unix socket, exposed as the regular file
# $MNT/disk by nbdfuse.  Source it after functions.bash:
#   . "$(dirname "$0")/functions.bash"
#   . "$TESTS_DIR/shell/disk-lib.bash"      (functions.bash has cd-ed away)
# (Not a test itself: meson runs tests/shell/*.sh only.)
# The disk is stopped when the test exits, whatever happened.

MNT=$TEST_TMP/mnt
NBDKIT_PID=''
NBDFUSE_PID=''
mkdir -p "$MNT"

# disk_start NBDKIT_ARGS...: start nbdkit with NBDKIT_ARGS (filters, plugin
# and its parameters) and nbdfuse on it; sets NBDKIT_PID and NBDFUSE_PID.
# Their output goes to nbdkit.out and nbdfuse.out.  Both are disowned: a
# test may SIGKILL them without a "Killed" job notice.
disk_start() {
	rm -f "$TEST_TMP/nbdkit.sock" "$TEST_TMP/nbdkit.pid"
	# nbdkit writes the pid file once it accepts connections; its socket
	# file appears earlier, between bind(2) and listen(2).
	nbdkit -f -U "$TEST_TMP/nbdkit.sock" -P "$TEST_TMP/nbdkit.pid" "$@" >nbdkit.out 2>&1 &
	NBDKIT_PID=$!
	disown "$NBDKIT_PID"
	wait_for 20 test -s "$TEST_TMP/nbdkit.pid" || _disk_fail "nbdkit pid file"
	nbdfuse "$MNT/disk" --unix "$TEST_TMP/nbdkit.sock" >nbdfuse.out 2>&1 &
	NBDFUSE_PID=$!
	disown "$NBDFUSE_PID"
	wait_for 20 test -f "$MNT/disk" || _disk_fail "nbdfuse mount"
}
_disk_fail() { fail "no $1 after 20 s: $(cat nbdkit.out nbdfuse.out 2>/dev/null)"; }

# disk_stop: unmount (so nbdfuse exits, ending nbdkit's only client) and
# stop nbdkit with SIGTERM; with DISK_STOP_SIGNAL=KILL (a power cut: a
# caching nbdkit must not get the chance to flush) nbdkit is killed first.
DISK_STOP_SIGNAL=TERM
disk_stop() {
	[ "$DISK_STOP_SIGNAL" != KILL ] || [ -z "$NBDKIT_PID" ] || kill -9 "$NBDKIT_PID" 2>/dev/null || true
	# (a mount whose nbdfuse died fails `mountpoint`, so do not ask)
	fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	[ -z "$NBDFUSE_PID" ] || gone "$NBDFUSE_PID" || kill -9 "$NBDFUSE_PID" 2>/dev/null || true
	if [ -n "$NBDKIT_PID" ]; then
		kill -s "$DISK_STOP_SIGNAL" "$NBDKIT_PID" 2>/dev/null || true
		gone "$NBDKIT_PID" || kill -9 "$NBDKIT_PID" 2>/dev/null || true
	fi
	NBDKIT_PID='' NBDFUSE_PID=''
}
cleanup_fn disk_stop
