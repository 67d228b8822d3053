#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# detach refuses (exit 9, "busy") while the FUSE file is open -- by a shell
# fd or a loop device -- and the daemon keeps serving; once the file is
# closed detach succeeds.  SIGTERM while busy is ignored the same way.
# detach --force goes through an open file and the daemon is gone; SIGTERM
# on an idle daemon stops it and removes its runtime entry and mount.
. "$(dirname "$0")/functions.bash"
requires nbdinfo python3 mountpoint timeout

new_volume vol.img key
mkdir mnt
fusefile=$PWD/mnt/vol
uri=$(nbd_uri vol)
# Never leave a loop device or a mount behind, whatever happens.
loopdev=
cleanup_fn '[ -z "$loopdev" ] || losetup -d "$loopdev"; exec 7>&- 7<&-; _detach_all; ! mountpoint -q "$TEST_TMP/mnt" || umount -l "$TEST_TMP/mnt"'

attach() { bc attach vol.img --key-file key --fuse mnt >/dev/null || fail "attach failed"; }
fuse_open() { bc status vol --json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("fuse_open"))'; }
fuse_closed() { [ "$(fuse_open)" = 0 ]; }
# detach_when_closed: a file closed a moment ago may still count as open
# until the kernel's asynchronous FUSE release arrives; allow 20 s for that.
detach_when_closed() {
	wait_for 20 fuse_closed || fail "the FUSE file still counts as open 20 s after it was closed"
	bc detach vol 2>detach.err || fail "detach after closing the FUSE file failed: $(cat detach.err)"
}

# 1. Held open by the shell.
attach
pid=$(daemon_pid vol)
exec 7<>"$fusefile" || fail "cannot open $fusefile"
[ "$(fuse_open)" = 1 ] || fail "status does not count the open FUSE file: fuse_open=$(fuse_open)"
expect_exit 9 bc detach vol
case $ERR in *busy*) ;; *) fail "busy detach message does not say busy: $ERR" ;; esac
note "busy: $ERR"
kill -TERM "$pid"
sleep 0.5
running "$pid" || fail "SIGTERM stopped the daemon although its FUSE file is open"
[ -e "$BLOCKCRYPT_RUN_DIR/vol.json" ] || fail "runtime entry gone after an ignored SIGTERM"
nbdinfo "$uri" >/dev/null || fail "the daemon does not serve NBD after a refused detach / ignored SIGTERM"
head -c 4096 <&7 | cmp -s - <(head -c 4096 /dev/zero) || fail "FUSE file unreadable after a refused detach"
exec 7>&-
detach_when_closed
gone "$pid" || fail "daemon $pid still running after detach"

# 2. Held open by a loop device (or by the shell again, without losetup), then --force.
attach
pid=$(daemon_pid vol)
if command -v losetup >/dev/null && loopdev=$(losetup --find --show "$fusefile" 2>/dev/null); then
	note "holding $fusefile with $loopdev"
	expect_exit 9 bc detach vol
else
	loopdev=
	note "no usable losetup: holding $fusefile with a shell fd"
	exec 7<>"$fusefile"
	expect_exit 9 bc detach vol
fi
# (bounded: a daemon that cannot let go would otherwise keep detach waiting for a minute)
rc=0; timeout 15 "$BLOCKCRYPT" detach --force vol 2>detach.err || rc=$?
[ "$rc" = 0 ] || fail "detach --force of a busy volume: exit $rc (124 = still waiting after 15 s): $(cat detach.err)"
gone "$pid" || fail "daemon $pid still running after detach --force"
[ ! -e "$BLOCKCRYPT_RUN_DIR/vol.json" ] || fail "runtime entry left after detach --force"
if [ -n "$loopdev" ]; then losetup -d "$loopdev"; loopdev=; else exec 7>&-; fi
! mountpoint -q mnt || fail "FUSE mount left after detach --force"

# 3. SIGTERM on an idle daemon: a clean detach.
attach
pid=$(daemon_pid vol)
kill -TERM "$pid"
gone "$pid" || fail "daemon $pid ignored SIGTERM although not busy"
[ ! -e "$BLOCKCRYPT_RUN_DIR/vol.json" ] || fail "runtime entry left after SIGTERM"
[ ! -e "$BLOCKCRYPT_RUN_DIR/vol.sock" ] || fail "socket left after SIGTERM"
! mountpoint -q mnt || fail "FUSE mount left after SIGTERM"
[ "$(bc list --json | tr -d ' \n')" = "[]" ] || fail "list not empty after SIGTERM"
exit 0
