#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Crash-durability load and checker for blockcrypt's NBD server.

Used by tests/shell/durability-*.sh (not a test itself).  Needs libnbd's
Python bindings (Debian python3-libnbd): run it with /usr/bin/python3.

Every 512-byte unit written carries its own identity: a 32-byte header
(magic, byte offset, generation) followed by filler derived from the header
by BLAKE2b, so a read-back unit is either exactly one generation that was
written to exactly that offset, or it is recognisably wrong (torn, garbage,
misplaced).  Generations are unique per write request and grow over time.

  fill  URI STATE                  every unit gets a first generation, FLUSH;
                                   STATE (JSON) records it
  run   URI STATE --seed S --kill-after N --kill PID[,PID...]
        [--conns C] [--depth D]    random writes (some with FUA) and FLUSHes
                                   over C connections, D requests in flight
                                   each; once N requests have completed,
                                   SIGKILL the PIDs in order, collect every
                                   reply still arriving, save the model
        [--fua-prob P] [--flush-prob P]
                                   the share of writes with FUA, of FLUSHes
        [--min-flushes N]          fail unless N FLUSHes succeeded
  check URI STATE --mode proc|power [--dump FILE] [--stats FILE]

The model.  Writes never overlap a unit that is still in flight, so for
every unit the generations are totally ordered.  For each unit, `acked` is
the newest generation whose write was acknowledged, `durable` the newest
one acknowledged with FUA, or acknowledged before a FLUSH was sent (on any
connection: the server advertises CAN_MULTI_CONN) that then succeeded.
`check` accepts, per unit, only a generation that was written to it (this
round) or its value before the round, and not older than
  --mode power: `durable` (a power cut may lose what was not flushed);
  --mode proc:  `acked`   (only the server process died; replies leave only
                           after the data is in the backing, so nothing
                           acknowledged may be lost).
