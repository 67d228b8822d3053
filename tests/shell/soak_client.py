#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Mixed-operation NBD client with an exact model, for tests/shell/soak-*.sh.

Needs libnbd's Python bindings (Debian python3-libnbd): run it with
/usr/bin/python3.  Not a test itself.

  run    URI MODEL --offset O --length L --seed S --write-bytes N [--depth D]
  verify URI MODEL

`run` owns the region [O, O+L) of the export.  It first writes the whole
region, then keeps D requests in flight (never two overlapping ones) of
random kinds until N bytes have been written: WRITE (byte-granular offsets
and lengths, aligned or not, some with FUA), WRITE_ZEROES (some with
NO_HOLE), TRIM, READ and FLUSH.  The model is the region's expected bytes
plus a mask of the bytes that are defined: TRIM makes its range undefined
(the NBD spec: contents unspecified until overwritten), WRITE and
WRITE_ZEROES make theirs defined again.  Every READ is compared with the
model (defined bytes only) when it completes, and at the end the whole
region is read back and compared; the model is saved in MODEL (data, then
mask) for `verify`, which reads the region again (e.g. after re-attaching)
and compares.  Bytes outside a TRIM range must never change: a TRIM that
damaged the rest of a partially covered sector shows up as a mismatch.
Both commands first prove they can detect a mismatch (one flipped defined
byte in a copy).  Counters go to stderr as "# key=value ..."; any mismatch
or failed request is a "FAIL: ..." line and exit status 1.
"""

import argparse
import json
import random
import sys

import nbd

from nbd_client import connect, errno_of, fail, report_stats

MAX_REQ = 1 << 20


def mismatch(actual, expected, mask):
    """Offset of the first defined byte where ACTUAL differs, or -1."""
    n = len(actual)
    step = 1 << 20
    for o in range(0, n, step):
        a = actual[o:o + step]
        e = expected[o:o + step]
        m = mask[o:o + step]
        if a == e:
            continue
        x = (int.from_bytes(a, "little") ^ int.from_bytes(e, "little")) & int.from_bytes(m, "little")
        if x:
            return o + ((x & -x).bit_length() - 1) // 8
    return -1


def read_region(h, off, length):
    out = bytearray()
    for o in range(0, length, MAX_REQ * 4):
        out += h.pread(min(MAX_REQ * 4, length - o), off + o)
    return out


def self_test(actual, expected, mask, rng):
    defined = [i for i in (rng.randrange(len(mask)) for _ in range(1000)) if mask[i]]
    if not defined:
        fail("self-test: no defined byte to damage")
    i = defined[0]
    bad = bytearray(actual)
    bad[i] ^= 0x40
    if mismatch(bad, expected, mask) != i:
        fail("self-test: a flipped byte at %d was not detected" % i)


def cmd_run(a):
    rng = random.Random(a.seed)
    h = connect(a.uri)
    if not (h.can_trim() and h.can_zero() and h.can_flush() and h.can_fua()):
        fail("the export lacks TRIM, WRITE_ZEROES, FLUSH or FUA (attached without --allow-discards?)")
    base, size = a.offset, a.length
    model = bytearray(rng.randbytes(size))
    mask = bytearray(b"\xff") * size
    for o in range(0, size, MAX_REQ):
        h.pwrite(model[o:o + MAX_REQ], base + o)
    st = dict(written=size, zeroed=0, trimmed=0, read_verified=0, writes=0, zeroes=0,
              trims=0, reads=0, flushes=0, fua=0)
    inflight = {}   # cookie -> (kind, off, len, buf)
    errors = []

    def overlaps(o, n):
        return any(o < e[1] + e[2] and e[1] < o + n for e in inflight.values())

    def pick_range(maxlen):
        for _ in range(50):
            r = rng.random()
            n = rng.randint(1, maxlen)
            if r < 0.5:         # 4096-aligned
                n = max(4096, n - n % 4096)
                o = rng.randrange(0, size - n + 1, 4096) if size - n >= 0 else 0
            elif r < 0.75:      # 512-aligned
                n = max(512, n - n % 512)
                o = rng.randrange(0, size - n + 1, 512)
            else:               # anywhere
                o = rng.randrange(0, size - n + 1)
            if not overlaps(o, n):
                return o, n
        return None

    next_id = [0]

    def done(oid):
        def cb(err):
            e = errno_of(err)
            kind, o, n, buf = inflight.pop(oid)
            if e:
                errors.append("%s of %d bytes at region+%d failed: errno %d" % (kind, n, o, e))
            elif kind == "read":
                got = buf.to_bytearray()
                bad = mismatch(got, model[o:o + n], mask[o:o + n])
                if bad >= 0:
                    errors.append("READ of %d bytes at export offset %d: byte %d differs from the model"
                                  % (n, base + o, base + o + bad))
                st["read_verified"] += n
            return 1
        return cb

    def issue():
        r = rng.random()
        next_id[0] += 1
        oid = next_id[0]
        if r < 0.04:
            inflight[oid] = ("flush", 0, 0, None)
            h.aio_flush(completion=done(oid))
            st["flushes"] += 1
            return True
        if r < 0.50:
            kind = "write"
        elif r < 0.62:
            kind = "zero"
        elif r < 0.72:
            kind = "trim"
        else:
            kind = "read"
        rg = pick_range(256 << 10)
        if rg is None:
            return False
        o, n = rg
        # (in flight before issuing: the reply may be handled at once)
        if kind == "write":
            data = rng.randbytes(n)
            fua = rng.random() < 0.1
            model[o:o + n] = data
            mask[o:o + n] = b"\xff" * n
            buf = nbd.Buffer.from_bytearray(data)
            inflight[oid] = (kind, o, n, buf)
            h.aio_pwrite(buf, base + o, completion=done(oid), flags=nbd.CMD_FLAG_FUA if fua else 0)
            st["writes"] += 1
            st["fua"] += fua
            st["written"] += n
        elif kind == "zero":
            model[o:o + n] = bytes(n)
            mask[o:o + n] = b"\xff" * n
            flags = nbd.CMD_FLAG_NO_HOLE if rng.random() < 0.5 else 0
            inflight[oid] = (kind, o, n, None)
            h.aio_zero(n, base + o, completion=done(oid), flags=flags)
            st["zeroes"] += 1
            st["zeroed"] += n
        elif kind == "trim":
            mask[o:o + n] = bytes(n)
            inflight[oid] = (kind, o, n, None)
            h.aio_trim(n, base + o, completion=done(oid))
            st["trims"] += 1
            st["trimmed"] += n
        else:
            buf = nbd.Buffer(n)
            inflight[oid] = (kind, o, n, buf)
            h.aio_pread(buf, base + o, completion=done(oid))
            st["reads"] += 1
        return True

    while st["written"] + st["zeroed"] < a.write_bytes or inflight:
        if errors:
            break
        while (len(inflight) < a.depth and st["written"] + st["zeroed"] < a.write_bytes
               and issue()):
            pass
        if inflight:
            h.poll(-1)
    if errors:
        fail("; ".join(errors[:5]))
    h.flush()
    got = read_region(h, base, size)
    h.shutdown()
    bad = mismatch(got, model, mask)
    if bad >= 0:
        fail("final read-back: byte %d (export offset %d) differs from the model" % (bad, base + bad))
    st["read_verified"] += size
    self_test(got, model, mask, rng)
    with open(a.model, "wb") as f:
        f.write(json.dumps({"offset": base, "length": size}).encode() + b"\n")
        f.write(model)
        f.write(mask)
    st["undefined_at_end"] = size - mask.count(b"\xff")
    report_stats(None, st, a.stats)


def cmd_verify(a):
    with open(a.model, "rb") as f:
        hdr = json.loads(f.readline())
        base, size = hdr["offset"], hdr["length"]
        model = f.read(size)
        mask = f.read(size)
    if len(model) != size or len(mask) != size:
        fail("model file %s is truncated" % a.model)
    h = connect(a.uri)
    got = read_region(h, base, size)
    h.shutdown()
    bad = mismatch(got, model, mask)
    if bad >= 0:
        fail("byte %d (export offset %d) differs from the model" % (bad, base + bad))
    self_test(got, model, mask, random.Random(size))
    print("# verified=%d" % size, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("uri")
    r.add_argument("model")
    r.add_argument("--offset", type=int, required=True)
    r.add_argument("--length", type=int, required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--write-bytes", type=int, required=True)
    r.add_argument("--depth", type=int, default=8)
    r.add_argument("--stats")
    v = sub.add_parser("verify")
    v.add_argument("uri")
    v.add_argument("model")
    a = ap.parse_args()
    {"run": cmd_run, "verify": cmd_verify}[a.cmd](a)


if __name__ == "__main__":
    main()
