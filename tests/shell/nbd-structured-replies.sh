#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Structured replies and the zero-ciphertext rule, through libnbd in strict
# mode (every STRICT_* flag: libnbd then checks each chunk the server
# sends against the spec and fails the command otherwise).  A --no-wipe
# volume on a new sparse file: its data area is all zero ciphertext.
#  - structured replies, base:allocation and DF are negotiated;
#  - a never-written range reads as zeros, as OFFSET_HOLE chunks only;
#    random data reads back as OFFSET_DATA; a DF read of data and zeros
#    is exactly one OFFSET_DATA chunk; an unaligned read has its whole
#    blocks of zeros as one OFFSET_HOLE (the partial ones as data);
#  - zeros written (WRITE_ZEROES, and a WRITE of zero bytes) read back as
#    zeros while the backing there is NOT all zero (they are encrypted;
#    only never-written sectors are zero ciphertext);
#  - BLOCK_STATUS with REQ_ONE gives one extent, within the request;
#    without, nonzero extents that never pass the request's end, and over
#    600 extents (written sectors between holes) at most 256 of them;
#  - a client that asks for no structured replies gets simple ones (its
#    reads still work) and no metadata context.
. "$(dirname "$0")/functions.bash"
requires cryptsetup
requires_python_nbd
NBDPY=/usr/bin/python3

VOLUME_SIZE=48M new_volume v.img key --no-wipe
off=$(data_offset v.img)
uri=$(bc attach v.img --key-file key) || fail "attach failed"

$NBDPY - "$uri" v.img "$off" <<'EOF' || fail "see above"
import os, sys, nbd
uri, img, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
MiB = 1 << 20
bad = 0
def say(msg):
    global bad
    bad += 1
    print("FAIL: nbd-structured-replies.sh: " + msg, file=sys.stderr)

h = nbd.NBD()
h.set_request_structured_replies(True)
h.add_meta_context("base:allocation")
strict = 0
for name in dir(nbd):
    if name.startswith("STRICT_"):
        strict |= getattr(nbd, name)
h.set_strict_mode(strict)
h.connect_uri(uri)
if not (h.get_structured_replies_negotiated() and h.can_meta_context("base:allocation") and h.can_df()):
    say("structured replies, base:allocation or DF not negotiated")
size = h.get_size()

def read(n, o, flags=0):
    chunks = []
    def cb(buf, coff, status, err):
        chunks.append((status, coff, len(buf), bytes(buf) == bytes(len(buf))))
        return 0
    data = h.pread_structured(n, o, cb, flags)
    return bytes(data), chunks

# Never written: zeros, as holes only.
data, chunks = read(4 * MiB, 20 * MiB + 4096)
if data != bytes(4 * MiB):
    say("a never-written range does not read as zeros")
if not chunks or any(c[0] != nbd.READ_HOLE for c in chunks):
    say(f"a never-written range is not sent as OFFSET_HOLE chunks: {chunks[:4]}")
# Random data.
pat = os.urandom(2 * MiB)
h.pwrite(pat, 0)
data, chunks = read(2 * MiB, 0)
if data != pat or any(c[0] != nbd.READ_DATA for c in chunks):
    say(f"random data did not come back as OFFSET_DATA: {chunks[:4]}")
# DF across data and a hole: one content chunk, with the zeros in it.
data, chunks = read(MiB, 2 * MiB - 65536, nbd.CMD_FLAG_DF)
if data != pat[-65536:] + bytes(MiB - 65536):
    say("a DF read returned other bytes")
if [c[0] for c in chunks] != [nbd.READ_DATA]:
    say(f"a DF read was not exactly one OFFSET_DATA chunk: {chunks}")
# Unaligned, across data and a hole, fragmented.
data, chunks = read(MiB + 1001, 2 * MiB - 777)
if data != pat[-777:] + bytes(MiB + 1001 - 777):
    say("an unaligned read across data and a hole returned other bytes")
if [c for c in chunks if c[0] == nbd.READ_HOLE] != [(nbd.READ_HOLE, 2 * MiB, MiB, True)]:
    say(f"an unaligned read across data and a hole: not one hole chunk of its whole blocks: {chunks}")

# Zeros written are encrypted zeros.
h.zero(MiB, 6 * MiB)
h.pwrite(bytes(MiB), 8 * MiB)
h.flush()
for o in (6 * MiB, 8 * MiB):
    if h.pread(MiB, o) != bytes(MiB):
        say(f"zeros written at {o} do not read back as zeros")
    with open(img, "rb") as f:
        f.seek(off + o)
        raw = f.read(MiB)
    if any(raw[i:i + 4096] == bytes(4096) for i in range(0, MiB, 4096)):
        say(f"zeros written at {o} left a sector of zero ciphertext on the backing")
with open(img, "rb") as f:
    f.seek(off + 20 * MiB)
    if f.read(MiB) != bytes(MiB):
        say("the never-written area of the backing is not zero (the test's premise)")

# BLOCK_STATUS.
def status(n, o, flags=0):
    ext = []
    def cb(meta, coff, e, err):
        ext.append((meta, coff, list(e)))
        return 0
    h.block_status(n, o, cb, flags)
    return ext
for o, n in ((0, size), (4097, 3 * MiB), (size - 5000, 5000)):
    e = status(n, o, nbd.CMD_FLAG_REQ_ONE)
    if len(e) != 1 or len(e[0][2]) != 2 or not 0 < e[0][2][0] <= n:
        say(f"REQ_ONE at {o}+{n}: not one extent within the request: {e}")
    e = status(n, o)
    lens = e[0][2][0::2] if len(e) == 1 else []
    if not lens or 0 in lens or sum(lens) > n:
        say(f"BLOCK_STATUS at {o}+{n}: bad extents {e}")
# 300 written sectors with holes between them: 600 extents, more than
# one reply carries (NBD_MAX_EXTENTS, 256): fewer, alternating, in range.
for i in range(300):
    h.pwrite(b"\x5a" * 4096, 24 * MiB + i * 8192)
h.flush()
e = status(300 * 8192, 24 * MiB)
lens, flags = e[0][2][0::2], e[0][2][1::2]
if not 2 <= len(lens) <= 256 or sum(lens) >= 300 * 8192 or \
        any(f != (0, 3)[i % 2] for i, f in enumerate(flags)) or any(n != 4096 for n in lens):
    say(f"BLOCK_STATUS over 600 extents: {len(lens)} extents {e[0][2][:8]}...")
h.shutdown()

# No structured replies asked for: simple replies.
s = nbd.NBD()
s.set_request_structured_replies(False)
s.set_strict_mode(strict)
s.connect_uri(uri)
if s.get_structured_replies_negotiated() or s.can_meta_context("base:allocation"):
    say("structured replies or a context without asking for them")
if s.pread(2 * MiB, 0) != pat or s.pread(4096, 30 * MiB) != bytes(4096):
    say("simple-reply reads returned other bytes")
s.shutdown()
sys.exit(1 if bad else 0)
EOF
