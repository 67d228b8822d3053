#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Look for key material in files, core dumps and live process memory.

Usage:
  hygiene_scan.py [--key FILE]... [--essiv-key FILE]... [--secret FILE]...
                  [--maps SMAPS] [--quiet|--summary] TARGET...

Needles:
  --key FILE         a raw volume key (16, 24, 32 or 64 bytes): the whole key,
                     each 16-byte piece, each XTS half, the key in hex, and
                     every round key of the AES encryption key schedule of
                     each key the cipher would use (the whole key, or each
                     half of a 64-byte or 32-byte XTS key)
  --essiv-key FILE   like --key, plus SHA-256(key) and its key schedule (the
                     ESSIV salt key of aes-cbc-essiv:sha256)
  --secret FILE      a passphrase or key file: its bytes as they are
Targets:
  a file (an ELF core is recognised: hits are given as virtual addresses
  and, with --maps, the mapping and its VmFlags from a copy of
  /proc/PID/smaps taken at the same moment), or pid:PID to read the live
  memory of a process through /proc/PID/mem (root, or a stopped tracee).

One line per hit: "TARGET: NEEDLE at WHERE" (--summary: one line per needle,
with the number of hits and the mappings they are in; --quiet: nothing).  Exit status: 0 no hit,
1 some hit, 2 usage or read error.
"""
import hashlib
import mmap
import os
import re
import struct
import sys

# ---- AES key expansion (FIPS-197 section 5.2) -------------------------------

def _sbox():
    # Multiplicative inverse in GF(2^8) followed by the affine transform.
    def mul(a, b):
        r = 0
        while b:
            if b & 1:
                r ^= a
            a = ((a << 1) ^ 0x11B) if a & 0x80 else a << 1
            b >>= 1
        return r
    inv = [0] * 256
    for a in range(1, 256):
        for b in range(1, 256):
            if mul(a, b) == 1:
                inv[a] = b
                break
    box = []
    for a in range(256):
        x = inv[a]
        s = x
        for i in range(1, 5):
            s ^= ((x << i) | (x >> (8 - i))) & 0xFF
        box.append(s ^ 0x63)
    return box

SBOX = _sbox()


def aes_round_keys(key):
    """The encryption round keys (16 bytes each) of an AES-128/192/256 key."""
    nk = len(key) // 4
    rounds = {4: 10, 6: 12, 8: 14}[nk]
    w = [list(key[4 * i:4 * i + 4]) for i in range(nk)]
    rcon = 1
    for i in range(nk, 4 * (rounds + 1)):
        t = list(w[i - 1])
        if i % nk == 0:
            t = t[1:] + t[:1]
            t = [SBOX[b] for b in t]
            t[0] ^= rcon
            rcon = ((rcon << 1) ^ 0x11B) & 0xFF if rcon & 0x80 else rcon << 1
        elif nk > 6 and i % nk == 4:
            t = [SBOX[b] for b in t]
        w.append([a ^ b for a, b in zip(w[i - nk], t)])
    flat = bytes(b for word in w for b in word)
    return [flat[16 * r:16 * r + 16] for r in range(rounds + 1)]


# FIPS-197 appendix A.3 (AES-256 expansion): the last round key.
_KAT_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
assert aes_round_keys(_KAT_KEY)[14] == bytes.fromhex("fe4890d1e6188d0b046df344706c631e"), "AES key expansion is wrong"

# ---- needles ----------------------------------------------------------------

def key_needles(name, key, essiv):
    if len(key) not in (16, 24, 32, 64):
        sys.exit(f"hygiene_scan: {name}: a key must be 16, 24, 32 or 64 bytes, not {len(key)}")
    n = [(f"{name} (whole key)", key),
         (f"{name} in hex", key.hex().encode()),
         (f"{name} in HEX", key.hex().upper().encode())]
    for off in range(0, len(key) - 15, 16):
        n.append((f"{name}[{off}:{off + 16}]", key[off:off + 16]))
    aes_keys = []
    if len(key) == 64:
        n += [(f"{name} XTS half 1", key[:32]), (f"{name} XTS half 2", key[32:])]
        aes_keys += [(f"{name} XTS half 1", key[:32]), (f"{name} XTS half 2", key[32:])]
    if len(key) == 32:  # AES-128-XTS halves, or one AES-256 key
        aes_keys += [(f"{name} XTS half 1", key[:16]), (f"{name} XTS half 2", key[16:])]
    if len(key) <= 32:
        aes_keys.append((name, key))
    if essiv:
        salt = hashlib.sha256(key).digest()
        n.append((f"ESSIV salt SHA-256({name})", salt))
        aes_keys.append((f"ESSIV salt SHA-256({name})", salt))
    for kname, k in aes_keys:
        for r, rk in enumerate(aes_round_keys(k)):
            # Round keys 0 and 1 are the key itself (pieces above).
            if r >= len(k) // 16:
                n.append((f"AES schedule of {kname}, round key {r}", rk))
    return n


def dedup(needles):
    seen, out = set(), []
    for label, b in needles:
        if b not in seen:
            seen.add(b)
            out.append((label, b))
    return out

# ---- where things are -------------------------------------------------------

def parse_smaps(path):
    maps, cur = [], None
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
    with open(path, errors="replace") as f:
        for line in f:
            m = head.match(line)
            if m:
                cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3),
                       "name": m.group(4) or "[anon]", "flags": ""}
                maps.append(cur)
            elif line.startswith("VmFlags:") and cur:
                cur["flags"] = line.split(":", 1)[1].strip()
    return maps


def region(addr, maps):
    """The mapping holding ADDR, as text, or None."""
    for m in maps or ():
        if m["start"] <= addr < m["end"]:
            fl = m["flags"].split()
            tags = ["locked" if "lo" in fl else "NOT locked",
                    "MADV_DONTDUMP" if "dd" in fl else "dumpable"]
            return f"{m['start']:x}-{m['end']:x} {m['perms']} {m['name']} ({', '.join(tags)})"
    return None


def describe(addr, maps):
    r = region(addr, maps)
    return f"0x{addr:x} in {r}" if r else f"0x{addr:x}"


def elf_segments(data):
    """(file offset, size, vaddr) of each PT_LOAD of an ELF64 core, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or struct.unpack_from("<H", data, 16)[0] != 4:
        return None
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    segs = []
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_filesz:
            segs.append((p_offset, p_filesz, p_vaddr))
    return segs