Anything else is reported, one "FAIL:" line per kind with examples, and
the exit status is 1.  After a successful check, STATE's baseline becomes
what was read, for the next round.  `check` also proves it can fail: it
damages its in-memory copy of the data in three ways (a flipped byte, a
durable unit rolled back to its previous generation, a unit copied to
another offset) and requires each to be caught.
"""

import argparse
import hashlib
import json
import os
import random
import signal
import struct
import sys
import time

import nbd

from nbd_client import AioConn, connect, errno_of, fail, poll_conns, report_stats

UNIT = 512
MAGIC = b"BCDURA01"
HDR = struct.Struct("<8sQQQ")


def unit_bytes(off, gen):
    h = HDR.pack(MAGIC, off, gen, 0)
    f = hashlib.blake2b(h, digest_size=64).digest()
    return h + f * 7 + f[:32]


def load_state(path):
    with open(path) as f:
        return json.load(f)


def save_state(path, st):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f)
    os.replace(tmp, path)


# ---- fill ------------------------------------------------------------------

def cmd_fill(a):
    h = connect(a.uri)
    size = h.get_size()
    if size % UNIT:
        fail("export size %d is not a multiple of %d" % (size, UNIT))
    n = size // UNIT
    gen = 1
    chunk = 2048  # units per request (1 MiB)
    for u0 in range(0, n, chunk):
        k = min(chunk, n - u0)
        h.pwrite(b"".join(unit_bytes((u0 + i) * UNIT, gen) for i in range(k)), u0 * UNIT)
        gen += 1
    h.flush()
    h.shutdown()
    # Each unit's first generation is that of the request that wrote it.
    base = [1 + u // chunk for u in range(n)]
    save_state(a.state, {"size": size, "next_gen": gen, "base": base, "round": 0})


# ---- run -------------------------------------------------------------------

class Conn(AioConn):
    def __init__(self, uri, idx):
        super().__init__(uri)
        self.idx = idx
        self.ops = {}      # op id -> op (still outstanding)
        self.gone = False  # retired: dead, its requests finished


def cmd_run(a):
    st = load_state(a.state)
    size = st["size"]
    n = size // UNIT
    rng = random.Random(a.seed)
    base = st["base"]
    acked = list(base)
    durable = list(base)
    inflight = [0] * n          # generation in flight on that unit, 0 = none
    issued = {}                 # unit -> [generations written this round]
    pending = []                # acknowledged writes not yet known durable: [seq, u0, k, gen]
    next_gen = st["next_gen"]
    ack_seq = 0
    stats = dict(writes=0, fua=0, flushes=0, acked=0, acked_fua=0, flushes_ok=0,
                 errors_before_kill=0, errors_after_kill=0, bytes=0)
    conns = [Conn(a.uri, i) for i in range(a.conns)]
    for c in conns:
        if not c.h.can_fua() or not c.h.can_flush():
            fail("the server does not offer FUA and FLUSH")
        if a.conns > 1 and not c.h.can_multi_conn():
            fail("the server does not advertise CAN_MULTI_CONN")
    kill_pids = [int(p) for p in a.kill.split(",") if p]
    killed = False
    kill_time = None
    completed = 0
    op_id = 0
    errors = []

    def finish(c, oid, err):
        nonlocal completed, ack_seq
        op = c.ops.pop(oid, None)
        if op is None:
            return
        completed += 1
        if op["kind"] == "write":
            u0, k, gen = op["u0"], op["k"], op["gen"]
            for u in range(u0, u0 + k):
                inflight[u] = 0
            if err:
                stats["errors_after_kill" if killed else "errors_before_kill"] += 1
                if not killed:
                    errors.append("write %d+%d units (gen %d) failed before the kill: errno %d"
                                  % (u0, k, gen, err))
                return
            stats["acked"] += 1
            for u in range(u0, u0 + k):
                acked[u] = gen
            if op["fua"]:
                stats["acked_fua"] += 1
                for u in range(u0, u0 + k):
                    durable[u] = max(durable[u], gen)
            else:
                ack_seq += 1
                pending.append((ack_seq, u0, k, gen))
        else:
            if err:
                stats["errors_after_kill" if killed else "errors_before_kill"] += 1
                if not killed:
                    errors.append("flush failed before the kill: errno %d" % err)
                return
            stats["flushes_ok"] += 1
            upto = op["seq"]
            keep = []
            for e in pending:
                if e[0] <= upto:
                    for u in range(e[1], e[1] + e[2]):
                        durable[u] = max(durable[u], e[3])
                else:
                    keep.append(e)
            pending[:] = keep

    def make_cb(c, oid):
        def cb(err):
            e = errno_of(err)
            finish(c, oid, e)
            return 1
        return cb

    def issue(c):
        nonlocal next_gen, op_id
        op_id += 1
        oid = op_id
        if rng.random() < a.flush_prob:
            c.ops[oid] = {"kind": "flush", "seq": ack_seq}
            stats["flushes"] += 1
            c.h.aio_flush(completion=make_cb(c, oid))
            return True
        r = rng.random()
        if r < 0.70:
            k = rng.randint(1, 8)
        elif r < 0.95:
            k = rng.randint(9, 64)
        else:
            k = rng.randint(65, 512)
        for _ in range(20):
            u0 = rng.randrange(0, n - k + 1)
            if rng.random() < 0.3:
                u0 -= u0 % 8
            if not any(inflight[u0:u0 + k]):
                break
        else:
            return False
        gen = next_gen
        next_gen += 1
        fua = rng.random() < a.fua_prob
        data = b"".join(unit_bytes((u0 + i) * UNIT, gen) for i in range(k))
        buf = nbd.Buffer.from_bytearray(data)
        for u in range(u0, u0 + k):
            inflight[u] = gen
            issued.setdefault(u, []).append(gen)
        c.ops[oid] = {"kind": "write", "u0": u0, "k": k, "gen": gen, "fua": fua, "buf": buf}
        stats["writes"] += 1
        stats["fua"] += fua
        stats["bytes"] += k * UNIT
        c.h.aio_pwrite(buf, u0 * UNIT, completion=make_cb(c, oid),
                       flags=nbd.CMD_FLAG_FUA if fua else 0)
        return True

    def mark_dead(c):
        if c.gone:
            return
        c.gone = True
        for oid in list(c.ops):     # libnbd retires them; be sure anyway
            finish(c, oid, 107)     # ENOTCONN

    t0 = time.monotonic()
    while True:
        if not killed and completed >= a.kill_after:
            for pid in kill_pids:
                os.kill(pid, signal.SIGKILL)
            killed = True
            kill_time = time.monotonic()
            stats["in_flight_at_kill"] = sum(len(c.ops) for c in conns)
            stats["completed_at_kill"] = completed
        if errors:
            break
        if not killed:
            for c in conns:
                while not c.gone and len(c.ops) < a.depth and issue(c):
                    pass
        live = [c for c in conns if not c.gone and c.ops]
        if killed and not live:
            break
        if not killed and time.monotonic() - t0 > a.timeout:
            fail("only %d of %d requests completed in %d s (server hung?)"
                 % (completed, a.kill_after, a.timeout))
        if killed and time.monotonic() - kill_time > 30:
            fail("replies still outstanding 30 s after the kill")
        # (notification errors: the connection is then dead, seen below)
        idle, _ = poll_conns(live)
        for c in idle:
            mark_dead(c)
        for c in live:
            if c.dead():
                mark_dead(c)

    if errors:
        fail("; ".join(errors[:5]))
    if not killed:
        fail("the load ended before the kill")
    if stats["flushes_ok"] < a.min_flushes:
        fail("only %d FLUSH(es) succeeded before the kill, want at least %d"
             % (stats["flushes_ok"], a.min_flushes))
    st["next_gen"] = next_gen
    st["acked"] = acked
    st["durable"] = durable
    st["issued"] = {str(u): g for u, g in issued.items()}
    st["stats"] = stats
    save_state(a.state, st)
    report_stats("run", stats)


# ---- check -----------------------------------------------------------------

def classify(data, n, base, floor, issued):
    """Per-unit verdicts: returns (observed generations, problems by kind)."""
    obs = [0] * n
    probs = {}
    for u in range(n):
        b = data[u * UNIT:(u + 1) * UNIT]
        magic, off, gen, _ = HDR.unpack_from(b)
        if magic != MAGIC:
            probs.setdefault("garbage (no unit header: torn or wrongly decrypted)", []).append(u)
            continue
        if off != u * UNIT:
            probs.setdefault("unit from another offset", []).append(u)
            continue
        if b != unit_bytes(off, gen):
            probs.setdefault("unit body does not match its header (torn)", []).append(u)
            continue
        obs[u] = gen
        allowed = issued.get(u, ())
        if gen != base[u] and gen not in allowed:
            probs.setdefault("generation never written to this unit", []).append(u)
        elif gen < floor[u]:
            probs.setdefault("older than the newest %s write (lost)", []).append(u)
    return obs, probs


def cmd_check(a):
    st = load_state(a.state)
    size = st["size"]
    n = size // UNIT
    h = connect(a.uri)
    if h.get_size() != size:
        fail("export size %d, expected %d" % (h.get_size(), size))
    data = bytearray()
    step = 4 << 20
    for off in range(0, size, step):
        data += h.pread(min(step, size - off), off)
    h.shutdown()
    if a.dump:
        with open(a.dump, "wb") as f:
            f.write(data)
    base = st["base"]
    issued = {int(u): set(g) for u, g in st.get("issued", {}).items()}
    floor_name = "durable" if a.mode == "power" else "acknowledged"
    floor = st.get("durable" if a.mode == "power" else "acked", base)
    acked = st.get("acked", base)
    durable = st.get("durable", base)
    obs, probs = classify(data, n, base, floor, issued)
    bad = False
    for kind, units in sorted(probs.items()):
        kind = kind.replace("%s", floor_name)
        ex = ", ".join("unit %d (byte %d): read gen %d, base %d, durable %d, acked %d, written %s"
                       % (u, u * UNIT, obs[u], base[u], durable[u], acked[u],
                          sorted(issued.get(u, ()))[-4:]) for u in units[:3])
        print("FAIL: %d unit(s): %s; e.g. %s" % (len(units), kind, ex), file=sys.stderr)
        bad = True
    lost = sum(1 for u in range(n) if obs[u] and obs[u] < acked[u])
    newer = sum(1 for u in range(n) if obs[u] > acked[u])
    durable_new = sum(1 for u in range(n) if durable[u] != base[u])
    acked_new = sum(1 for u in range(n) if acked[u] != base[u])
    stats = dict(units=n, units_durable_this_round=durable_new, units_acked_this_round=acked_new,
                 lost_unflushed_units=lost, unacked_units_that_landed=newer)
    report_stats("check", stats, a.stats)
    if bad:
        sys.exit(1)

    # The check must be able to fail: damage a copy three ways.
    rng = random.Random(st["next_gen"])
    cands = [u for u in range(n) if floor[u] != base[u] and obs[u] == floor[u]]
    if not cands:
        fail("self-test: no unit got a new %s generation this round (the load did too little)"
             % floor_name)
    u = rng.choice(cands)
    for what, mutate in (
            ("a flipped byte", lambda d: d.__setitem__(u * UNIT + 300, d[u * UNIT + 300] ^ 1)),
            ("a unit rolled back to its previous generation",
             lambda d: d.__setitem__(slice(u * UNIT, (u + 1) * UNIT), unit_bytes(u * UNIT, base[u]))),
            ("a unit copied to the next offset",
             lambda d: d.__setitem__(slice(((u + 1) % n) * UNIT, ((u + 1) % n + 1) * UNIT),
                                     d[u * UNIT:(u + 1) * UNIT]))):
        full = bytearray(data)
        mutate(full)
        _, p = classify(full, n, base, floor, issued)
        if not p:
            fail("self-test: the check did not notice %s at unit %d" % (what, u))
    st["base"] = obs
    st["round"] = st.get("round", 0) + 1
    for k in ("acked", "durable", "issued", "stats"):
        st.pop(k, None)
    save_state(a.state, st)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill")
    f.add_argument("uri")
    f.add_argument("state")
    r = sub.add_parser("run")
    r.add_argument("uri")
    r.add_argument("state")
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--kill-after", type=int, required=True)
    r.add_argument("--kill", required=True)
    r.add_argument("--conns", type=int, default=4)
    r.add_argument("--depth", type=int, default=8)
    r.add_argument("--fua-prob", type=float, default=0.15)
    r.add_argument("--flush-prob", type=float, default=0.03)
    r.add_argument("--timeout", type=int, default=90)
    r.add_argument("--min-flushes", type=int, default=0,
                   help="fail unless at least this many FLUSHes succeeded")
    c = sub.add_parser("check")
    c.add_argument("uri")
    c.add_argument("state")
    c.add_argument("--mode", choices=("proc", "power"), required=True)
    c.add_argument("--dump")
    c.add_argument("--stats")
    a = ap.parse_args()
    {"fill": cmd_fill, "run": cmd_run, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    main()
