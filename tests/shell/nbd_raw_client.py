#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A raw-socket NBD client (python3 socket + struct, no libnbd) that can say
things a real client never would, for the nbd-hostile-* shell tests.

As a module: connect(), handshake(), go(), request(), reply(), expect_closed()
... raise Fail with a one-line explanation when the server does not behave
as the NBD spec (doc/proto.md) and blockcrypt's server promise.

As a program: nbd_raw_client.py SCENARIO SOCKET EXPORT [ARGS...]; exit 0
when the server behaved, 1 (with "FAIL: ..." on stderr) when it did not.
Every socket operation has a timeout, so a server that hangs fails.
"""
import os
import random
import socket
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR_UNSUP = 2**31 + 1
REP_ERR_POLICY = 2**31 + 2
REP_ERR_INVALID = 2**31 + 3
REP_ERR_TLS_REQD = 2**31 + 5
REP_ERR_UNKNOWN = 2**31 + 6
REP_ERR_TOO_BIG = 2**31 + 9
REP_NAMES = {
    REP_ACK: "ACK", REP_SERVER: "SERVER", REP_INFO: "INFO", REP_META_CONTEXT: "META_CONTEXT",
    REP_ERR_UNSUP: "ERR_UNSUP", REP_ERR_POLICY: "ERR_POLICY",
    REP_ERR_INVALID: "ERR_INVALID", REP_ERR_UNKNOWN: "ERR_UNKNOWN",
    REP_ERR_TOO_BIG: "ERR_TOO_BIG", REP_ERR_TLS_REQD: "ERR_TLS_REQD",
}

INFO_EXPORT = 0

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_BLOCK_STATUS = 7
CMD_FLAG_FUA = 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3
TX_FLAG_SEND_DF = 1 << 7

REPLY_FLAG_DONE = 1
REPLY_TYPE_NONE, REPLY_TYPE_OFFSET_DATA, REPLY_TYPE_OFFSET_HOLE = 0, 1, 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR, REPLY_TYPE_ERROR_OFFSET = 2**15 + 1, 2**15 + 2

EPERM, EINVAL, ENOSPC = 1, 22, 28

TIMEOUT = float(os.environ.get("NBD_RAW_TIMEOUT", "10"))


class Fail(Exception):
    pass


def rep_name(t):
    return REP_NAMES.get(t, f"{t:#x}")


def connect(path, timeout=TIMEOUT):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def recv_exact(s, n, what):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout:
            raise Fail(f"{what}: no answer from the server within {s.gettimeout():g} s "
                       f"({len(buf)} of {n} bytes received)")
        except ConnectionResetError:
            raise Fail(f"{what}: the server reset the connection ({len(buf)} of {n} bytes received)")
        if not chunk:
            raise Fail(f"{what}: the server closed the connection ({len(buf)} of {n} bytes received)")
        buf += chunk
    return bytes(buf)


def expect_closed(s, what, timeout=TIMEOUT):
    """The server must close S (EOF or reset) without sending anything more."""
    s.settimeout(timeout)
    got = 0
    deadline = time.monotonic() + timeout
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise Fail(f"{what}: expected the server to drop the connection, it is still "
                       f"open after {timeout:g} s ({got} bytes received)")
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            break
        got += len(chunk)
        if time.monotonic() > deadline:
            raise Fail(f"{what}: the server keeps sending instead of dropping the connection")
    if got:
        raise Fail(f"{what}: expected a plain disconnect, the server sent {got} bytes first")


def send(s, data, what):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError) as e:
        raise Fail(f"{what}: the server had closed the connection ({e})")


# ---- handshake ----------------------------------------------------------

def greeting(s):
    h = recv_exact(s, 18, "greeting")
    magic, ihaveopt, flags = struct.unpack(">QQH", h)
    if magic != NBDMAGIC or ihaveopt != IHAVEOPT:
        raise Fail(f"greeting: bad magic {magic:#x} {ihaveopt:#x}")
    if not flags & FLAG_FIXED_NEWSTYLE:
        raise Fail(f"greeting: handshake flags {flags:#x} lack FIXED_NEWSTYLE")
    return flags


def send_option(s, opt, data=b"", length=None, magic=IHAVEOPT):
    hdr = struct.pack(">QII", magic, opt, len(data) if length is None else length)
    send(s, hdr + data, f"option {opt}")


def option_reply(s, what):
    """One option reply: (option, type, data)."""
    magic, opt, typ, n = struct.unpack(">QIII", recv_exact(s, 20, what))
    if magic != REP_MAGIC:
        raise Fail(f"{what}: option reply magic {magic:#x}, expected {REP_MAGIC:#x}")
    if n > 1 << 20:
        raise Fail(f"{what}: option reply announces {n} bytes of data")
    return opt, typ, recv_exact(s, n, what)


def expect_option_reply(s, opt, want, what):
    got_opt, typ, data = option_reply(s, what)
    if got_opt != opt:
        raise Fail(f"{what}: the reply is for option {got_opt}, expected {opt}")
    if typ != want:
        raise Fail(f"{what}: expected {rep_name(want)}, got {rep_name(typ)} ({data[:80]!r})")
    return data


def go_data(name, infos=()):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) + \
        b"".join(struct.pack(">H", i) for i in infos)


def go(s, name, opt=OPT_GO, what="GO"):
    """A proper NBD_OPT_GO (or INFO); returns (size, transmission flags)."""
    send_option(s, opt, go_data(name))
    size = flags = None
    while True:
        got_opt, typ, data = option_reply(s, what)
        if got_opt != opt:
            raise Fail(f"{what}: the reply is for option {got_opt}, expected {opt}")
        if typ == REP_ACK:
            break
        if typ != REP_INFO:
            raise Fail(f"{what}: expected INFO/ACK, got {rep_name(typ)} ({data[:80]!r})")
        if len(data) >= 2 and struct.unpack(">H", data[:2])[0] == INFO_EXPORT:
            if len(data) != 12:
                raise Fail(f"{what}: NBD_INFO_EXPORT is {len(data)} bytes, expected 12")
            size, flags = struct.unpack(">QH", data[2:])
    if size is None:
        raise Fail(f"{what}: ACK without NBD_INFO_EXPORT")
    return size, flags


def start(path, cflags=FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
    s = connect(path)
    greeting(s)
    send(s, struct.pack(">I", cflags), "client flags")
    return s


def handshake(path, name):
    """Connect and GO; returns (socket, size, transmission flags)."""
    s = start(path)
    size, flags = go(s, name)
    return s, size, flags


# ---- transmission -------------------------------------------------------

def request(s, typ, offset=0, length=0, flags=0, cookie=0, payload=b"", magic=REQUEST_MAGIC):
    hdr = struct.pack(">IHHQQI", magic, flags, typ, cookie, offset, length)
    send(s, hdr + payload, f"request type {typ}")


def reply_header(s, what):
    magic, err, cookie = struct.unpack(">IIQ", recv_exact(s, 16, what))
    if magic == STRUCTURED_REPLY_MAGIC:
        raise Fail(f"{what}: structured reply although none was negotiated")
    if magic != SIMPLE_REPLY_MAGIC:
        raise Fail(f"{what}: reply magic {magic:#x}, expected {SIMPLE_REPLY_MAGIC:#x}")
    return err, cookie


def reply(s, cookie, what, read_len=0):
    """One simple reply for COOKIE: (error, data)."""
    err, got = reply_header(s, what)
    if got != cookie:
        raise Fail(f"{what}: reply for cookie {got:#x}, expected {cookie:#x}")
    data = recv_exact(s, read_len, what) if err == 0 and read_len else b""
    return err, data


def expect_error(s, cookie, want, what):
    err, _ = reply(s, cookie, what)
    if err != want:
        raise Fail(f"{what}: expected error {want}, got {err}")


def read(s, offset, length, cookie, what):
    request(s, CMD_READ, offset, length, cookie=cookie)
    err, data = reply(s, cookie, what, length)
    if err:
        raise Fail(f"{what}: READ {length}@{offset} failed with error {err}")
    return data


def structured_reply(s, cookie, what):
    """The chunks of one structured reply for COOKIE, up to the one flagged
    DONE: [(type, payload)], each checked for its magic, cookie and length."""
    chunks = []
    while True:
        magic, flags, typ, got, n = struct.unpack(">IHHQI", recv_exact(s, 20, what))
        if magic != STRUCTURED_REPLY_MAGIC:
            raise Fail(f"{what}: reply magic {magic:#x}, expected a structured reply")
        if got != cookie:
            raise Fail(f"{what}: chunk for cookie {got:#x}, expected {cookie:#x}")
        if n > (64 << 20):
            raise Fail(f"{what}: chunk announces {n} bytes")
        chunks.append((typ, recv_exact(s, n, what)))
        if typ == REPLY_TYPE_NONE and n:
            raise Fail(f"{what}: NONE chunk with {n} bytes of payload")
        if flags & REPLY_FLAG_DONE:
            return chunks
        if typ == REPLY_TYPE_NONE:
            raise Fail(f"{what}: NONE chunk without the DONE flag")


def structured_error(chunks):
    """The error of a structured reply's ERROR chunk, 0 if there is none."""
    for typ, data in chunks:
        if typ & 0x8000:
            err, n = struct.unpack(">IH", data[:6])
            if err == 0 or 6 + n > len(data):
                raise Fail(f"malformed error chunk {data[:40]!r}")
            return err
    return 0


