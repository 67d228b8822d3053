#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Helper for bench/run.sh.

  report.py verify FIO_JSON BYTES_PER_JOB   fio write+verify job: no error, all written and read back
  report.py report RESULTS_DIR JSON_OUT      tables (Markdown) on stdout, raw numbers as JSON
"""
import json
import os
import sys

# The groups run.sh measures (meta "group"), each in one interleaved run.
# tmpfs: nbdkit-null drops writes and reads zeros: no storage, no crypto
# (the transport's own limit), so it is a reference, never a baseline.
# rbd (--rbd): one Ceph cluster; the baselines are qemu-nbd on librbd's own
# LUKS2 encryption and on a plain image.
GROUPS = {
    "tmpfs": {
        "servers": ["nbdkit-null", "nbdkit-file", "nbdkit-luks", "qemu-nbd", "bc-luks1", "bc-luks2-4k"],
        "references": ["nbdkit-null"],
        "baselines": ["nbdkit-file", "nbdkit-luks", "qemu-nbd"],
        "bc": ["bc-luks1", "bc-luks2-4k"],
        "fuse_rows": ["nbdfuse-nbdkit-file", "fuse-bc-luks2-4k"],
    },
    # ext4, xfs, loop (--backing): blockcrypt against the unencrypted file
    # plugin on the same backing.
    **{b: {
        "servers": ["nbdkit-file", "bc-luks2-4k"],
        "references": [],
        "baselines": ["nbdkit-file"],
        "bc": ["bc-luks2-4k"],
        "fuse_rows": [],
    } for b in ("ext4", "xfs", "loop")},
    "rbd": {
        "servers": ["rbd-plain", "rbd-luks2-librbd", "bc-rbd"],
        "references": [],
        "baselines": ["rbd-luks2-librbd", "rbd-plain"],
        "bc": ["bc-rbd"],
        "fuse_rows": [],
    },
}
# --rbd targets (issue #17): bc-rbd against each baseline, on every job.
RBD_TARGETS = [("rbd-luks2-librbd", 1.0), ("rbd-plain", 0.85)]
JOBS = [
    ("seqread", "seq read 1M qd32"),
    ("seqwrite", "seq write 1M qd32"),
    ("randread", "rand read 4k qd32"),
    ("randwrite", "rand write 4k qd32"),
    ("randread-qd1", "rand read 4k qd1"),
    ("randwrite-qd1", "rand write 4k qd1"),
]
# Disk backings (issue #22): bc-luks2-4k at least this times nbdkit-file on every job.
DISK_TARGET = 1.0
# tmpfs: seq write against the transport's own limit (nbdkit-null).
TMPFS_SEQWRITE_NULL_TARGET = 0.8
MiB = 1 << 20


def load_fio(path):
    with open(path) as f:
        text = f.read()
    # fio may print notes before the JSON object
    return json.loads(text[text.index("{"):])


def verify(path, want):
    d = load_fio(path)
    ok = bool(d["jobs"])
    for j in d["jobs"]:
        w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
        good = j["error"] == 0 and w == want and r == want
        print("#   %s: error %d, wrote %d, verified %d bytes%s"
              % (j["jobname"], j["error"], w, r, "" if good else "  <-- BAD"), file=sys.stderr)
        ok &= good
    return 0 if ok else 1


def summarize(path):
    d = load_fio(path)
    # group_reporting: one entry; sum anyway if there are several
    out = {"read": {}, "write": {}}
    for dirn in ("read", "write"):
        bw = sum(j[dirn]["bw_bytes"] for j in d["jobs"])
        iops = sum(j[dirn]["iops"] for j in d["jobs"])
        pct = d["jobs"][0][dirn].get("clat_ns", {}).get("percentile", {})
        out[dirn] = {
            "MiBps": bw / MiB,
            "iops": iops,
            "io_bytes": sum(j[dirn]["io_bytes"] for j in d["jobs"]),
            "clat_mean_us": d["jobs"][0][dirn].get("clat_ns", {}).get("mean", 0) / 1000,
            "clat_p50_us": pct.get("50.000000", 0) / 1000,
            "clat_p99_us": pct.get("99.000000", 0) / 1000,
            "clat_p99_9_us": pct.get("99.900000", 0) / 1000,
        }
    j0 = d["jobs"][0]
    out["errors"] = sum(j["error"] for j in d["jobs"])
    out["fio_usr_cpu_pct"] = sum(j["usr_cpu"] for j in d["jobs"])
    out["fio_sys_cpu_pct"] = sum(j["sys_cpu"] for j in d["jobs"])
    out["fio_runtime_ms"] = j0["job_runtime"] if "job_runtime" in j0 else j0["read"]["runtime"]
    return out


def primary(job, s):
    """The number ratios are taken on: MiB/s for seq, IOPS for 4k."""
    d = s["write"] if "write" in job else s["read"]
    return d["MiBps"] if job.startswith("seq") else d["iops"]


def cell(job, s):
    if s is None:
        return "-"
    d = s["write"] if "write" in job else s["read"]
    if job.startswith("seq"):
        return "%.0f MiB/s" % d["MiBps"]
    if job.endswith("-qd1"):
        return "%.1fk IOPS, p50 %.0f / p99 %.0f µs" % (d["iops"] / 1000, d["clat_p50_us"], d["clat_p99_us"])
    return "%.1fk IOPS (%.0f MiB/s)" % (d["iops"] / 1000, d["MiBps"])


def cpu_cell(x):
    if not x:
        return "-"
    cs = x.get("server_ctx_switches_per_io")
    osd = "" if x.get("osd_cpu_pct") is None else ", OSD %.0f%%" % x["osd_cpu_pct"]
    return "%.0f%% (fio %.0f%%%s), %s cs/IO" % (x["server_cpu_pct"], x["fio_usr_cpu_pct"] + x["fio_sys_cpu_pct"],
                                               osd, "%.2f" % cs if cs is not None else "-")


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def cpu_budget(results, meta, p, g):
    """Seq write: CPU time per MiB written, the server's and fio's.

    Client and server share the machine's CPUs, so once both are busy the
    rate cannot pass NPROC / (server + fio CPU per MiB).  This shows what
    each server could reach with every CPU busy at its own cost per MiB,
    next to the rate that 3x nbdkit-luks asks for.
    """
    nproc = int(meta.get("nproc", "1") or 1)
    rows, doc = [], {}
    for srv in g["servers"]:
        x = results.get(srv, {}).get("seqwrite")
        if not x or not x["write"]["MiBps"]:
            continue
        rate = x["write"]["MiBps"]
        srv_us = x["server_cpu_pct"] / 100 * 1e6 / rate
        fio_us = (x["fio_usr_cpu_pct"] + x["fio_sys_cpu_pct"]) / 100 * 1e6 / rate
        cap = nproc * 1e6 / (srv_us + fio_us)
        doc[srv] = {"MiBps": rate, "server_us_per_MiB": srv_us, "fio_us_per_MiB": fio_us, "cpu_bound_MiBps": cap}
        rows.append([srv, "%.0f" % rate, "%.0f" % srv_us, "%.0f" % fio_us, "%.0f" % (srv_us + fio_us),
                     "%.0f" % cap])
    if not rows:
        return doc
    p("### Seq write: CPU per MiB and what %d CPUs allow" % nproc)
    p("")
    p("fio and the server share the machine. CPU per MiB written = CPU share / rate (median round);"
      " with every CPU busy at that cost the rate cannot pass %d x 10^6 / (server + fio)." % nproc)
    p("")
    p(md_table(["server", "MiB/s", "server CPU µs/MiB", "fio CPU µs/MiB", "both", "all CPUs busy: MiB/s"], rows))
    floor_note(doc, meta, p, g)
    luks = doc.get("nbdkit-luks")
    if luks:
        p("")
        p("3x nbdkit-luks on seq write asks for %.0f MiB/s; at their own cost per MiB: %s." % (
            3 * luks["MiBps"], ", ".join("%s at most %.0f" % (b, doc[b]["cpu_bound_MiBps"]) for b in g["bc"] if b in doc)))
    p("")
    return doc


# The sector size of each blockcrypt server's volume.
BC_SECTOR = {"bc-luks1": 512, "bc-luks2-4k": 4096}


def floor_note(doc, meta, p, g):
    """Seq write: the most a blockcrypt server can reach against its peers.

    nbdkit-null receives each MiB and drops it; nbdkit-file receives and
    stores it.  A blockcrypt server must also encrypt it (the sector
    engine's speed, one core), and unlike nbdkit-null store it (one pwrite
    of 1 MiB into tmpfs pages, measured by run.sh).  Even with nothing else
    to pay, its cost per MiB is the peer's (server + fio) plus those, so at
    the same CPU use its rate is at most peer / (peer + extra) of the peer's.
    """
    store = float(meta.get("pwrite_1M_us_per_MiB", 0) or 0)
    refs = [(r, extra) for r, extra in (("nbdkit-null", store), ("nbdkit-file", 0.0)) if r in doc]
    if not store or not refs:
        return
    lines = []
    for b in g["bc"]:
        mibs = float(meta.get("engine_xts_%d_encrypt_MiBps" % BC_SECTOR.get(b, 0), 0) or 0)
        if b not in doc or not mibs:
            continue
        cipher = 1e6 / mibs
        parts = []
        for ref, extra in refs:
            peer_us = doc[ref]["server_us_per_MiB"] + doc[ref]["fio_us_per_MiB"]
            bound = peer_us / (peer_us + cipher + extra)
            doc[b]["floor_ratio_vs_" + ref] = bound
            parts.append("vs %s %.0f + %.0f%s = %.0f µs/MiB, at most %.2fx" % (
                ref, peer_us, cipher, " + %.0f (store)" % extra if extra else "", peer_us + cipher + extra, bound))
        lines.append("- %s (cipher %.0f µs/MiB at %.0f MiB/s): %s" % (b, cipher, mibs, "; ".join(parts)))
    if lines:
        p("")
        p("The floor at the same CPU use: a peer's own cost per MiB (server + fio), plus the cipher (the sector"
          " engine, one core), plus, against nbdkit-null, storing the MiB (one pwrite of 1 MiB into tmpfs, fio"
          " psync: %.0f µs/MiB):" % store)
        p("")
        for line in lines:
            p(line)


def read_threads(path):
    t = {}
    if os.path.exists(path):
        for line in open(path):
            p = line.rstrip("\n").split("\t")
            if len(p) == 3:
                t[p[0]] = (p[1], int(p[2]))
    return t


def report(rdir, json_out):
    meta = {}
    for line in open(os.path.join(rdir, "meta.tsv")):
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v
    group = meta.get("group", "tmpfs")
    g = GROUPS[group]
    # run.sh --rbd-servers may have run only some of them
    ran = meta["servers"].split() if meta.get("servers") else g["servers"]
    servers, references, baselines, bc, fuse_rows = ([s for s in g[k] if s in ran or k == "fuse_rows"]
                                                     for k in ("servers", "references", "baselines", "bc",
                                                               "fuse_rows"))
    results = {}
    hz = os.sysconf("SC_CLK_TCK")
    rss_series = {}

    def rss_peak(srv, t0, t1):
        if srv not in rss_series:
            pts = []
            path = os.path.join(rdir, srv + ".rss")
            if os.path.exists(path):
                for line in open(path):
                    p = line.split()
                    if len(p) == 2:
                        pts.append((float(p[0]), int(p[1])))
            rss_series[srv] = pts
        v = [kib for t, kib in rss_series[srv] if t0 <= t <= t1 + 0.15]
        return max(v) if v else None

    runs = {}
    for line in open(os.path.join(rdir, "manifest.tsv")):
        f = line.rstrip("\n").split("\t")
        srv, job, path, cpu, wall, t0, t1 = f[:7]
        rnd = int(f[7]) if len(f) > 7 else 1
        tag = "%s.%s.r%d" % (srv, job, rnd)
        s = summarize(path)
        s["round"] = rnd
        s["steal_pct"] = float(f[8]) if len(f) > 8 else None
        # --rbd: the Ceph OSD's CPU during the job
        s["osd_cpu_pct"] = float(f[9]) if len(f) > 9 and f[9] else None
        s["server_cpu_pct"] = float(cpu)
        s["wall_s"] = float(wall)
        rss_srv = "bc-luks2-4k" if srv == "fuse-bc-luks2-4k" else "nbdkit-file" if srv == "nbdfuse-nbdkit-file" else srv
        s["server_rss_peak_kib"] = rss_peak(rss_srv, float(t0), float(t1))
        ps = os.path.join(rdir, tag + ".perfstat")
        if os.path.exists(ps):
            ev = {}
            for l in open(ps):
                f = l.strip().split(",")
                if len(f) >= 3 and not l.startswith("#"):
                    try:
                        ev[f[2]] = float(f[0])
                    except ValueError:
                        pass
            # the perf window is ramp + runtime
            win = float(meta.get("runtime_s", 1)) + float(meta.get("ramp_s", 0))
            if "context-switches" in ev:
                s["server_ctx_switches_per_s"] = ev["context-switches"] / win
                ios = s["read"]["iops"] + s["write"]["iops"]
                s["server_ctx_switches_per_io"] = s["server_ctx_switches_per_s"] / ios if ios else None
        s["t0"], s["t1"] = float(t0), float(t1)
        t0 = read_threads(os.path.join(rdir, tag + ".threads0"))
        t1 = read_threads(os.path.join(rdir, tag + ".threads1"))
        if t1:
            busy = []
            for tid, (comm, ticks) in t1.items():
                d = ticks - t0.get(tid, (comm, 0))[1]
                if d > 0:
                    busy.append({"tid": int(tid), "comm": comm, "cpu_pct": round(100.0 * d / hz / float(wall), 1)})
            s["server_threads"] = sorted(busy, key=lambda x: -x["cpu_pct"])
            # threads that came and went during the job (NBD connection threads)
            s["server_exited_threads_cpu_pct"] = round(s["server_cpu_pct"] - sum(x["cpu_pct"] for x in busy), 1)
        runs.setdefault(srv, {}).setdefault(job, []).append(s)

    # Each (server, job) ran once per round: report the median round (by the
    # number ratios are taken on), keep every round's value, and take the
    # memory peak over all rounds.
    for srv, jobs in runs.items():
        for job, lst in jobs.items():
            by_value = sorted(lst, key=lambda x: primary(job, x))
            med = dict(by_value[(len(by_value) - 1) // 2])
            med["rounds"] = [{"round": x["round"], "value": primary(job, x), "steal_pct": x["steal_pct"]}
                             for x in sorted(lst, key=lambda x: x["round"])]
            peaks = [x["server_rss_peak_kib"] for x in lst if x.get("server_rss_peak_kib")]
            med["server_rss_peak_kib"] = max(peaks) if peaks else None
            results.setdefault(srv, {})[job] = med
    nrounds = max((len(v["rounds"]) for j in results.values() for v in j.values()), default=1)
    steals = sorted(r["steal_pct"] for j in results.values() for v in j.values() for r in v["rounds"]
                    if r["steal_pct"] is not None)

    def round_ratio(b, base, job):
        """The ratio within each round: runs made seconds apart."""
        x, y = ok(b, job), ok(base, job)
        if not x or not y:
            return []
        yv = {r["round"]: r["value"] for r in y["rounds"]}
        return [r["value"] / yv[r["round"]] for r in x["rounds"] if yv.get(r["round"])]

    ok = lambda srv, job: results.get(srv, {}).get(job)
    out = []
    p = out.append
    enc = float(meta.get("openssl_xts_enc_4k_kBps", 0)) * 1000 / MiB
    dec = float(meta.get("openssl_xts_dec_4k_kBps", 0)) * 1000 / MiB
    p("Machine: %s CPUs, %s; kernel %s; %s" % (meta.get("nproc"), meta.get("cpu"), meta.get("kernel"), meta.get("os")))
    p("Run: %s, size %d MiB, %ss per job (+%ss ramp), %s NBD connection(s) per job, images on %s, blockcrypt %s"
      % (meta.get("date"), int(meta["size_bytes"]) // MiB, meta.get("runtime_s"), meta.get("ramp_s"),
         meta.get("conns"), meta.get("workdir_fs") if group in ("tmpfs", "rbd") else group,
         meta.get("blockcrypt_git")))
    p("Raw cipher (openssl speed -evp aes-256-xts, 4096-byte blocks, one core): encrypt %.0f MiB/s, decrypt %.0f MiB/s"
      % (enc, dec))
    if meta.get("engine_xts_path"):
        p("blockcrypt sector engine (bench-engine-speed, aes-xts-plain64 with a 512-bit key, path %s, one core):"
          " 512-byte sectors encrypt %s / decrypt %s MiB/s, 4096-byte sectors encrypt %s / decrypt %s MiB/s"
          % (meta["engine_xts_path"], meta.get("engine_xts_512_encrypt_MiBps", "?"),
             meta.get("engine_xts_512_decrypt_MiBps", "?"), meta.get("engine_xts_4096_encrypt_MiBps", "?"),
             meta.get("engine_xts_4096_decrypt_MiBps", "?")))
    else:
        p("blockcrypt sector engine: not measured (no bench-engine-speed binary next to the blockcrypt binary)")
    p("")
    p("%d round(s); in each, every job ran against every server in turn (rotating order), so each comparison"
      " is between runs seconds apart. Tables show the median round%s." % (
          nrounds, "" if nrounds == 1 else "; the spread table and the per-round ratios show how much rounds differ"))
    if steals:
        p("Hypervisor steal during the measured jobs (share of all CPU time): median %.1f%%, max %.1f%%."
          % (steals[len(steals) // 2], steals[-1]))
    if meta.get("loadavg_start"):
        # other work on the machine shows here (the run itself adds about 2)
        p("Load average (1/5/15 min): %s at the start, %s at the end." % (meta["loadavg_start"],
                                                                        meta.get("loadavg_end", "?")))
    p("")
    if group == "rbd":
        p("### RBD (fio ioengine=nbd, %s; one Ceph cluster, %s)" % (meta.get("transport", "Unix socket"),
                                                                   meta.get("ceph_version", "?")))
        p("")
        p("One mon, mgr and bluestore OSD (block file %d GiB, sparse, on %s), pool rbd, size 1; images of"
          " %d MiB data (the LUKS2 ones 16 MiB more for the header). rbd-plain and rbd-luks2-librbd: qemu-nbd"
          " --cache=none with qemu's rbd driver (rbd-luks2-librbd with encrypt.format=luks2: librbd decrypts);"
          " bc-rbd: blockcrypt attach rbd:rbd/IMAGE. librbd's cache as each server has it (admin socket): %s."
          % (int(meta.get("osd_size_bytes", 0)) >> 30, meta.get("workdir_fs"), int(meta["size_bytes"]) // MiB,
             ", ".join("%s %s" % (s, meta.get("rbd_cache." + s, "?")) for s in servers)))
    elif group != "tmpfs":
        p("### NBD on %s (fio ioengine=nbd, %s)" % (group, meta.get("transport", "Unix socket")))
        p("")
        p("Images: %s. nbdkit-file serves the plaintext (%s), bc-luks2-4k a LUKS2 volume with 4096-byte"
          " sectors (%s); both buffered, through the page cache." % (
              meta.get("backing_how", "?"), meta.get("image_plain", "?"), meta.get("image_luks2", "?")))
    else:
        p("### NBD (fio ioengine=nbd, %s)" % meta.get("transport", "Unix socket"))
    p("")
    rows = []
    for srv in servers:
        if srv in results:
            rows.append([srv] + [cell(j, ok(srv, j)) for j, _ in JOBS])
    p(md_table(["server"] + [t for _, t in JOBS], rows))
    p("")
    p("Server CPU during each job (100%% = one core; the machine has %s), fio's own CPU%s, and the server's"
      " context switches per I/O (perf stat; - if perf is missing):"
      % (meta.get("nproc"), " and the Ceph OSD's" if group == "rbd" else ""))
    p("")
    rows = []
    for srv in servers:
        if srv in results:
            rows.append([srv] + [cpu_cell(ok(srv, j)) for j, _ in JOBS])
    p(md_table(["server"] + [t for _, t in JOBS], rows))
    p("")
    if nrounds > 1:
        p("Spread over the rounds (min-max; MiB/s for seq, k IOPS for 4k):")
        p("")
        rows = []
        for srv in servers:
            if srv in results:
                r = [srv]
                for j, _ in JOBS:
                    x = ok(srv, j)
                    v = [q["value"] / (1 if j.startswith("seq") else 1000) for q in x["rounds"]] if x else []
                    r.append("%.0f-%.0f" % (min(v), max(v)) if v and j.startswith("seq")
                             else "%.1f-%.1f" % (min(v), max(v)) if v else "-")
                rows.append(r)
        p(md_table(["server"] + [t for _, t in JOBS], rows))
        p("")
    p("### Ratios (MiB/s for seq, IOPS for 4k)")
    p("")
    rows = []
    ratios = {}
    for b in bc:
        for base in baselines + references:
            if b not in results or base not in results:
                continue
            r = []
            for j, _ in JOBS:
                x, y = ok(b, j), ok(base, j)
                v = primary(j, x) / primary(j, y) if x and y and primary(j, y) else None
                ratios.setdefault(b, {}).setdefault(base, {})[j] = v
                r.append("%.2fx" % v if v is not None else "-")
            rows.append(["%s / %s" % (b, base)] + r)
    if group == "rbd" and all(s in results for s in ("rbd-luks2-librbd", "rbd-plain")):
        # what librbd's own encryption costs, for scale
        rows.append(["rbd-luks2-librbd / rbd-plain"] + [
            "%.2fx" % (primary(j, ok("rbd-luks2-librbd", j)) / primary(j, ok("rbd-plain", j)))
            if ok("rbd-luks2-librbd", j) and ok("rbd-plain", j) and primary(j, ok("rbd-plain", j)) else "-"
            for j, _ in JOBS])
    p(md_table(["ratio"] + [t for _, t in JOBS], rows))
    p("")
    budget = cpu_budget(results, meta, p, g)
    if fuse_rows:
        p("### FUSE file (fio on the file, seq 1M)")
        p("")
        rows = []
        for row in fuse_rows:
            if row in results:
                rows.append([row, "%s, direct=%s" % (meta.get("fuse_engine." + row), meta.get("fuse_direct." + row))]
                            + [cell(j, ok(row, j)) for j in ("seqread", "seqwrite")]
                            + ["%.0f%% / %.0f%%" % (ok(row, "seqread")["server_cpu_pct"],
                                                    ok(row, "seqwrite")["server_cpu_pct"])])
        p(md_table(["file", "engine", "seq read 1M", "seq write 1M", "server CPU r/w"], rows))
        if all(r in results for r in fuse_rows):
            p("")
            p("fuse-bc-luks2-4k / nbdfuse-nbdkit-file: read %.2fx, write %.2fx" % tuple(
                primary(j, ok("fuse-bc-luks2-4k", j)) / primary(j, ok("nbdfuse-nbdkit-file", j))
                for j in ("seqread", "seqwrite")))
        p("")
    p("### Server memory: VmRSS peak per job (MiB, sampled every 100 ms)")
    p("")
    rows = []
    for srv in servers:
        if srv not in results:
            continue
        r = [srv]
        for j, _ in JOBS:
            x = ok(srv, j)
            r.append("%.1f" % (x["server_rss_peak_kib"] / 1024) if x and x.get("server_rss_peak_kib") else "-")
        for w in ("readback", "verify"):
            win = meta.get("window.%s.%s" % (srv, w))
            v = rss_peak(srv, *map(float, win.split())) if win else None
            r.append("%.1f" % (v / 1024) if v else "-")
        x = ok("fuse-bc-luks2-4k", "seqwrite") if srv == "bc-luks2-4k" else None
        r.append("%.1f / %.1f" % tuple(ok("fuse-bc-luks2-4k", j)["server_rss_peak_kib"] / 1024 for j in ("seqread", "seqwrite"))
                 if x and x.get("server_rss_peak_kib") else "-")
        x = ok(srv, "seqwrite-4conn")
        r.append("%.1f (%.0f MiB/s)" % (x["server_rss_peak_kib"] / 1024, x["write"]["MiBps"])
                 if x and x.get("server_rss_peak_kib") else "-")
        peak = int(meta.get("rss.%s.rss_peak_sampled_kib" % srv, 0) or 0)
        r.append("%.1f" % (peak / 1024))
        rows.append(r)
    p(md_table(["server"] + [t for _, t in JOBS] + ["readback (nbdcopy)", "fio verify", "FUSE r/w",
                                                  "4 conns seq write 1M qd32", "whole run"], rows))
    p("")
    p("### blockcrypt daemon memory and correctness")
    p("")
    rows = []
    rss = {}
    for b in bc:
        g = lambda k: int(meta.get("rss.%s.%s" % (b, k), "0") or 0)
        rss[b] = {k: g(k) for k in ("hwm_after_attach_kib", "rss_after_attach_kib", "rss_peak_sampled_kib",
                                     "hwm_end_kib", "rss_end_kib", "samples")}
        # the single-connection jobs (+ readback, verify, FUSE): everything before the 4-connection stress
        st = ok(b, "seqwrite-4conn")
        std = rss_peak(b, 0, st["t0"] - 0.15) if st else g("rss_peak_sampled_kib")
        rss[b]["rss_peak_1conn_kib"] = std
        rows.append([b, "%.1f" % (g("rss_after_attach_kib") / 1024), "%.1f" % ((std or 0) / 1024),
                     "%.1f" % (g("rss_peak_sampled_kib") / 1024),
                     "%.1f" % (g("hwm_end_kib") / 1024), meta.get("bc_threads_count." + b, "?"),
                     meta.get("readback." + b, "?"), meta.get("verify." + b, "?")])
    p(md_table(["server", "VmRSS idle (MiB)", "VmRSS peak, 1-connection jobs (MiB)",
                "VmRSS peak incl. 4-conn stress (MiB)", "VmHWM at end (MiB)", "threads idle",
                "readback = plaintext", "fio verify crc32c"], rows))
    p("")
    p("Readback (whole export = plaintext, before any write): " + ", ".join(
        "%s %s" % (s, meta.get("readback." + s, "?")) for s in servers if s not in references))
    p("")
    p("### Targets")
    p("")
    targets = []

    def target(name, value, limit, ge=True, per_round=()):
        if value is None:
            targets.append({"target": name, "value": None, "limit": limit, "met": None})
            p("- %s: n/a" % name)
            return
        met = value >= limit if ge else value <= limit
        targets.append({"target": name, "value": round(value, 3), "limit": limit, "met": met,
                        "per_round": [round(v, 3) for v in per_round]})
        p("- %s: %.2f (%s %g) %s%s" % (name, value, ">=" if ge else "<=", limit, "MET" if met else "MISSED",
                                       "; per round: " + " ".join("%.2f" % v for v in per_round)
                                       if len(per_round) > 1 else ""))

    if group == "rbd":
        for b in bc:
            for base, limit in RBD_TARGETS:
                for j, _ in JOBS:
                    target("%s / %s, %s" % (b, base, j), ratios.get(b, {}).get(base, {}).get(j), limit,
                           per_round=round_ratio(b, base, j))
    if group in ("ext4", "xfs", "loop"):
        for b in bc:
            for j, _ in JOBS:
                target("%s / nbdkit-file on %s, %s" % (b, group, j), ratios.get(b, {}).get("nbdkit-file", {}).get(j),
                       DISK_TARGET, per_round=round_ratio(b, "nbdkit-file", j))
    for b in (bc if group == "tmpfs" else []):
        target("%s / nbdkit-null, seqwrite" % b, ratios.get(b, {}).get("nbdkit-null", {}).get("seqwrite"),
               TMPFS_SEQWRITE_NULL_TARGET, per_round=round_ratio(b, "nbdkit-null", "seqwrite"))
        for j in ("seqread", "seqwrite", "randread", "randwrite"):
            target("%s / nbdkit-file, %s" % (b, j), ratios.get(b, {}).get("nbdkit-file", {}).get(j), 0.9,
                   per_round=round_ratio(b, "nbdkit-file", j))
        target("%s / nbdkit-luks, seqwrite" % b, ratios.get(b, {}).get("nbdkit-luks", {}).get("seqwrite"), 3,
               per_round=round_ratio(b, "nbdkit-luks", "seqwrite"))
        target("%s / qemu-nbd, seqwrite" % b, ratios.get(b, {}).get("qemu-nbd", {}).get("seqwrite"), 6,
               per_round=round_ratio(b, "qemu-nbd", "seqwrite"))
        target("%s peak VmRSS, 1-connection jobs (MiB)" % b, (rss[b]["rss_peak_1conn_kib"] or 0) / 1024, 64, ge=False)
        target("%s peak VmRSS incl. 4-connection stress (MiB)" % b, rss[b]["rss_peak_sampled_kib"] / 1024, 64, ge=False)
    perf = {}
    for f in sorted(os.listdir(rdir)):
        if f.startswith("perf-") and f.endswith(".txt"):
            top = [" ".join(l.split()) for l in open(os.path.join(rdir, f))
                   if l.strip().split(" ")[0].endswith("%") and l.strip()[0].isdigit()][:12]
            perf[f[5:-4]] = top
    if perf:
        p("")
        p("### perf record of the blockcrypt daemon (--perf; self time by dso/symbol, >= 1%)")
        for k, top in perf.items():
            p("")
            p("%s:" % k)
            p("```")
            p("\n".join(top))
            p("```")
    print("\n".join(out))

    doc = {
        "meta": meta,
        "openssl_aes_256_xts_4k_MiBps": {"encrypt": enc, "decrypt": dec},
        "results": results,
        "ratios": ratios,
        "rss_kib": rss,
        "targets": targets,
        "seqwrite_cpu_budget": budget,
        "perf_top": perf,
    }
    with open(json_out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "verify":
        return verify(sys.argv[2], int(sys.argv[3]))
    if len(sys.argv) == 4 and sys.argv[1] == "report":
        return report(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
