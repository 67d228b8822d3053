#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A hostile NBD client (libnbd with strict mode off, so it sends whatever it
# is asked to) gets the error the NBD spec prescribes for each malformed
# request, and nothing it sends reaches the volume, while a well-behaved
# client on a second connection keeps working:
#   read beyond / across the end            -> EINVAL
#   write beyond / across the end           -> ENOSPC (nothing written)
#   offset near 2^64 (offset+length wraps)  -> EINVAL / ENOSPC, no crash
#   length-0 read and write                 -> success
#   32 MiB read (the advertised maximum)    -> success
#   33 MiB read and 33 MiB write            -> EINVAL, connection still in sync
#   TRIM while discards are not allowed     -> EINVAL
#   unknown command flags (read/write/flush)-> EINVAL (FUA is always accepted)
#   WRITE_ZEROES beyond / across the end    -> ENOSPC
#   CACHE beyond the end                    -> EINVAL
# The volume starts with random content; every change the good client makes
# is tracked in an expected image, which `blockcrypt cat` must match
# byte for byte after detach.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3 cmp
requires_python_nbd

# A random baseline, written through a path independent of the NBD server.
# 64 MiB volume, 48 MiB of data: room for 33 MiB I/O.
random_volume 'hostile requests passphrase' 64M $((40 << 20)) "the 33 MiB cases need more"

attach_as hostile

note "hostile requests on one connection, a good client on another"
rc=0
timeout 300 /usr/bin/python3 - "$URI" expected.raw <<'EOF' 2>py.err || rc=$?
import os, sys
import nbd
from nbd_client import Checks, connect

uri, exp_path = sys.argv[1], sys.argv[2]
exp = bytearray(open(exp_path, "rb").read())
MiB = 1 << 20
checks = Checks(exp)
fail, expect_err, expect_ok, expect_data = checks.fail, checks.expect_err, checks.expect_ok, checks.expect_data

# The well-behaved client.
good = connect(uri)
size = good.get_size()
if size != len(exp):
    print(f"FAIL: export size {size} != decrypted size {len(exp)}", file=sys.stderr)
    sys.exit(1)

def good_roundtrip(case, off, n):
    pat = os.urandom(n)
    expect_ok(f"good client {case}: write", lambda: good.pwrite(pat, off))
    back = expect_ok(f"good client {case}: read back", lambda: good.pread(n, off))
    if back is not None and bytes(back) != pat:
        fail(f"good client {case}: read back other data than written at {off}+{n}")
    exp[off:off + n] = pat

good_roundtrip("before", MiB + 123, 64 * 1024 + 7)

# The hostile client.
bad = connect(uri, strict=0)
if bad.can_trim():
    fail("the export advertises TRIM although discards were not allowed")

# Out of range.
expect_err("read past the end", "EINVAL", lambda: bad.pread(512, size))
expect_err("read across the end", "EINVAL", lambda: bad.pread(1024, size - 512))
expect_err("write past the end", "ENOSPC", lambda: bad.pwrite(b"\xee" * 512, size))
expect_err("write across the end", "ENOSPC", lambda: bad.pwrite(b"\xee" * 1024, size - 512))
expect_data("last 512 bytes after the refused write across the end", good, size - 512, 512)
expect_err("write_zeroes past the end", "ENOSPC", lambda: bad.zero(4096, size))
expect_err("write_zeroes across the end", "ENOSPC", lambda: bad.zero(8192, size - 4096))
expect_data("last 4096 bytes after the refused write_zeroes across the end", good, size - 4096, 4096)
expect_err("cache past the end", "EINVAL", lambda: bad.cache(4096, size))

# offset + length wraps around 2^64 (to 0, or to a small in-range value).
for off, n in ((2**64 - 512, 512), (2**64 - 1, 2), (2**63, 4096)):
    expect_err(f"read at {off:#x}+{n}", "EINVAL", lambda: bad.pread(n, off))
    expect_err(f"write at {off:#x}+{n}", "ENOSPC", lambda: bad.pwrite(b"\xee" * n, off))
    expect_err(f"write_zeroes at {off:#x}+{n}", "ENOSPC", lambda: bad.zero(n, off))
    expect_err(f"cache at {off:#x}+{n}", "EINVAL", lambda: bad.cache(n, off))