def meta_context_data(name, queries, nq=None):
    n = name.encode()
    return (struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries) if nq is None else nq) +
            b"".join(struct.pack(">I", len(q)) + q for q in queries))


def meta_contexts(s, opt, data, what):
    """Send a LIST/SET_META_CONTEXT; the (id, name) pairs replied, up to ACK."""
    send_option(s, opt, data)
    out = []
    while True:
        got_opt, typ, rep = option_reply(s, what)
        if got_opt != opt:
            raise Fail(f"{what}: the reply is for option {got_opt}, expected {opt}")
        if typ == REP_ACK:
            return out
        if typ != REP_META_CONTEXT or len(rep) < 5:
            raise Fail(f"{what}: expected META_CONTEXT/ACK, got {rep_name(typ)} ({rep[:80]!r})")
        out.append((struct.unpack(">I", rep[:4])[0], rep[4:].decode()))


def disconnect(s):
    try:
        request(s, CMD_DISC, cookie=0xD15C)
    except Fail:
        pass
    s.close()


# ---- scenarios (CLI) ----------------------------------------------------

def sc_bad_magic(sock, name):
    """A request with a bad magic: the server drops this connection."""
    s, _, _ = handshake(sock, name)
    read(s, 0, 512, 1, "READ before the bad magic")
    request(s, CMD_READ, 0, 512, cookie=2, magic=0x12345678)
    expect_closed(s, "request with magic 0x12345678")


def sc_unknown_cmd(sock, name):
    """Unknown command types get EINVAL; the connection stays usable."""
    s, _, _ = handshake(sock, name)
    for i, typ in enumerate((99, 8, 0x7FFF, 0xFFFF)):
        request(s, typ, 0, 0, cookie=0x1000 + i)
        expect_error(s, 0x1000 + i, EINVAL, f"unknown command type {typ}")
    read(s, 0, 4096, 0x2000, "READ after the unknown commands")
    request(s, CMD_FLUSH, cookie=0x2001)
    expect_error(s, 0x2001, 0, "FLUSH after the unknown commands")
    disconnect(s)


