#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `attach --read-only`: a client that writes anyway (libnbd, strict mode
# off, so the requests really reach the server) is refused with EPERM for
# WRITE (plain, FUA, past the end) and WRITE_ZEROES (plain, NO_HOLE), with
# EPERM or EINVAL for TRIM (not advertised), and with EINVAL or EPERM for a
# 33 MiB WRITE; after every refused WRITE the connection is still in sync
# (its payload was skipped) and reads the original data.  After detach the
# backing file is bit for bit what it was before attach.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3 cmp sha256sum
requires_python_nbd

random_volume 'hostile read-only passphrase' 64M
BEFORE=$(sha v.img)

attach_as ro --read-only

note "writes, write_zeroes and trims on a read-only export"
rc=0
timeout 120 /usr/bin/python3 - "$URI" expected.raw <<'EOF' 2>py.err || rc=$?
import sys
import nbd
from nbd_client import Checks, connect, errname

uri, exp = sys.argv[1], open(sys.argv[2], "rb").read()
MiB = 1 << 20
checks = Checks(exp)
fail, expect_err, expect_data = checks.fail, checks.expect_err, checks.expect_data

h = connect(uri, strict=0)
size = h.get_size()
if size != len(exp):
    print(f"FAIL: export size {size} != decrypted size {len(exp)}", file=sys.stderr)
    sys.exit(1)
if not h.is_read_only():
    fail("the export does not advertise NBD_FLAG_READ_ONLY")
if h.can_trim():
    fail("a read-only export advertises TRIM")

EPERM, EINVAL, ENOSPC = ("EPERM",), ("EINVAL",), ("ENOSPC",)
expect_err("write", EPERM, lambda: h.pwrite(b"\xee" * 4096, 0))
expect_data("read after the refused write", h, 0, 8192)
expect_err("write with FUA", EPERM, lambda: h.pwrite(b"\xee" * 4096, MiB, flags=nbd.CMD_FLAG_FUA))
expect_data("read after the refused FUA write", h, MiB, 4096)
expect_err("unaligned write", EPERM, lambda: h.pwrite(b"\xee" * 1000, 2 * MiB + 7))
expect_data("read after the refused unaligned write", h, 2 * MiB, 4096)
expect_err("write past the end", EPERM + ENOSPC, lambda: h.pwrite(b"\xee" * 4096, size))
expect_data("read after the refused write past the end", h, size - 4096, 4096)
expect_err("33 MiB write", EINVAL + EPERM, lambda: h.pwrite(b"\xee" * (33 * MiB), 0))
expect_data("read after the refused 33 MiB write", h, 0, 8192)
expect_err("write_zeroes", EPERM, lambda: h.zero(4096, 3 * MiB))
expect_err("write_zeroes with NO_HOLE", EPERM,
           lambda: h.zero(4096, 3 * MiB, flags=nbd.CMD_FLAG_NO_HOLE))
expect_err("write_zeroes of the whole device", EPERM, lambda: h.zero(size, 0))
expect_err("trim", EPERM + EINVAL, lambda: h.trim(4096, 4 * MiB))
expect_err("trim of the whole device", EPERM + EINVAL, lambda: h.trim(size, 0))
expect_data("read after the refused write_zeroes and trims", h, 3 * MiB, 2 * MiB)
try:
    h.flush()
except nbd.Error as e:
    fail(f"flush on a read-only export: expected success, got {errname(e)} ({e.string})")

for off in range(0, size, 4 * MiB):
    n = min(4 * MiB, size - off)
    try:
        got = h.pread(n, off)
    except nbd.Error as e:
        fail(f"full read at {off}: {errname(e)} ({e.string})")
        break
    if bytes(got) != exp[off:off + n]:
        first = next(i for i in range(n) if got[i] != exp[off + i])
        fail(f"the read-only export changed at byte {off + first}")
        break
try:
    h.shutdown()
except nbd.Error:
    pass  # already reported
checks.exit()
EOF
py_verdict "$rc"

kill -0 "$PID" 2>/dev/null || fail "the daemon died (log: $(tail -n 5 "$BLOCKCRYPT_RUN_DIR/ro.log"))"
detach_and_wait ro "$PID"
[ "$(sha v.img)" = "$BEFORE" ] || fail "the backing file changed while attached read-only"
bc cat v.img --key-file key >after.raw || fail "cat after detach failed"
cmp after.raw expected.raw >/dev/null 2>&1 || fail "the volume reads back other data than before"
exit 0
