#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Order of backing writes, backing flushes and NBD replies (durability).

Used by tests/shell/durability-order.sh (not a test itself).  Needs libnbd's
Python bindings (Debian python3-libnbd): run it with /usr/bin/python3.

The backing of the volume is a file that nbdfuse exposes from nbdkit, whose
log filter writes one line per request entering and leaving the plugin
(each line written out at once, in the order they happen).  The log is the
clock: this program notes the log's length just before it sends a request
(p0) and again the moment the reply is processed (p1), in the reply's
completion callback.  A log line that ends at or before p1 was written
before the reply was seen; one that starts at or after p0 was written after
the request was sent.  Causality, not timestamps or sleeps, decides every
verdict, so a correct server passes every time.  A server that replies
early is caught because nbdkit's delay filter holds each backing write for
a long time (the shell script sets it), so the reply is seen long before
the log line of the backing write exists.  FLUSH and FUA bugs are caught
without any timing at all: the phases that test them send no other request
that could make the backing flush.

Rules, per request (D = the volume's data offset on the backing):
  (a) WRITE (plain or FUA) of [off, off+len): backing writes that entered
      after p0 and left (successfully) before p1 cover [D+off, D+off+len).
  (b) WRITE with FUA: moreover a backing flush entered after the last of
      those backing writes left, and itself left (successfully) before p1.
  (c) FLUSH: a backing flush entered after p0 and left before p1.

  sanity FILE LOG --offset N --min-delay-ms MS
        A control write straight to the nbdfuse FILE: rewrite 4096 bytes at
        N and fdatasync().  Proves the write reaches nbdkit before pwrite()
        returns (no write-back cache in the kernel or nbdfuse), that the
        log is written line by line as things happen, that it took at least
        MS ms (the delay filter is in place) and that fdatasync() is a
        backing flush.
  run URI LOG --data-offset D --backing-size B --seed S [--stats FILE]
        Three phases over 2 connections, 8 requests in flight:
          plain: WRITEs without FUA.  No backing flush may happen at all (or
                 FLUSH/FUA bugs could hide behind flushes nobody asked
                 for), and rule (b) applied to these writes must fail for
                 every one of them: a live proof that (b) bites.
          fua:   WRITEs, every other one with FUA, no FLUSH.
          flush: WRITEs without FUA, then FLUSH (sometimes also while
                 writes are in flight), no FUA.
        Then: rules (a), (b), (c); at least --min-writes / --min-fua /
        --min-flushes requests checked; the checker proves it can fail (for
        some requests that passed, the log is doctored: the backing write
        moved after the reply, the flush moved before the backing write,
        the flush moved before the FLUSH was sent; each must be reported);
        finally the whole export is read back and must equal what was
        written (the volume was wiped at format, so it starts as zeros).
Anything wrong is one "FAIL:" line per kind with examples, and exit 1.
"""

import argparse
import os
import random
import re
import sys
import time

import nbd

from nbd_client import AioConn, errno_of, fail, poll_conns, report_stats

SLOT = 4096   # in-flight writes never share a 4096-byte slot (RMW of 4k sectors)

# 2026-12-02 05:11:29.820086 connection=1 Write id=1 offset=0x1000 count=0x2000 fua=0 ...
# 2026-12-02 05:11:29.920543 connection=1 ...Write id=1 return=0
LINE = re.compile(rb"^\S+ \S+ connection=(\d+) (\.\.\.)?(Write|Flush) id=(\d+)(.*)$")
FIELD = re.compile(rb"(\w+)=(\S+)")


def parse_log(data):
    """Write and Flush events of an nbdkit log-filter file, each with the
    byte positions of its lines: enter=(start, end), leave=(start, end) or
    None if it has not left (yet).  Only complete lines count."""
    events = {}
    out = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        start, end = pos, nl + 1
        pos = end
        m = LINE.match(line)
        if not m:
            continue
        conn, leaving, kind, rid, rest = m.groups()
        key = (int(conn), int(rid))
        fields = {k.decode(): v.decode() for k, v in FIELD.findall(rest)}
        if not leaving:
            e = {"kind": kind.decode(), "conn": key[0], "id": key[1], "enter": (start, end),
                 "leave": None, "ret": None}
            if e["kind"] == "Write":
                e["off"] = int(fields["offset"], 16)
                e["count"] = int(fields["count"], 16)
            events[key] = e
            out.append(e)
        elif key in events:
            e = events.pop(key)
            e["leave"] = (start, end)
            e["ret"] = int(fields.get("return", "-1"))
    return out


def read_log(path):
    with open(path, "rb") as f:
        return f.read()


# ---- the rules ---------------------------------------------------------------

def backing_writes(r, events, data_offset):
    """Backing writes that entered after R was sent, left successfully
    before its reply was seen, and touch R's bytes on the backing; and
    whether they cover them all."""
    lo = data_offset + r["off"]
    hi = lo + r["len"]
    ws = [e for e in events if e["kind"] == "Write" and e["enter"][0] >= r["p0"]
          and e["leave"] is not None and e["leave"][1] <= r["p1"] and e["ret"] == 0
          and e["off"] < hi and e["off"] + e["count"] > lo]
    reach = lo
    for a, b in sorted((max(e["off"], lo), min(e["off"] + e["count"], hi)) for e in ws):
        if a > reach:
            break
        reach = max(reach, b)
    return ws, reach >= hi


def flushes_between(events, after, before):
    return [e for e in events if e["kind"] == "Flush" and e["enter"][0] >= after
            and e["leave"] is not None and e["leave"][1] <= before and e["ret"] == 0]


def check_a(r, events, data_offset):
    ws, covered = backing_writes(r, events, data_offset)
    if covered:
        return None
    # Say what the log shows instead (the backing write later, or never).
    lo = data_offset + r["off"]
    late = [e for e in events if e["kind"] == "Write" and e["enter"][0] >= r["p0"]
            and e["off"] < lo + r["len"] and e["off"] + e["count"] > lo]
    if late and late[0]["leave"] is not None:
        how = "its backing write left the log %d bytes after the reply was seen" % (
            late[0]["leave"][1] - r["p1"])
    elif late:
        how = "its backing write never left"
    else:
        how = "no backing write of it at all"
    return "reply to WRITE %d+%d%s before its data was written to the backing (%s)" % (
        r["off"], r["len"], " FUA" if r["fua"] else "", how)


def check_b(r, events, data_offset):
    ws, covered = backing_writes(r, events, data_offset)
    if not covered:
        return "(no backing write to order against)"
    last = max(e["leave"][1] for e in ws)
    if flushes_between(events, last, r["p1"]):
        return None
    return "reply to FUA WRITE %d+%d before a backing flush that began after its backing write (%d flush(es) in the whole log)" % (
        r["off"], r["len"], sum(1 for e in events if e["kind"] == "Flush"))


def check_c(r, events, data_offset):
    if flushes_between(events, r["p0"], r["p1"]):
        return None
    return "reply to FLUSH before a backing flush that began after the FLUSH was sent (%d flush(es) in the whole log)" % (
        sum(1 for e in events if e["kind"] == "Flush"))


def rules_for(r):
    if r["kind"] == "flush":
        return [("c", check_c)]
    return [("a", check_a)] + ([("b", check_b)] if r["fua"] else [])


def check_all(reqs, events, data_offset):
    """{rule: [messages]} for every rule broken by any request."""
    probs = {}
    for r in reqs:
        for name, fn in rules_for(r):
            msg = fn(r, events, data_offset)
            if msg:
                probs.setdefault(name, []).append("%s phase: %s" % (r["phase"], msg))
    return probs


# ---- sanity: the stack under the volume writes through ------------------------

def cmd_sanity(a):
    fd = os.open(a.file, os.O_RDWR)
    lf = os.open(a.log, os.O_RDONLY)
    data = os.pread(fd, SLOT, a.offset)
    if len(data) != SLOT:
        fail("sanity: short read from %s" % a.file)
    w = {"kind": "write", "off": a.offset, "len": SLOT, "fua": False, "phase": "sanity"}
    w["p0"] = os.fstat(lf).st_size
    t0 = time.monotonic()
    os.pwrite(fd, data, a.offset)        # the same bytes: the volume is unchanged
    took = time.monotonic() - t0
    w["p1"] = os.fstat(lf).st_size
    f = {"kind": "flush", "fua": False, "phase": "sanity"}
    f["p0"] = os.fstat(lf).st_size
    os.fdatasync(fd)
    f["p1"] = os.fstat(lf).st_size
    os.close(fd)
    events = parse_log(read_log(a.log))
    msg = check_a(w, events, 0)
    if msg:
        fail("sanity: a pwrite() to the nbdfuse file returned before nbdkit's log showed the "
             "write done (kernel or nbdfuse write-back caching, or a buffered log: the test "
             "would prove nothing): " + msg)
    if took < a.min_delay_ms / 1000:
        fail("sanity: the control pwrite() took %.3f s, less than the delay filter's %d ms "
             "(is the delay filter in place?)" % (took, a.min_delay_ms))
    msg = check_c(f, events, 0)
    if msg:
        fail("sanity: fdatasync() on the nbdfuse file is not a backing flush: " + msg)
    print("# sanity: control pwrite() of %d bytes took %.3f s and was in nbdkit's log when it "
          "returned; fdatasync() was a backing flush" % (SLOT, took), file=sys.stderr)


# ---- run -----------------------------------------------------------------------

class Conn(AioConn):
    def __init__(self, uri):
        super().__init__(uri)
        self.busy = 0


class Run:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.conns = [Conn(a.uri) for _ in range(a.conns)]
        h = self.conns[0].h
        if not h.can_fua() or not h.can_flush():
            fail("the server does not offer FUA and FLUSH")
        self.size = h.get_size()
        if self.size + a.data_offset != a.backing_size:
            fail("export size %d + data offset %d != backing size %d: the offset mapping would be wrong"
                 % (self.size, a.data_offset, a.backing_size))
        self.logfd = os.open(a.log, os.O_RDONLY)
        self.model = bytearray(self.size)
        self.busy_slots = set()
        self.reqs = []
        self.outstanding = 0
        self.errors = []
        self.last_error = None

    def logpos(self):
        return os.fstat(self.logfd).st_size

    def done_cb(self, c, r):
        def cb(err):
            # First thing: where the log is now (see the module comment).
            r["p1"] = self.logpos()
            e = errno_of(err)
            r["err"] = e
            c.busy -= 1
            self.outstanding -= 1
            if r["kind"] == "write":
                self.busy_slots.difference_update(r["slots"])
            if e:
                self.errors.append("%s failed: errno %d" % (r["kind"], e))
            return 1
        return cb

    def conn(self):
        free = [c for c in self.conns if c.busy < self.a.depth]
        return self.rng.choice(free) if free else None

    def write(self, phase, fua):
        c = self.conn()
        if c is None:
            return False
        rng = self.rng
        for _ in range(50):
            k = rng.randint(1, 24)                    # 512-byte units: 512 B to 12 KiB
            off = rng.randrange(0, self.size // 512 - k + 1) * 512
            if rng.random() < 0.5:
                off -= off % SLOT
            slots = set(range(off // SLOT, (off + k * 512 - 1) // SLOT + 1))
            if not slots & self.busy_slots:
                break
        else:
            return False
        data = rng.randbytes(k * 512)
        self.model[off:off + len(data)] = data
        self.busy_slots |= slots
        r = {"kind": "write", "phase": phase, "off": off, "len": len(data), "fua": fua,
             "slots": slots, "buf": nbd.Buffer.from_bytearray(bytearray(data))}
        self.reqs.append(r)
        c.busy += 1
        self.outstanding += 1
        r["p0"] = self.logpos()
        c.h.aio_pwrite(r["buf"], off, completion=self.done_cb(c, r),
                       flags=nbd.CMD_FLAG_FUA if fua else 0)
        return True

    def flush(self, phase):
        c = self.conn()
        if c is None:
            return False
        r = {"kind": "flush", "phase": phase, "fua": False}
        self.reqs.append(r)
        c.busy += 1
        self.outstanding += 1
        r["p0"] = self.logpos()
        c.h.aio_flush(completion=self.done_cb(c, r))
        return True

    def pump(self, until):
        t0 = time.monotonic()
        while not until():
            if self.errors:
                fail("; ".join(self.errors[:5]))
            if time.monotonic() - t0 > 60:
                fail("replies still outstanding after 60 s (server hung?)")
            for c in self.conns:
                if c.dead():
                    fail("connection %d died with %d request(s) outstanding, after %d request(s) (%s)"
                         % (self.conns.index(c), c.busy, len(self.reqs), self.last_error or "no error"))
            for _, e in poll_conns(self.conns)[1]:
                self.last_error = str(e)   # reported once the handle is dead
        if self.errors:
            fail("; ".join(self.errors[:5]))

    def idle(self):
        return self.outstanding == 0

    def writes(self, phase, n, fua_every):
        """N writes, every FUA_EVERY-th with FUA (0: none)."""
        sent = 0
        while sent < n:
            while sent < n and self.write(phase, bool(fua_every) and sent % fua_every == 0):
                sent += 1
            self.pump(lambda: self.outstanding < self.a.conns * self.a.depth)
        self.pump(self.idle)


def cmd_run(a):
    t0 = time.monotonic()
    run = Run(a)
    marks = {}

    marks["plain"] = run.logpos()
    run.writes("plain", a.writes, 0)
    marks["fua"] = run.logpos()
    run.writes("fua", a.writes, 2)
    marks["flush"] = run.logpos()
    for i in range(a.flush_rounds):
        for _ in range(a.flush_writes):
            run.write("flush", False)
        if i % 2:
            run.flush("flush")          # while writes are in flight
        run.pump(run.idle)
        run.flush("flush")              # after every write was acknowledged
        run.pump(run.idle)
    marks["end"] = run.logpos()

    events = parse_log(read_log(a.log))
    reqs = run.reqs
    bad = False
    probs = check_all(reqs, events, a.data_offset)
    for rule, msgs in sorted(probs.items()):
        print("FAIL: rule (%s) broken by %d request(s); e.g. %s" % (rule, len(msgs), "; ".join(msgs[:3])),
              file=sys.stderr)
        bad = True

    # The plain phase: nothing may flush the backing on its own ...
    own = [e for e in events if e["kind"] == "Flush" and marks["plain"] <= e["enter"][0] < marks["fua"]]
    if own:
        print("FAIL: %d backing flush(es) during the plain phase, which sent no FLUSH and no FUA: "
              "FLUSH/FUA bugs could hide behind them" % len(own), file=sys.stderr)
        bad = True
    # ... so rule (b) must fail for every one of its writes (live control).
    plain = [r for r in reqs if r["phase"] == "plain"]
    held = [r for r in plain if not check_b(r, events, a.data_offset)]
    if held:
        print("FAIL: control: rule (b) held for %d plain write(s) although nothing flushed: the "
              "check cannot see a missing flush" % len(held), file=sys.stderr)
        bad = True

    counts = {"writes_checked": sum(1 for r in reqs if r["kind"] == "write"),
              "fua_checked": sum(1 for r in reqs if r["kind"] == "write" and r["fua"]),
              "flushes_checked": sum(1 for r in reqs if r["kind"] == "flush"),
              "backing_writes": sum(1 for e in events if e["kind"] == "Write"),
              "backing_flushes": sum(1 for e in events if e["kind"] == "Flush"),
              "plain_controls_failed": len(plain) - len(held),
              "seconds": round(time.monotonic() - t0, 1)}
    for what, have, need in (("WRITE", counts["writes_checked"], a.min_writes),
                             ("FUA WRITE", counts["fua_checked"], a.min_fua),
                             ("FLUSH", counts["flushes_checked"], a.min_flushes)):
        if have < need:
            print("FAIL: only %d %s request(s) checked, want at least %d" % (have, what, need),
                  file=sys.stderr)
            bad = True

    # The checker can fail: doctor the log around requests that passed.
    if not bad:
        selftest(reqs, events, a.data_offset, random.Random(a.seed + 1))
        counts["selftests"] = 3 * 5

    # What was acknowledged is what the volume holds.
    if not bad:
        h = run.conns[0].h
        got = bytearray()
        for off in range(0, run.size, 1 << 20):
            got += h.pread(min(1 << 20, run.size - off), off)
        if got != run.model:
            first = next(i for i in range(run.size) if got[i] != run.model[i])
            print("FAIL: the export differs from what was written, first at byte %d" % first,
                  file=sys.stderr)
            bad = True
    for c in run.conns:
        c.h.shutdown()
    report_stats("order", counts, a.stats)
    if bad:
        sys.exit(1)


def selftest(reqs, events, data_offset, rng):
    """Each rule must report a doctored log.  Events are shallow-copied
    dicts, so the real ones stay as they were."""
    def doctored(change):
        out = []
        for e in events:
            e2 = dict(e)
            change(e2)
            out.append(e2)
        return out

    def pick(pred):
        cand = [r for r in reqs if pred(r)]
        if len(cand) < 5:
            fail("self-test: too few requests to doctor the log around")
        return rng.sample(cand, 5)

    for r in pick(lambda r: r["kind"] == "write"):
        ws, _ = backing_writes(r, events, data_offset)
        ids = {id(e) for e in ws}
        # The backing write left only after the reply was seen.
        ev = [dict(e, leave=(r["p1"], r["p1"] + 1)) if id(e) in ids else e for e in events]
        if not check_a(r, ev, data_offset):
            fail("self-test: rule (a) missed a backing write moved after the reply of WRITE %d+%d"
                 % (r["off"], r["len"]))
    for r in pick(lambda r: r["kind"] == "write" and r["fua"]):
        ws, _ = backing_writes(r, events, data_offset)
        last = max(e["leave"][1] for e in ws)
        # Every flush that counted began instead before the backing write left.
        ev = [dict(e, enter=(last - 1, last)) if e["kind"] == "Flush" and e["enter"][0] >= last else e
              for e in events]
        if not check_b(r, ev, data_offset):
            fail("self-test: rule (b) missed the flush moved before the backing write of FUA WRITE %d+%d"
                 % (r["off"], r["len"]))
    for r in pick(lambda r: r["kind"] == "flush"):
        # Every flush that counted began instead before the FLUSH was sent.
        ev = [dict(e, enter=(r["p0"] - 1, r["p0"])) if e["kind"] == "Flush" and e["enter"][0] >= r["p0"] else e
              for e in events]
        if not check_c(r, ev, data_offset):
            fail("self-test: rule (c) missed the flush moved before the FLUSH was sent")
    print("# self-test: the checker reported all 15 doctored logs (5 per rule)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sanity")
    s.add_argument("file")
    s.add_argument("log")
    s.add_argument("--offset", type=int, required=True)
    s.add_argument("--min-delay-ms", type=int, required=True)
    r = sub.add_parser("run")
    r.add_argument("uri")
    r.add_argument("log")
    r.add_argument("--data-offset", type=int, required=True)
    r.add_argument("--backing-size", type=int, required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--conns", type=int, default=2)
    r.add_argument("--depth", type=int, default=4)
    # The kernel runs the writes to one FUSE file one at a time, each held
    # by the delay filter: the backing writes (1 to 3 per WRITE) set the time.
    r.add_argument("--writes", type=int, default=24, help="per write phase")
    r.add_argument("--flush-rounds", type=int, default=8)
    r.add_argument("--flush-writes", type=int, default=3, help="per flush round")
    r.add_argument("--min-writes", type=int, default=60)
    r.add_argument("--min-fua", type=int, default=10)
    r.add_argument("--min-flushes", type=int, default=10)
    r.add_argument("--stats")
    a = ap.parse_args()
    {"sanity": cmd_sanity, "run": cmd_run}[a.cmd](a)


if __name__ == "__main__":
    main()