def sc_unknown_cmd_huge(sock, name):
    """An unknown command announcing 4 GiB - 1 has no payload: the server must
    answer EINVAL at once, not wait for (or swallow) 4 GiB; a READ sent right
    behind it, in the same packet, must be answered normally."""
    s, _, _ = handshake(sock, name)
    for typ in (99, 0xFFFF):
        hdr1 = struct.pack(">IHHQQI", REQUEST_MAGIC, 0, typ, 0xBAD, 0, 0xFFFFFFFF)
        hdr2 = struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, 0x600D, 0, 4096)
        send(s, hdr1 + hdr2, "unknown command + READ")
        want = {0xBAD: "unknown", 0x600D: "read"}
        while want:
            err, cookie = reply_header(s, f"type {typ} length 0xffffffff, then READ")
            kind = want.pop(cookie, None)
            if kind is None:
                raise Fail(f"type {typ} length 0xffffffff: reply for unexpected cookie {cookie:#x}")
            if kind == "unknown" and err != EINVAL:
                raise Fail(f"type {typ} length 0xffffffff: expected error {EINVAL}, got {err}")
            if kind == "read":
                if err:
                    raise Fail(f"READ behind type {typ} length 0xffffffff failed with error {err}")
                recv_exact(s, 4096, "READ data")
    read(s, 4096, 512, 0x601D, "READ after the huge unknown commands")
    disconnect(s)


def sc_vanish_write(sock, name, offset, sent):
    """A WRITE of 4096 bytes of which only SENT arrive; then the client half-
    closes.  The server must not acknowledge it, and must hang up."""
    offset, sent = int(offset), int(sent)
    s, _, _ = handshake(sock, name)
    request(s, CMD_WRITE, offset, 4096, cookie=0x7777, payload=b"\xa5" * sent)
    s.shutdown(socket.SHUT_WR)
    try:
        err, cookie = reply_header(s, "truncated WRITE")
    except Fail:
        s.close()
        return  # closed without a reply: right
    raise Fail(f"truncated WRITE ({sent} of 4096 bytes): the server replied "
               f"(error {err}, cookie {cookie:#x}) instead of dropping the connection")


def sc_hangup_big_writes(sock, name):
    """Six 1 MiB WRITEs at offset 0, the start of a seventh, then hang up
    without reading a reply (the server hands big WRITEs between threads)."""
    s, _, _ = handshake(sock, name)
    mib = 1 << 20
    for i in range(6):
        request(s, CMD_WRITE, i * mib, mib, cookie=i, payload=b"\xa5" * mib)
    request(s, CMD_WRITE, 0, mib, cookie=9, payload=b"\xa5" * 4096)
    s.close()


def sc_bad_cflags(sock, name, value):
    """Unknown client flags: the server must drop the connection."""
    value = int(value, 0)
    s = start(sock, value)
    # A client that would not notice: it goes on with GO.
    try:
        send_option(s, OPT_GO, go_data(name))
    except Fail:
        return
    expect_closed(s, f"client flags {value:#x}")


def sc_huge_option(sock, name, length):
    """An option announcing LENGTH bytes (far more than any option needs):
    the server must hang up without waiting for them."""
    length = int(length, 0)
    s = start(sock)
    send_option(s, OPT_GO, b"\0" * 4096, length=length)
    expect_closed(s, f"option announcing {length} bytes (4096 sent)")


def sc_big_option(sock, name):
    """A 1 MiB option (above the 64 KiB the server parses, below its hang-up
    limit) is skipped with ERR_TOO_BIG and the session goes on."""
    s = start(sock)
    send_option(s, 1234, b"\0" * (1 << 20))
    expect_option_reply(s, 1234, REP_ERR_TOO_BIG, "1 MiB option")
    go(s, name, what="GO after the 1 MiB option")
    read(s, 0, 512, 1, "READ after the 1 MiB option")
    disconnect(s)


def sc_bad_option_magic(sock, name):
    s = start(sock)
    send_option(s, OPT_GO, go_data(name), magic=0x1122334455667788)
    expect_closed(s, "option with magic 0x1122334455667788")


def sc_vanish_option(sock, name):
    """A client that announces 100 bytes of option data, sends 10 and goes
    away: nothing to check here but that the server survives it."""
    s = start(sock)
    send_option(s, OPT_GO, b"\0" * 10, length=100)
    s.close()


def sc_go_invalid(sock, name):
    """Malformed GO/INFO option data: ERR_INVALID each time, then a proper GO
    still works on the same connection."""
    s = start(sock)
    n = name.encode()
    cases = [
        ("GO name length 1000, 3 bytes of name", OPT_GO,
         struct.pack(">I", 1000) + b"abc" + struct.pack(">H", 0)),
        ("GO name length 0xffffffff", OPT_GO, struct.pack(">IH", 0xFFFFFFFF, 0)),
        ("GO name length one past the data", OPT_GO,
         struct.pack(">I", len(n) + 1) + n + struct.pack(">H", 0)),
        ("GO with 3 bytes of data", OPT_GO, b"\0\0\0"),
        ("GO with no data", OPT_GO, b""),
        ("GO asking 5 infos, sending 1", OPT_GO,
         struct.pack(">I", len(n)) + n + struct.pack(">HH", 5, 1)),
        ("GO asking 0 infos, sending 3 bytes more", OPT_GO,
         struct.pack(">I", len(n)) + n + struct.pack(">H", 0) + b"xyz"),
        ("INFO name length 1000", OPT_INFO, struct.pack(">I", 1000) + struct.pack(">H", 0)),
    ]
    for what, opt, data in cases:
        send_option(s, opt, data)
        expect_option_reply(s, opt, REP_ERR_INVALID, what)
    go(s, name, what="proper GO after the malformed ones")
    read(s, 0, 512, 1, "READ after GO")
    disconnect(s)


