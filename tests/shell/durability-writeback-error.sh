#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A failed write-back is never forgotten.  The backing is a file on ext4 on
# a loop device whose disk is an nbdfuse file served by nbdkit's memory
# plugin behind its error filter: while the file $INJECT exists every write
# of the disk fails with EIO, so ext4's write-back of our pages fails and
# fdatasync() reports it -- once: the kernel tells each open file about a
# lost write-back a single time.  blockcrypt must keep failing every later
# FLUSH and FUA write (NBD) and fsync (FUSE) until the volume is detached,
# even after the disk works again, must log the failure, and must never
# lose what was flushed before the failure.  A re-attach starts afresh.
. "$(dirname "$0")/functions.bash"
requires nbdkit nbdfuse fusermount3 losetup mkfs.ext4 mount umount
requires_python_nbd
requires_fuse

. "$TESTS_DIR/shell/disk-lib.bash"

INJECT=$TEST_TMP/inject
mkdir -p fs fusedir
disk_start --filter=error memory 256M \
	error-pwrite=EIO error-pwrite-rate=100% error-pwrite-file="$INJECT"
LOOP=$(losetup -f --show "$MNT/disk") || skip "no loop device"
cleanup_fn "losetup -d $LOOP"
mkfs.ext4 -q "$LOOP" || fail "mkfs.ext4 failed"
mount "$LOOP" fs || fail "cannot mount ext4 on $LOOP"
cleanup_fn "umount -l '$TEST_TMP/fs'"

VOLUME_SIZE=40M new_volume fs/vol.img key
LOG=$BLOCKCRYPT_RUN_DIR/vol.log

# --- NBD: FLUSH and FUA ------------------------------------------------------
uri=$(bc attach fs/vol.img --key-file key) || fail "attach failed"
/usr/bin/python3 - "$uri" "$INJECT" >nbd.out 2>nbd.err <<'PY' || fail "NBD part: $(cat nbd.err)"
import nbd, os, sys
uri, inject = sys.argv[1:]
h = nbd.NBD()
h.connect_uri(uri)
MiB = 1 << 20
h.pwrite(b"\xaa" * MiB, 0)
h.flush()                               # durable before anything fails
h.pwrite(b"\x55" * MiB, MiB)            # acknowledged, not yet durable
open(inject, "w").close()               # the disk now fails every write

def must_fail(what, fn):
    try:
        fn()
    except nbd.Error as e:
        print("%s: failed as it must: %s" % (what, e.string), file=sys.stderr)
        return
    sys.exit("%s succeeded although a write-back had failed" % what)

must_fail("FLUSH while the disk fails", h.flush)
must_fail("second FLUSH while the disk fails", h.flush)
os.unlink(inject)                       # the disk works again
must_fail("FLUSH after the disk recovered", h.flush)
must_fail("FUA write after the disk recovered",
          lambda: h.pwrite(b"\x11" * 4096, 4 * MiB, nbd.CMD_FLAG_FUA))
must_fail("FLUSH after that", h.flush)
h.pwrite(b"\x22" * 4096, 5 * MiB)       # plain writes still go to the cache
print("ok")
h.shutdown()
PY
grep -qx ok nbd.out || fail "NBD part did not run to its end"
grep -q "write-back failed" "$LOG" || fail "the daemon did not log the failed write-back: $(cat "$LOG")"
[ "$(grep -c "backing: write-back failed" "$LOG")" = 1 ] || fail "the failed write-back was logged more than once: $(cat "$LOG")"
# The NBD layer logs the FLUSHes it failed (rate-limited: one line).
[ "$(grep -c "nbd vol: FLUSH failed" "$LOG" || true)" = 1 ] ||
	fail "the failed FLUSHes were not logged once: $(cat "$LOG")"
bc detach vol >/dev/null 2>detach.err || fail "detach failed: $(cat detach.err)"

# What was flushed before the failure is there; a fresh attach flushes again.
bc cat fs/vol.img --key-file key >plain.out 2>cat.err || fail "cat failed: $(cat cat.err)"
cmp -s <(head -c 1048576 plain.out) <(head -c 1048576 /dev/zero | tr '\0' '\252') ||
	fail "the first MiB, flushed before the failure, was lost"
uri=$(bc attach fs/vol.img --key-file key) || fail "re-attach failed"
/usr/bin/python3 -c 'import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); h.pwrite(b"x"*4096, 0); h.flush(); h.shutdown()' \
	"$uri" 2>flush.err || fail "a new attach cannot flush on a working disk: $(cat flush.err)"
bc detach vol >/dev/null || fail "detach failed"

# --- FUSE: fsync -------------------------------------------------------------
bc attach fs/vol.img --key-file key --fuse fusedir >/dev/null || fail "attach --fuse failed"
/usr/bin/python3 - "$TEST_TMP/fusedir/vol" "$INJECT" >fuse.out 2>fuse.err <<'PY' || fail "FUSE part: $(cat fuse.err)"
import errno, os, sys
path, inject = sys.argv[1:]
fd = os.open(path, os.O_RDWR)
os.pwrite(fd, b"\x33" * 65536, 0)
os.fsync(fd)
os.pwrite(fd, b"\x44" * 65536, 65536)
open(inject, "w").close()
for what in ("fsync while the disk fails", "second fsync", "fsync after the disk recovered"):
    if what.endswith("recovered"):
        os.unlink(inject)
    try:
        os.fsync(fd)
    except OSError as e:
        print("%s: failed as it must: %s" % (what, e), file=sys.stderr)
        continue
    sys.exit("%s succeeded although a write-back had failed" % what)
os.close(fd)
print("ok")
PY
grep -qx ok fuse.out || fail "FUSE part did not run to its end"
bc detach vol >/dev/null 2>detach.err || fail "detach failed: $(cat detach.err)"
bc cat fs/vol.img --key-file key >plain.out 2>cat.err || fail "cat failed: $(cat cat.err)"
cmp -s <(head -c 65536 plain.out) <(head -c 65536 /dev/zero | tr '\0' '\063') ||
	fail "the first 64 KiB, fsynced before the failure, were lost"
exit 0