CHUNK = 1 << 20


def find_all(buf, base, length, needles, where, hits):
    """Search buf[base:base+length] chunk by chunk, skipping all-zero chunks."""
    longest = max(len(b) for _, b in needles)
    zero = bytes(CHUNK)
    pos = base
    end = base + length
    while pos < end:
        stop = min(pos + CHUNK, end)
        view = buf[pos:stop]
        if view != zero[:len(view)]:
            window = buf[pos:min(stop + longest - 1, end)]
            for label, b in needles:
                i = window.find(b)
                while i >= 0 and pos + i < stop:
                    hits.append((label, where(pos + i)))
                    i = window.find(b, i + 1)
        pos = stop


def scan_file(path, needles, maps):
    hits = []
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            # /proc files say 0 bytes: read them as they come.
            data = f.read()
            find_all(data, 0, len(data), needles, lambda o: f"offset {o}", hits)
            return hits
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            segs = elf_segments(buf)
            if segs is None:
                find_all(buf, 0, size, needles, lambda o: f"offset {o}", hits)
            else:
                for off, sz, vaddr in segs:
                    sz = min(sz, size - off)
                    find_all(buf, off, sz, needles,
                             lambda o, off=off, vaddr=vaddr: describe(vaddr + o - off, maps), hits)
        finally:
            buf.close()
    return hits


def scan_pid(pid, needles):
    maps = parse_smaps(f"/proc/{pid}/smaps")
    hits = []
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for m in maps:
            if not m["perms"].startswith("r") or m["name"] in ("[vvar]", "[vvar_vclock]", "[vsyscall]"):
                continue
            try:
                mem.seek(m["start"])
                data = mem.read(m["end"] - m["start"])
            except OSError:
                continue
            if data:
                find_all(data, 0, len(data), needles,
                         lambda o, s=m["start"]: describe(s + o, maps), hits)
    return hits


def main(argv):
    needles, targets, maps, quiet, summary = [], [], None, False, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--key", "--essiv-key", "--secret", "--maps") and i + 1 < len(argv):
            val = argv[i + 1]
            i += 2
            if a == "--maps":
                maps = parse_smaps(val)
                continue
            data = open(val, "rb").read()
            name = os.path.basename(val)
            if a == "--secret":
                if not data:
                    sys.exit(f"hygiene_scan: {val} is empty")
                needles.append((f"secret {name}", data))
            else:
                needles += key_needles(f"key {name}", data, a == "--essiv-key")
        elif a == "--quiet":
            quiet = True
            i += 1
        elif a == "--summary":
            summary = True
            i += 1
        elif a.startswith("--"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            targets.append(a)
            i += 1
    if not needles or not targets:
        print(__doc__, file=sys.stderr)
        return 2
    needles = dedup(needles)
    found = 0
    for t in targets:
        try:
            hits = scan_pid(int(t[4:]), needles) if t.startswith("pid:") else scan_file(t, needles, maps)
        except OSError as e:
            print(f"hygiene_scan: {t}: {e}", file=sys.stderr)
            return 2
        found += len(hits)
        if quiet:
            continue
        if summary:
            # One line per needle, then per region (address left out).
            per = {}
            for label, where in hits:
                per.setdefault(label, []).append(where.split(" in ", 1)[1] if " in " in where else "?")
            for label, wheres in per.items():
                regions = sorted(set(wheres))
                print(f"{t}: {label}: {len(wheres)}x in {'; '.join(regions)}")
        else:
            for label, where in hits:
                print(f"{t}: {label} at {where}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