def sc_go_unknown_export(sock, name):
    s = start(sock)
    send_option(s, OPT_GO, go_data(name + "-no-such-export"))
    expect_option_reply(s, OPT_GO, REP_ERR_UNKNOWN, "GO for an unknown export")
    go(s, name, what="proper GO after the unknown export")
    disconnect(s)


def sc_unknown_option(sock, name):
    """Unknown options get ERR_UNSUP, then the session goes on."""
    s = start(sock)
    for opt, data in ((1234, b"0123456789"), (0, b""), (0xFFFFFFFF, b"x")):
        send_option(s, opt, data)
        expect_option_reply(s, opt, REP_ERR_UNSUP, f"unknown option {opt}")
    go(s, name, what="GO after the unknown options")
    read(s, 0, 512, 1, "READ after GO")
    disconnect(s)


def sc_export_name_wrong(sock, name):
    """EXPORT_NAME cannot be refused with an error: the server hangs up."""
    s = start(sock)
    send_option(s, OPT_EXPORT_NAME, (name + "-no-such-export").encode())
    expect_closed(s, "EXPORT_NAME with a wrong name")


def sc_export_name_ok(sock, name):
    """The right EXPORT_NAME: 10 bytes with NO_ZEROES negotiated, else 134
    (124 of them zeroes); then transmission works."""
    for cflags, n in ((FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 10), (FLAG_FIXED_NEWSTYLE, 134)):
        s = start(sock, cflags)
        send_option(s, OPT_EXPORT_NAME, name.encode())
        rep = recv_exact(s, n, f"EXPORT_NAME reply (client flags {cflags})")
        size, _ = struct.unpack(">QH", rep[:10])
        if size == 0:
            raise Fail("EXPORT_NAME reply: export size 0")
        if rep[10:] != bytes(n - 10):
            raise Fail(f"EXPORT_NAME reply (client flags {cflags}): the padding is not zeroes")
        read(s, 0, 512, 1, f"READ after EXPORT_NAME (client flags {cflags})")
        disconnect(s)


def sc_abort(sock, name):
    """NBD_OPT_ABORT (even with data, which the server should ignore): the
    server MUST reply ACK (older servers just close), then it closes."""
    s = start(sock)
    send_option(s, OPT_ABORT, b"ignored")
    try:
        opt, typ, data = option_reply(s, "ABORT")
    except Fail as e:
        if "closed the connection (0 of 20" in str(e) or "reset" in str(e):
            return
        raise
    if opt != OPT_ABORT or typ != REP_ACK:
        raise Fail(f"ABORT: expected ACK, got {rep_name(typ)} for option {opt}")
    expect_closed(s, "after ABORT's ACK")


