# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared pieces of the libnbd-based test clients (python3-libnbd; run them
with /usr/bin/python3).  nbd_raw_client.py is the raw-socket side, for
things a real client never says; this module is for real clients.  Not a
test itself.

  fail(msg)               print "FAIL: msg" on stderr and exit 1
  connect(uri, strict=None)
                          an nbd.NBD connected to URI (strict: libnbd's
                          strict mode, e.g. 0 to send what it would refuse)
  errno_of(err)           the errno of a completion callback's error
  errname(e)              the errno of an nbd.Error, as a name ("EPERM")

  report_stats(label, stats, path=None)
                          "# LABEL: key=value ..." (sorted) on stderr, and
                          STATS as JSON in PATH when one is given

  Checks(exp)             failures noted and counted, the test going on
                          (like the shell tests' `problem`); EXP is the
                          data the export must hold (bytes or bytearray,
                          kept by reference, so the caller may update it):
    .fail(msg)            note a failure ("FAIL: msg" on stderr)
    .expect_err(case, want, fn)
                          FN() must fail with a server reply whose errno is
                          WANT (a name or a tuple of acceptable names)
    .expect_ok(case, fn)  FN() must succeed; its result (None on failure)
    .expect_data(case, h, off, n)
                          a read on H succeeds and returns EXP[off:off+n]
    .exit()               exit 1 if any failure was noted, else 0

  AioConn(uri)            a connection driven by an aio poll loop: .h, .fd
    .dead()               the handle is dead or closed
  poll_conns(conns, timeout_ms=1000)
                          one round of the aio poll loop: poll every conn
                          that wants I/O, let libnbd read/write.  Returns
                          (idle, errors): the conns that wanted no I/O, and
                          (conn, nbd.Error) pairs for notifications that
                          raised (the caller decides what they mean).
"""
import errno
import json
import select
import sys

import nbd


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def connect(uri, strict=None):
    h = nbd.NBD()
    if strict is not None:
        h.set_strict_mode(strict)
    h.connect_uri(uri)
    return h


def errno_of(err):
    """Completion callbacks get an nbd error object (.value) or an int."""
    return err.value if hasattr(err, "value") else err


def errname(e):
    """libnbd gives the errno by name; older bindings by number."""
    return e.errno if isinstance(e.errno, str) else errno.errorcode.get(e.errno, str(e.errno))


def report_stats(label, stats, path=None):
    print("# " + (label + ": " if label else "") + " ".join("%s=%s" % kv for kv in sorted(stats.items())),
          file=sys.stderr)
    if path:
        with open(path, "w") as f:
            json.dump(stats, f)


class Checks:
    def __init__(self, exp=b""):
        self.exp = exp
        self.fails = []

    def fail(self, msg):
        self.fails.append(msg)
        print("FAIL: " + msg, file=sys.stderr, flush=True)

    def expect_err(self, case, want, fn):
        want = (want,) if isinstance(want, str) else tuple(want)
        names = "/".join(want)
        try:
            fn()
        except nbd.Error as e:
            got = errname(e)
            if "command failed" not in (e.string or ""):
                self.fail(f"{case}: expected the server to answer {names}, but the request "
                          f"failed before/without a server reply: {got} ({e.string})")
            elif got not in want:
                self.fail(f"{case}: expected {names}, got {got} ({e.string})")
            return
        self.fail(f"{case}: expected {names}, the server reported success")

    def expect_ok(self, case, fn):
        try:
            return fn()
        except nbd.Error as e:
            self.fail(f"{case}: expected success, got {errname(e)} ({e.string})")
            return None

    def expect_data(self, case, h, off, n):
        got = self.expect_ok(f"{case}: read of {n} bytes at {off}", lambda: h.pread(n, off))
        if got is not None and bytes(got) != bytes(self.exp[off:off + n]):
            self.fail(f"{case}: read of {n} bytes at {off} returned other data than the volume holds")

    def exit(self):
        sys.exit(1 if self.fails else 0)


class AioConn:
    def __init__(self, uri):
        self.h = connect(uri)
        self.fd = self.h.aio_get_fd()

    def dead(self):
        return self.h.aio_is_dead() or self.h.aio_is_closed()


def poll_conns(conns, timeout_ms=1000):
    p = select.poll()
    byfd = {}
    idle = []
    for c in conns:
        d = c.h.aio_get_direction()
        ev = (select.POLLIN if d & nbd.AIO_DIRECTION_READ else 0) | \
             (select.POLLOUT if d & nbd.AIO_DIRECTION_WRITE else 0)
        if ev:
            p.register(c.fd, ev)
            byfd[c.fd] = c
        else:
            idle.append(c)
    errors = []
    for fd, ev in p.poll(timeout_ms):
        c = byfd[fd]
        try:
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                c.h.aio_notify_read()
            if ev & select.POLLOUT and not c.h.aio_is_dead():
                c.h.aio_notify_write()
        except nbd.Error as e:
            errors.append((c, e))
    return idle, errors
