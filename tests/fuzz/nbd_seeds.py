#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Synthetic fuzz-nbd seeds, and a decoder for fuzz-nbd inputs.

    nbd_seeds.py write DIR        write the gen-* seeds into DIR
    nbd_seeds.py describe FILE... print what each input says, one line per
                                  option or request (for reading crashes)

A fuzz-nbd input is one byte choosing the export variant (fuzz_nbd.c:
0 read-write "fuzz" + description, 1 the same with discards, 2 read-only
export, 3 read-only volume with only the default "" export; +4: the same
with TLS required), then what the client sends after the server's
greeting.  The real-* seeds come from
capture-real.sh; these add what real clients rarely send.
"""
import os
import struct
import sys

IHAVEOPT = 0x49484156454F5054
REQUEST_MAGIC = 0x25609513
FIXED, NO_ZEROES = 1, 2
OPTS = {1: "EXPORT_NAME", 2: "ABORT", 3: "LIST", 5: "STARTTLS", 6: "INFO", 7: "GO",
        8: "STRUCTURED_REPLY", 9: "LIST_META_CONTEXT", 10: "SET_META_CONTEXT"}
CMDS = {0: "READ", 1: "WRITE", 2: "DISC", 3: "FLUSH", 4: "TRIM", 5: "CACHE",
        6: "WRITE_ZEROES", 7: "BLOCK_STATUS"}
INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = 1, 2, 3
READ, WRITE, DISC, FLUSH, TRIM, CACHE, WRITE_ZEROES, BLOCK_STATUS = range(8)
FUA, NO_HOLE, DF, REQ_ONE = 1, 2, 4, 8
MiB = 1 << 20


def opt(option, data=b""):
    return struct.pack(">QII", IHAVEOPT, option, len(data)) + data


def info_data(name, *requests):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">H", len(requests)) + \
        b"".join(struct.pack(">H", r) for r in requests)


def req(cmd, offset=0, length=0, flags=0, cookie=None, payload=b""):
    cookie = cookie if cookie is not None else 0x1000 + cmd
    return struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, cookie, offset, length) + payload


def go(name="fuzz", *requests):
    return opt(7, info_data(name, *requests))


def cflags(f=FIXED | NO_ZEROES):
    return struct.pack(">I", f)


def meta_data(name, *queries, count=None):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries) if count is None else count) + \
        b"".join(struct.pack(">I", len(q)) + q for q in queries)


def requests_structured():
    """Structured READs (holes, DF), BLOCK_STATUS (REQ_ONE, bad ones)."""
    return b"".join([
        req(WRITE, 4096, 8192, payload=b"\x5a" * 8192),
        req(READ, 0, 65536),               # hole, data, hole
        req(READ, 4000, 9000, DF),
        req(READ, 100, 700),
        req(TRIM, 4096 + 100, 4096),       # one whole sector inside
        req(READ, 4096, 8192),
        req(BLOCK_STATUS, 0, MiB),
        req(BLOCK_STATUS, 1000, 70000, REQ_ONE),
        req(BLOCK_STATUS, 0, 0),           # length 0
        req(BLOCK_STATUS, MiB - 512, 1024),  # beyond the end
        req(BLOCK_STATUS, 0, 512, DF),     # bad flag
        req(READ, MiB - 10, 20),           # error chunk
        req(READ, 0, 0),
        req(DISC),
    ])


def requests_all():
    """Every command, valid and not, on a 1 MiB export."""
    return b"".join([
        req(WRITE, 0, 4096, FUA, payload=bytes(range(256)) * 16),
        req(READ, 0, 4096),
        req(WRITE, 511, 1000, payload=b"\xa5" * 1000),
        req(READ, 0, 2048, cookie=7),
        req(WRITE_ZEROES, 8192, 8192, NO_HOLE),
        req(READ, 8000, 9000),
        req(TRIM, 32768, 4096),
        req(READ, 32768, 512),
        req(CACHE, 0, 65536),
        req(FLUSH),
        req(READ, MiB - 1, 1),
        req(READ, MiB - 1, 2),             # past the end
        req(WRITE, MiB, 512, payload=b"\x01" * 512),  # past the end
        req(READ, 0, 512, flags=4),        # unknown flag
        req(WRITE_ZEROES, 0, 512, flags=8),
        req(BLOCK_STATUS, 0, 4096),        # not negotiated
        req(9, 0, 0xFFFFFFFF),             # unknown command, huge length
        req(FLUSH, 0, 4096),               # FLUSH with a length
        req(READ, 0, 0),
        req(WRITE, 4096, 0),
        req(DISC),
    ])


def seeds():
    full = cflags() + b"".join([
        opt(3),                                  # LIST
        opt(3, b"junk"),                         # LIST with data
        opt(5),                                  # STARTTLS (no TLS here)
        opt(8),                                  # STRUCTURED_REPLY
        opt(10, struct.pack(">I", 4) + b"fuzz" + struct.pack(">I", 1) + struct.pack(">I", 15) + b"base:allocation"),
        opt(0x1234, b"x" * 10),                  # unknown option
        opt(6, info_data("nope", INFO_NAME)),    # INFO, unknown export
        opt(6, b"\x00\x00\x00\x10ab"),           # INFO, name longer than the data
        opt(6, info_data("fuzz", INFO_NAME)[:-1]),  # request count does not match
        opt(7, b"\x00"),                         # GO, too short
        opt(6, info_data("fuzz", INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE, 77)),
        opt(6, info_data("")),
        go("fuzz", INFO_NAME, INFO_DESCRIPTION),
    ]) + requests_all()
    default_export = cflags() + opt(6, info_data("", INFO_NAME)) + go("", INFO_DESCRIPTION) + requests_all()
    out = {}
    for v in range(8):
        out[f"gen-full-v{v}"] = bytes([v]) + full
        out[f"gen-default-export-v{v}"] = bytes([v]) + default_export
    sr = opt(8)
    alloc = b"base:allocation"
    for v in (0, 1, 3):
        name = "" if v == 3 else "fuzz"
        out[f"gen-structured-v{v}"] = bytes([v]) + cflags() + sr + opt(10, meta_data(name, alloc)) + \
            go(name) + requests_structured()
    out["gen-meta-context-abuse"] = b"\x01" + cflags() + b"".join([
        opt(10, meta_data("fuzz", alloc)),             # before STRUCTURED_REPLY
        opt(9, meta_data("fuzz")),
        opt(8, b"x"),                                  # with data
        sr,
        opt(9, meta_data("fuzz")),                     # LIST: everything
        opt(9, meta_data("fuzz", b"base:")),
        opt(10, meta_data("fuzz", b"x-foo:bar", b"base:")),  # nothing selected
        opt(10, meta_data("fuzz", count=1000)),
        opt(10, meta_data("fuzz", alloc) + b"xyz"),
        opt(10, meta_data("fuzz", b"base:" + b"a" * 5000)),
        opt(10, meta_data("other", alloc)),
        opt(10, b"\x00" * 7),
        opt(10, meta_data("fuzz", alloc, alloc, alloc)),
        go(),
    ]) + requests_structured()
    out["gen-structured-no-context"] = b"\x01" + cflags() + sr + go() + requests_structured()
    out["gen-tls-starttls"] = b"\x05" + cflags() + opt(5) + go() + req(READ, 0, 512)
    out["gen-tls-starttls-with-data"] = b"\x04" + cflags() + opt(5, b"x") + opt(3) + opt(5)
    out["gen-tls-export-name"] = b"\x06" + cflags(FIXED) + opt(1, b"fuzz") + req(READ, 0, 512)
    out["gen-tls-abort"] = b"\x07" + cflags() + go("") + opt(2)
    out["gen-abort"] = b"\x00" + cflags(FIXED) + opt(3) + opt(2) + go()
    out["gen-abort-with-data"] = b"\x01" + cflags() + opt(2, b"bye")
    out["gen-export-name"] = b"\x01" + cflags(FIXED) + opt(1, b"fuzz") + req(READ, 0, 512) + req(WRITE, 512, 512, payload=b"z" * 512) + req(DISC)
    out["gen-export-name-no-zeroes"] = b"\x00" + cflags() + opt(1) + req(READ, 4096, 4096) + req(FLUSH, flags=FUA)
    out["gen-export-name-unknown"] = b"\x00" + cflags() + opt(1, b"other") + req(READ, 0, 512)
    out["gen-export-name-default-only"] = b"\x03" + cflags() + opt(1, b"fuzz") + req(READ, 0, 512)
    out["gen-bad-cflags"] = b"\x00" + cflags(0xFFFFFFFF) + go()
    out["gen-no-cflags"] = b"\x00" + cflags(0) + go() + req(READ, 0, 512)
    out["gen-bad-option-magic"] = b"\x00" + cflags() + struct.pack(">QII", 0x1122334455667788, 7, 0) + go()
    out["gen-huge-option"] = b"\x00" + cflags() + struct.pack(">QII", IHAVEOPT, 7, 0x40000000)
    out["gen-big-option-truncated"] = b"\x00" + cflags() + struct.pack(">QII", IHAVEOPT, 7, 70000) + b"x" * 100
    out["gen-write-truncated"] = b"\x01" + cflags() + go() + req(WRITE, 0, 4096, payload=b"q" * 100)
    out["gen-bad-request-magic"] = b"\x01" + cflags() + go() + req(READ, 0, 512) + b"\xde\xad\xbe\xef" + b"\x00" * 24 + req(READ, 0, 512)
    out["gen-write-read-back"] = b"\x01" + cflags() + go() + b"".join(
        req(WRITE, off, n, FUA if i % 2 else 0, cookie=i, payload=bytes([i + 1]) * n) + req(READ, max(0, off - 100), n + 200, cookie=100 + i)
        for i, (off, n) in enumerate([(0, 512), (100, 1000), (4095, 2), (65536 - 7, 4096 + 14), (MiB - 300, 300)])
    ) + req(TRIM, 0, 8192) + req(READ, 0, 8192) + req(WRITE_ZEROES, 100, 1000) + req(READ, 0, 2048)
    return out


def describe(data):
    lines = [f"variant {data[0] & 3}{' with TLS' if data[0] & 4 else ''} (byte {data[0]:#x})"] if data else ["(empty)"]
    p = 1

    def need(n):
        return len(data) - p >= n

    if not need(4):
        return lines + [f"{len(data) - p} trailing bytes (no client flags)"]
    lines.append(f"client flags {struct.unpack('>I', data[p:p + 4])[0]:#x}")
    p += 4
    transmission = False
    while not transmission:
        if not need(16):
            return lines + [f"{len(data) - p} trailing bytes (EOF in option haggling)"]
        magic, option, length = struct.unpack(">QII", data[p:p + 16])
        p += 16
        if magic != IHAVEOPT:
            return lines + [f"bad option magic {magic:#x}; {len(data) - p} more bytes"]
        body = data[p:p + length]
        p += length
        lines.append(f"option {OPTS.get(option, option)} len {length}{' (truncated)' if len(body) < length else ''}: {body[:64]!r}")
        transmission = option in (1, 7)  # whether GO succeeds is the server's call
    while need(28):
        magic, flags, cmd, cookie, offset, length = struct.unpack(">IHHQQI", data[p:p + 28])
        p += 28
        if magic != REQUEST_MAGIC:
            return lines + [f"bad request magic {magic:#x}; {len(data) - p} more bytes"]
        lines.append(f"{CMDS.get(cmd, cmd)} flags {flags:#x} cookie {cookie:#x} offset {offset} length {length}")
        if cmd == WRITE:
            p += length
    if p < len(data):
        lines.append(f"{len(data) - p} trailing bytes")
    return lines


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        for name, data in seeds().items():
            with open(os.path.join(sys.argv[2], name), "wb") as f:
                f.write(data)
    elif len(sys.argv) >= 3 and sys.argv[1] == "describe":
        for path in sys.argv[2:]:
            print(f"== {path}")
            with open(path, "rb") as f:
                print("\n".join(describe(f.read())))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