def sc_meta_context(sock, name):
    """Metadata contexts out of order and malformed, on one connection:
    LIST/SET_META_CONTEXT before STRUCTURED_REPLY -> ERR_INVALID;
    STRUCTURED_REPLY with data -> ERR_INVALID; malformed query data ->
    ERR_INVALID, a 5000-byte query -> ERR_TOO_BIG, an unknown export ->
    ERR_UNKNOWN; unknown namespaces select nothing; 3000 queries give one
    context; LIST without a query or with "base:" lists base:allocation.
    Then SET base:allocation, GO (SEND_DF now advertised), and BLOCK_STATUS
    and READ work as structured replies."""
    s = start(sock)
    alloc = [b"base:allocation"]
    for opt in (OPT_SET_META_CONTEXT, OPT_LIST_META_CONTEXT):
        send_option(s, opt, meta_context_data(name, alloc))
        expect_option_reply(s, opt, REP_ERR_INVALID, f"option {opt} before STRUCTURED_REPLY")
    send_option(s, OPT_STRUCTURED_REPLY, b"x")
    expect_option_reply(s, OPT_STRUCTURED_REPLY, REP_ERR_INVALID, "STRUCTURED_REPLY with data")
    send_option(s, OPT_STRUCTURED_REPLY)
    expect_option_reply(s, OPT_STRUCTURED_REPLY, REP_ACK, "STRUCTURED_REPLY")
    n = name.encode()
    invalid = [
        ("SET with 7 bytes of data", b"\0" * 7),
        ("SET name length 0xffffffff", struct.pack(">II", 0xFFFFFFFF, 0)),
        ("SET 1000 queries, none sent", meta_context_data(name, [], 1000)),
        ("SET 2 queries, 1 sent", meta_context_data(name, alloc, 2)),
        ("SET query length past the data", meta_context_data(name, []) [:-4] +
         struct.pack(">II", 1, 100) + b"base:"),
        ("SET with trailing data", meta_context_data(name, alloc) + b"xyz"),
    ]
    for what, data in invalid:
        send_option(s, OPT_SET_META_CONTEXT, data)
        expect_option_reply(s, OPT_SET_META_CONTEXT, REP_ERR_INVALID, what)
    send_option(s, OPT_SET_META_CONTEXT, meta_context_data(name, [b"base:" + b"a" * 5000]))
    expect_option_reply(s, OPT_SET_META_CONTEXT, REP_ERR_TOO_BIG, "SET with a 5005-byte query")
    send_option(s, OPT_SET_META_CONTEXT, meta_context_data(name + "-no-such-export", alloc))
    expect_option_reply(s, OPT_SET_META_CONTEXT, REP_ERR_UNKNOWN, "SET for an unknown export")
    got = meta_contexts(s, OPT_SET_META_CONTEXT,
                        meta_context_data(name, [b"x-foo:bar", b"qemu:dirty-bitmap:a", b"base:", b"base:allocationX"]),
                        "SET of unknown contexts")
    if got:
        raise Fail(f"SET of unknown contexts selected {got}")
    got = meta_contexts(s, OPT_SET_META_CONTEXT, meta_context_data(name, alloc * 3000), "SET with 3000 queries")
    if len(got) != 1 or got[0][1] != "base:allocation":
        raise Fail(f"SET with 3000 queries of base:allocation replied {got[:3]}... ({len(got)})")
    for what, q in (("LIST without a query", []), ("LIST base:", [b"base:"])):
        got = meta_contexts(s, OPT_LIST_META_CONTEXT, meta_context_data(name, q), what)
        if [c[1] for c in got] != ["base:allocation"]:
            raise Fail(f"{what} replied {got}")
    got = meta_contexts(s, OPT_SET_META_CONTEXT, meta_context_data("", alloc), "SET base:allocation")
    if len(got) != 1 or got[0] == 0:
        raise Fail(f"SET base:allocation replied {got}")
    ctx = got[0][0]
    size, flags = go(s, name)
    if not flags & TX_FLAG_SEND_DF:
        raise Fail(f"transmission flags {flags:#x} lack SEND_DF although structured replies are on")
    bad = [
        ("BLOCK_STATUS of length 0", 0, 0, 0),
        ("BLOCK_STATUS beyond the end", size - 512, 1024, 0),
        ("BLOCK_STATUS at 2^64 - 512", 2**64 - 512, 512, 0),
        ("BLOCK_STATUS with the DF flag", 0, 4096, CMD_FLAG_DF),
    ]
    for i, (what, off, n, fl) in enumerate(bad):
        request(s, CMD_BLOCK_STATUS, off, n, flags=fl, cookie=0x300 + i)
        err = structured_error(structured_reply(s, 0x300 + i, what))
        if err != EINVAL:
            raise Fail(f"{what}: expected error {EINVAL}, got {err}")
    for fl in (0, CMD_FLAG_REQ_ONE):
        request(s, CMD_BLOCK_STATUS, 100, size - 100, flags=fl, cookie=0x400)
        chunks = structured_reply(s, 0x400, f"BLOCK_STATUS flags {fl}")
        if [c[0] for c in chunks] != [REPLY_TYPE_BLOCK_STATUS]:
            raise Fail(f"BLOCK_STATUS flags {fl}: chunks {chunks}")
        data = chunks[0][1]
        ext = struct.unpack(f">I{(len(data) - 4) // 4}I", data)
        lens = ext[1::2]
        if ext[0] != ctx or (len(data) - 4) % 8 or not lens or 0 in lens or sum(lens) > size - 100 or \
                (fl and len(lens) != 1):
            raise Fail(f"BLOCK_STATUS flags {fl}: bad reply {ext[:9]}")
    request(s, CMD_READ, 1000, 70000, flags=CMD_FLAG_DF, cookie=0x500)
    chunks = structured_reply(s, 0x500, "READ with DF")
    if [c[0] for c in chunks] != [REPLY_TYPE_OFFSET_DATA] or len(chunks[0][1]) != 8 + 70000 or \
            struct.unpack(">Q", chunks[0][1][:8])[0] != 1000:
        raise Fail(f"READ with DF: not one OFFSET_DATA chunk of its range: {[(t, len(d)) for t, d in chunks]}")
    request(s, CMD_READ, size - 10, 20, cookie=0x501)
    if structured_error(structured_reply(s, 0x501, "READ beyond the end")) != EINVAL:
        raise Fail("READ beyond the end: no EINVAL error chunk")
    disconnect(s)
    # Structured replies but no context selected (a SET of nothing after a
    # good one clears it), and no structured replies at all: EINVAL.
    s = start(sock)
    send_option(s, OPT_STRUCTURED_REPLY)
    expect_option_reply(s, OPT_STRUCTURED_REPLY, REP_ACK, "STRUCTURED_REPLY")
    meta_contexts(s, OPT_SET_META_CONTEXT, meta_context_data(name, alloc), "SET base:allocation")
    meta_contexts(s, OPT_SET_META_CONTEXT, meta_context_data(name, []), "SET of nothing")
    go(s, name)
    request(s, CMD_BLOCK_STATUS, 0, 4096, cookie=0x600)
    if structured_error(structured_reply(s, 0x600, "BLOCK_STATUS with no context")) != EINVAL:
        raise Fail("BLOCK_STATUS with no context selected: no EINVAL")
    disconnect(s)
    s, size, flags = handshake(sock, name)
    if flags & TX_FLAG_SEND_DF:
        raise Fail(f"transmission flags {flags:#x} have SEND_DF without structured replies")
    request(s, CMD_BLOCK_STATUS, 0, 4096, cookie=0x700)
    expect_error(s, 0x700, EINVAL, "BLOCK_STATUS without structured replies")
    request(s, CMD_READ, 0, 4096, flags=CMD_FLAG_DF, cookie=0x701)
    expect_error(s, 0x701, EINVAL, "READ with DF without structured replies")
    read(s, 0, 512, 0x702, "READ after them")
    disconnect(s)


def sc_list(sock, name):
    """NBD_OPT_LIST with data -> ERR_INVALID; without -> SERVER NAME, ACK."""
    s = start(sock)
    send_option(s, OPT_LIST, b"junk")
    expect_option_reply(s, OPT_LIST, REP_ERR_INVALID, "LIST with data")
    send_option(s, OPT_LIST)
    data = expect_option_reply(s, OPT_LIST, REP_SERVER, "LIST")
    if len(data) < 4 or data[4:4 + struct.unpack(">I", data[:4])[0]] != name.encode():
        raise Fail(f"LIST: NBD_REP_SERVER names {data[4:]!r}, expected {name!r}")
    expect_option_reply(s, OPT_LIST, REP_ACK, "LIST end")
    go(s, name, what="GO after LIST")
    disconnect(s)