expect_data("first 4096 bytes after the wrapping requests", good, 0, 4096)

# Length 0 is a valid (empty) request.
r = expect_ok("length-0 read", lambda: bad.pread(0, 0))
if r is not None and len(r) != 0:
    fail(f"length-0 read returned {len(r)} bytes")
expect_ok("length-0 write", lambda: bad.pwrite(b"", 4096))

# Payload size: 32 MiB is the advertised maximum, one more MiB is refused
# and, for a write, its payload skipped so the connection stays in sync.
mx = expect_ok("block size maximum", lambda: bad.get_block_size(nbd.SIZE_MAXIMUM))
if mx is not None and mx != 32 * MiB:
    fail(f"advertised maximum block size is {mx}, expected {32 * MiB}")
expect_data("32 MiB read (the maximum)", bad, 0, 32 * MiB)
expect_err("32 MiB + 1 read", "EINVAL", lambda: bad.pread(32 * MiB + 1, 0))
expect_err("33 MiB read", "EINVAL", lambda: bad.pread(33 * MiB, 0))
expect_data("read on the same connection after the 33 MiB read", bad, 4096, 4096)
expect_err("33 MiB write", "EINVAL", lambda: bad.pwrite(b"\x01" * (33 * MiB), 0))
expect_data("read on the same connection after the 33 MiB write", bad, 0, 8192)
expect_data("good client after the 33 MiB write", good, 33 * MiB - 4096, 4096)

# TRIM that was not negotiated.
expect_err("trim without --allow-discards", "EINVAL", lambda: bad.trim(4096, 0))
expect_data("trimmed range still holds its data", good, 0, 4096)

# Command flags.
expect_err("read with unknown flag 0x8000", "EINVAL", lambda: bad.pread(512, 0, flags=0x8000))
expect_err("read with NO_HOLE", "EINVAL", lambda: bad.pread(512, 0, flags=nbd.CMD_FLAG_NO_HOLE))
expect_err("write with unknown flag 0x8000", "EINVAL",
           lambda: bad.pwrite(b"\xee" * 4096, 8192, flags=0x8000))
expect_data("read after the refused flagged write", bad, 8192, 4096)
expect_err("flush with unknown flag 0x8000", "EINVAL", lambda: bad.flush(flags=0x8000))
# The spec: with SEND_FUA negotiated the server MUST accept FUA on any command.
expect_ok("flush with FUA", lambda: bad.flush(flags=nbd.CMD_FLAG_FUA))
expect_data("read with FUA", bad, 0, 512)

# The hostile connection is still usable, the good one is intact.
expect_data("hostile connection, final read", bad, MiB, 4096)
good_roundtrip("after", 5 * MiB + 1, 12345)
expect_data("good client's first pattern, after everything", good, MiB + 123, 64 * 1024 + 7)
step = 4 * MiB
for off in range(0, size, step):
    n = min(step, size - off)
    got = expect_ok(f"good client full read at {off}", lambda: good.pread(n, off))
    if got is not None and bytes(got) != bytes(exp[off:off + n]):
        first = next(i for i in range(n) if got[i] != exp[off + i])
        fail(f"volume differs from the expected image at byte {off + first}")
        break
for h in (bad, good):
    try:
        h.shutdown()
    except nbd.Error:
        pass  # already reported

open(exp_path, "wb").write(exp)
checks.exit()
EOF
py_verdict "$rc"

kill -0 "$PID" 2>/dev/null || fail "the daemon died (log: $(tail -n 5 "$BLOCKCRYPT_RUN_DIR/hostile.log"))"
detach_and_wait hostile "$PID"
bc cat v.img --key-file key >after.raw || fail "cat after detach failed"
cmp after.raw expected.raw >cmp.out 2>&1 ||
	fail "the volume holds other data than the good client wrote: $(head -n 1 cmp.out)"
exit 0