def wait_for(stop_file, what):
    deadline = time.monotonic() + 300
    while not os.path.exists(stop_file):
        if time.monotonic() > deadline:
            raise Fail(f"{what}: nobody asked us to stop within 300 s")
        time.sleep(0.05)


def sc_idle(sock, name, n_ready, n_stalled, n_midwrite, ready_file, stop_file):
    """Open N_READY connections that complete GO and then idle, N_STALLED that
    stop after the greeting, and N_MIDWRITE that send a WRITE header for 4096
    bytes at offset 0 and only 100 bytes of it; touch READY_FILE; wait (at
    most 300 s) for STOP_FILE; then check every idle connection still serves
    a READ, and close all (the cut WRITEs must never be applied)."""
    n_ready, n_stalled, n_midwrite = int(n_ready), int(n_stalled), int(n_midwrite)
    ready = [handshake(sock, name)[0] for _ in range(n_ready)]
    stalled = []
    for _ in range(n_stalled):
        s = connect(sock)
        greeting(s)
        stalled.append(s)
    for i in range(n_midwrite):
        s = handshake(sock, name)[0]
        request(s, CMD_WRITE, 0, 4096, cookie=0x3000 + i, payload=b"\xa5" * 100)
        stalled.append(s)
    open(ready_file, "w").close()
    wait_for(stop_file, "idle")
    for i, s in enumerate(ready):
        read(s, 0, 512, i + 1, f"READ on idle connection {i}")
        disconnect(s)
    for s in stalled:
        s.close()


def sc_no_read(sock, name, n, size, ready_file, stop_file):
    """Pipeline N READs of SIZE bytes and never read a reply: a slow (or
    malicious) reader.  Touch READY_FILE, wait for STOP_FILE, hang up."""
    n, size = int(n), int(size)
    s, export_size, _ = handshake(sock, name)
    for i in range(n):
        request(s, CMD_READ, (i * size) % max(export_size - size, 1), size, cookie=0x4000 + i)
    open(ready_file, "w").close()
    wait_for(stop_file, "no-read")
    s.close()


def sc_vanish_read(sock, name):
    """Ask for the largest READ and hang up before its reply: the server
    must not die of the failed send (SIGPIPE, EPIPE)."""
    s, size, _ = handshake(sock, name)
    n = min(32 << 20, size)
    for i in range(4):
        request(s, CMD_READ, 0, n, cookie=0x5000 + i)
    s.close()


def sc_tls_required(sock, name):
    """A server that requires TLS answers nothing but STARTTLS and ABORT
    before TLS: GO, INFO, LIST and unknown options get ERR_TLS_REQD (no
    export details), EXPORT_NAME makes it hang up; STARTTLS with data is
    invalid; after a proper STARTTLS ACK, bytes that are not a TLS
    ClientHello end the connection."""
    s = start(sock)
    for what, opt, data in (("GO", OPT_GO, go_data(name)), ("INFO", OPT_INFO, go_data(name)),
                            ("LIST", OPT_LIST, b""), ("unknown option", 1234, b"x")):
        send_option(s, opt, data)
        expect_option_reply(s, opt, REP_ERR_TLS_REQD, what + " before STARTTLS")
    send_option(s, OPT_STARTTLS, b"junk")
    expect_option_reply(s, OPT_STARTTLS, REP_ERR_INVALID, "STARTTLS with data")
    send_option(s, OPT_STARTTLS)
    expect_option_reply(s, OPT_STARTTLS, REP_ACK, "STARTTLS")
    send(s, b"\x16\x03\x01\xff\xff" + b"\0" * 64 + b"GET / HTTP/1.0\r\n\r\n", "garbage ClientHello")
    expect_closed_or_alert(s, "garbage after STARTTLS")
    s = start(sock)
    send_option(s, OPT_EXPORT_NAME, name.encode())
    expect_closed(s, "EXPORT_NAME before STARTTLS")
    s = start(sock)
    send_option(s, OPT_ABORT)
    expect_option_reply(s, OPT_ABORT, REP_ACK, "ABORT before STARTTLS")
    s.close()


def sc_tls_policy(sock, name):
    """A server without TLS refuses STARTTLS with ERR_POLICY and goes on."""
    s = start(sock)
    send_option(s, OPT_STARTTLS)
    expect_option_reply(s, OPT_STARTTLS, REP_ERR_POLICY, "STARTTLS without TLS configured")
    go(s, name, what="GO after the refused STARTTLS")
    disconnect(s)


def expect_closed_or_alert(s, what):
    """After a failed TLS handshake the server may send a TLS alert record
    (type 21) before closing; anything else, or staying open, is a failure."""
    s.settimeout(TIMEOUT)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        raise Fail(f"{what}: the server kept the connection open")
    if data and data[0] != 21:
        raise Fail(f"{what}: the server sent {data[:16]!r} instead of closing")


def sc_trickle_write(sock, name, pid, seconds, gap_us):
    """Start a 32 MiB WRITE after a 1 MiB one (the server then streams),
    then send its payload 64 bytes every GAP_US microseconds for SECONDS;
    print the daemon's CPU time over that time as a share of it."""
    def cpu_s():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    s, size, _ = handshake(sock, name)
    mib = 1 << 20
    request(s, CMD_WRITE, 0, mib, cookie=1, payload=b"\x5a" * mib)
    reply(s, 1, "the first WRITE")
    request(s, CMD_WRITE, 0, 32 * mib, cookie=2)
    c0, t0 = cpu_s(), time.monotonic()
    while time.monotonic() - t0 < float(seconds):
        send(s, b"x" * 64, "trickled payload")
        time.sleep(float(gap_us) / 1e6)
    share = (cpu_s() - c0) / (time.monotonic() - t0)
    s.close()
    print(f"{share:.3f}")


def sc_trickle_rounds(sock, name, pid, rounds, seconds, gap_us):
    """The daemon's CPU time per trickled chunk, streaming or not.

    2 * ROUNDS + 1 rounds, each on a new connection (whose polling credit
    starts at zero) and for SECONDS: start a WRITE and send its payload 64
    bytes at a time, each send at least GAP_US microseconds after the one
    before; then hang up (the cut WRITE is never applied).  The rounds
    alternate, first and last, a "control" WRITE of 127 KiB (below the 128
    KiB from which the server streams, so it never polls for it) and, in
    between, a 32 MiB one (streaming: the
    reader may poll for as long as the bytes received pay for, 1 ns per
    byte, at most 200 us at a time).  Both cost the daemon a wake-up per
    chunk; a server that earns the full 200 us for any recv also polls
    200 us per chunk (the gap is longer than that, so each poll runs out).

    Before the rounds, a complete 1 MiB WRITE of 0x5a at offset 0.
    The daemon's CPU time is the sum of its threads' run time
    (/proc/PID/task/*/schedstat, nanoseconds) over the round.  Per-round
    lines go to stderr; stdout gets one line of name=value pairs: the
    medians (over the rounds) of the CPU time per chunk, streaming and
    control, in microseconds; extra_us, the median over the streaming
    rounds of what a chunk cost more than in the control rounds just
    before and after (the mean of the two: the machine's load drifts, so
    each streaming round is compared with its neighbours); share, the
    daemon's CPU time while streaming as a share of one CPU; the gaps
    achieved (mean and smallest, us) and the chunks sent in each kind."""
    pid, rounds, seconds, gap = int(pid), int(rounds), float(seconds), float(gap_us) / 1e6
    chunk = b"x" * 64

    def run_ns():
        # schedstat's first field is the task's CPU time in ns (stat's
        # utime/stime are in clock ticks: too coarse for a few ms per round)
        got = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    got[tid] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        if not got:
            raise Fail(f"no schedstat for the daemon (pid {pid}): cannot measure its CPU time")
        return got

    # A complete 1 MiB WRITE of 0x5a at offset 0 first (the test checks
    # that it, and nothing of the cut WRITEs, is there afterwards).
    s, _, _ = handshake(sock, name)
    request(s, CMD_WRITE, 0, 1 << 20, cookie=1, payload=b"\x5a" * (1 << 20))
    err, _ = reply(s, 1, "the complete 1 MiB WRITE")
    if err:
        raise Fail(f"the complete 1 MiB WRITE failed with error {err}")
    disconnect(s)
    time.sleep(0.05)

    per = {"stream": [], "control": []}
    sent = {"stream": 0, "control": 0}
    stream_cpu = stream_time = 0.0
    gap_sum, gap_count = 0.0, 0
    min_gap = float("inf")
    for r in range(2 * rounds + 1):
        kind = "control" if r % 2 == 0 else "stream"
        length = (32 << 20) if kind == "stream" else (127 << 10)
        s, _, _ = handshake(sock, name)
        request(s, CMD_WRITE, 0, length, cookie=0x7000 + r)
        time.sleep(0.02)  # the reader is in the payload (or asleep on it) now
        k0 = run_ns()
        t0 = last = time.monotonic()
        n = 0
        while True:
            now = time.monotonic()
            if now - t0 >= seconds or (kind == "control" and (n + 1) * 64 >= length):
                break
            if n and now < last + gap:
                time.sleep(last + gap - now)  # a sleep may last longer, not shorter
                continue
            if n:
                min_gap = min(min_gap, now - last)
            send(s, chunk, f"trickled payload ({kind} round {r // 2 + 1})")
            last = now
            n += 1
        elapsed = time.monotonic() - t0
        k1 = run_ns()
        s.close()
        if n < 2:
            raise Fail(f"{kind} round {r // 2 + 1}: only {n} chunks sent in {elapsed:.3f} s")
        cpu = sum(k1[t] - k0[t] for t in k1 if t in k0) / 1e9
        per[kind].append(cpu / n * 1e6)
        sent[kind] += n
        gap_sum += last - t0
        gap_count += n - 1
        if kind == "stream":
            stream_cpu += cpu
            stream_time += elapsed
        print(f"# {kind:7} round {r // 2 + 1}: {n} chunks, mean gap {(last - t0) / (n - 1) * 1e6:.0f} us, "
              f"daemon CPU {cpu * 1e3:.1f} ms = {cpu / n * 1e6:.1f} us per chunk", file=sys.stderr)
        time.sleep(0.05)  # the connection's threads wind down

    def median(xs):
        xs = sorted(xs)
        return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2
    st, co = median(per["stream"]), median(per["control"])
    extra = median([x - (per["control"][i] + per["control"][i + 1]) / 2
                    for i, x in enumerate(per["stream"])])
    print(f"stream_us={st:.1f} control_us={co:.1f} extra_us={extra:.1f} "
          f"share={stream_cpu / stream_time:.3f} gap_us={gap_sum / gap_count * 1e6:.0f} "
          f"min_gap_us={min_gap * 1e6:.0f} stream_chunks={sent['stream']} control_chunks={sent['control']}")


def any_reply(s, what):
    """The next reply to a WRITE, simple or (an error) structured, with
    structured replies negotiated or not: (cookie, error)."""
    magic = struct.unpack(">I", recv_exact(s, 4, what))[0]
    if magic == SIMPLE_REPLY_MAGIC:
        err, cookie = struct.unpack(">IQ", recv_exact(s, 12, what))
        return cookie, err
    if magic != STRUCTURED_REPLY_MAGIC:
        raise Fail(f"{what}: reply magic {magic:#x}")
    flags, typ, cookie, n = struct.unpack(">HHQI", recv_exact(s, 16, what))
    data = recv_exact(s, n, what)
    if not flags & REPLY_FLAG_DONE or not typ & 0x8000:
        raise Fail(f"{what}: a WRITE's structured reply is chunk type {typ} with flags {flags}")
    return cookie, structured_error([(typ, data)])


def sc_write_bursts(sock, name, image, structured, seed):
    """Bursts of 40 small WRITEs (0 to 16 KiB, some unaligned, some FUA),
    each burst in one send(), so that many arrive whole together and the
    server runs them in batches, one reply write per batch.  A few in each
    burst are refused (past the end: ENOSPC; an unknown flag: EINVAL), in
    the middle of the others.  The writes of a burst never overlap, and
    the next burst goes out when every reply is in.  Every cookie must be
    answered exactly once with its error, simple replies for the good
    ones, structured ERROR chunks for the refused ones once STRUCTURED_REPLY
    was negotiated; afterwards the whole device must read back as IMAGE
    (the expected device, as it was before) with the good writes applied
    and nothing of the refused ones; IMAGE is updated to match."""
    rng = random.Random(int(seed))
    exp = bytearray(open(image, "rb").read())
    size = len(exp)
    s = start(sock)
    if structured == "1":
        send_option(s, OPT_STRUCTURED_REPLY)
        expect_option_reply(s, OPT_STRUCTURED_REPLY, REP_ACK, "STRUCTURED_REPLY")
    go(s, name)
    slot = 64 << 10
    cookie = 0xB0000
    for burst in range(12):
        want, blob, apply = {}, [], []
        slots = rng.sample(range(size // slot), 40)
        for i, sl in enumerate(slots):
            cookie += 1
            length = rng.choice([0, 512, 1000, 4096, 4096, 4096, 8192, 12288, 16384])
            offset = sl * slot + rng.randrange(0, slot - length + 1)
            flags = CMD_FLAG_FUA if rng.random() < 0.1 else 0
            err = 0
            if i % 13 == 5:
                offset, length, err = size - 512, 4096, ENOSPC
            elif i % 13 == 9:
                flags, err = 1 << 9, EINVAL
            payload = rng.randbytes(length)
            blob.append(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, CMD_WRITE, cookie, offset, length) + payload)
            want[cookie] = err
            if not err:
                apply.append((offset, payload))
        send(s, b"".join(blob), f"burst {burst + 1} of 40 WRITEs")
        for _ in range(len(want)):
            got, err = any_reply(s, f"burst {burst + 1}")
            if got not in want:
                raise Fail(f"burst {burst + 1}: a reply for cookie {got:#x}, which is not in flight "
                           "(unknown, or answered twice)")
            if err != want.pop(got):
                raise Fail(f"burst {burst + 1}: cookie {got:#x} answered error {err}")
        for offset, payload in apply:
            exp[offset:offset + len(payload)] = payload
    for off in range(0, size, 1 << 20):
        n = min(1 << 20, size - off)
        if structured == "1":
            request(s, CMD_READ, off, n, cookie=0xEAD, flags=CMD_FLAG_DF)
            chunks = structured_reply(s, 0xEAD, "read back")
            if structured_error(chunks) or len(chunks) != 1:
                raise Fail(f"read back at {off}: {len(chunks)} chunks, error {structured_error(chunks)}")
            got = chunks[0][1][8:]
        else:
            got = read(s, off, n, 0xEAD, "read back")
        if got != exp[off:off + n]:
            i = next(i for i in range(n) if got[i] != exp[off + i])
            raise Fail(f"the device differs from what was written at byte {off + i}")
    disconnect(s)
    open(image, "wb").write(exp)


SCENARIOS = {
    "trickle-rounds": sc_trickle_rounds,
    "trickle-write": sc_trickle_write,
    "tls-required": sc_tls_required,
    "tls-policy": sc_tls_policy,
    "bad-magic": sc_bad_magic,
    "unknown-cmd": sc_unknown_cmd,
    "unknown-cmd-huge": sc_unknown_cmd_huge,
    "vanish-write": sc_vanish_write,
    "hangup-big-writes": sc_hangup_big_writes,
    "bad-cflags": sc_bad_cflags,
    "huge-option": sc_huge_option,
    "big-option": sc_big_option,
    "bad-option-magic": sc_bad_option_magic,
    "vanish-option": sc_vanish_option,
    "go-invalid": sc_go_invalid,
    "go-unknown-export": sc_go_unknown_export,
    "unknown-option": sc_unknown_option,
    "export-name-wrong": sc_export_name_wrong,
    "export-name-ok": sc_export_name_ok,
    "abort": sc_abort,
    "list": sc_list,
    "meta-context": sc_meta_context,
    "idle": sc_idle,
    "no-read": sc_no_read,
    "vanish-read": sc_vanish_read,
    "write-bursts": sc_write_bursts,
}


def main(argv):
    if len(argv) < 4 or argv[1] not in SCENARIOS:
        print(f"usage: {argv[0]} {{{'|'.join(SCENARIOS)}}} SOCKET EXPORT [ARGS...]", file=sys.stderr)
        return 2
    try:
        SCENARIOS[argv[1]](*argv[2:])
    except Fail as e:
        print(f"FAIL: {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
