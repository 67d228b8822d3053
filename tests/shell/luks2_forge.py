#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Forge LUKS headers for tests: change what a header says while keeping it
valid for cryptsetup (both LUKS2 copies rewritten, checksums recomputed).

  luks2_forge.py show FILE
      Print the JSON metadata (after checking both LUKS2 copies: magic,
      version, offsets, checksums, identical JSON). Exit 1 if any is wrong.
  luks2_forge.py set FILE [EDIT]...
      Apply EDITs, in order, to the JSON of both copies:
        PATH=JSON     set (VALUE parsed as JSON; if that fails, a string)
        PATH+=JSON    append to the array at PATH (created if missing)
        PATH!         delete
      PATH is dot-separated object keys, e.g. keyslots.0.kdf.memory or
      config.requirements.mandatory.  Both copies must be valid first.
  luks2_forge.py luks1 FILE [FIELD=VALUE]...
      Edit a LUKS1 binary header in place. FIELDs: cipher_name,
      cipher_mode, hash_spec (strings), payload_offset, key_bytes,
      mk_digest_iterations, slotN.active, slotN.iterations,
      slotN.key_material_offset, slotN.stripes (integers, N = 0..7).

Layouts follow the LUKS1 and LUKS2 on-disk format specifications: all
integers big-endian; a LUKS2 copy is a 4096-byte binary header followed by
the JSON area (hdr_size bytes in all); the secondary copy starts at
hdr_size; the checksum (csum_alg, 64-byte field at 448) covers the binary
header with that field zeroed, followed by the whole JSON area.
"""
import hashlib
import json
import struct
import sys

MAGIC = (b"LUKS\xba\xbe", b"SKUL\xba\xbe")
HDR_SIZES = [1 << n for n in range(14, 23)]  # 16 KiB .. 4 MiB
CSUM_OFF, CSUM_LEN = 448, 64


def die(msg):
    print("luks2_forge: " + msg, file=sys.stderr)
    sys.exit(1)


def read_copy(f, off, want_magic):
    f.seek(off)
    binhdr = bytearray(f.read(4096))
    if len(binhdr) != 4096 or binhdr[:6] != want_magic:
        die("no LUKS2 %s header at offset %d" % ("primary" if off == 0 else "secondary", off))
    version, hdr_size = struct.unpack(">HQ", binhdr[6:16])
    hdr_offset = struct.unpack(">Q", binhdr[256:264])[0]
    if version != 2:
        die("header at %d: version %d, not LUKS2" % (off, version))
    if hdr_size not in HDR_SIZES or hdr_offset != off:
        die("header at %d: bad hdr_size %d or hdr_offset %d" % (off, hdr_size, hdr_offset))
    area = f.read(hdr_size - 4096)
    if len(area) != hdr_size - 4096:
        die("header at %d: JSON area truncated" % off)
    alg = binhdr[72:104].split(b"\0", 1)[0].decode()
    try:
        h = hashlib.new(alg)
    except ValueError:
        die("header at %d: unknown checksum algorithm %r" % (off, alg))
    stored = bytes(binhdr[CSUM_OFF:CSUM_OFF + h.digest_size])
    binhdr[CSUM_OFF:CSUM_OFF + CSUM_LEN] = bytes(CSUM_LEN)
    h.update(bytes(binhdr) + area)
    if h.digest() != stored:
        die("header at %d: checksum mismatch" % off)
    text = area.split(b"\0", 1)[0]
    return {"bin": binhdr, "alg": alg, "hdr_size": hdr_size, "area_len": len(area),
            "meta": json.loads(text)}


def load(path):
    with open(path, "rb") as f:
        f.seek(6)
        version, hdr_size = struct.unpack(">HQ", f.read(10))
        if version != 2:
            die("%s: not a LUKS2 header (version %d)" % (path, version))
        first = read_copy(f, 0, MAGIC[0])
        second = read_copy(f, hdr_size, MAGIC[1])
    if first["meta"] != second["meta"]:
        die("%s: the two header copies hold different JSON" % path)
    return first, second


def write_copy(f, off, copy, meta):
    text = json.dumps(meta, separators=(",", ":")).encode()
    if len(text) >= copy["area_len"]:
        die("new JSON (%d bytes) does not fit the %d-byte area" % (len(text), copy["area_len"]))
    area = text + bytes(copy["area_len"] - len(text))
    binhdr = copy["bin"]  # checksum field already zeroed by read_copy
    h = hashlib.new(copy["alg"])
    h.update(bytes(binhdr) + area)
    binhdr[CSUM_OFF:CSUM_OFF + h.digest_size] = h.digest()
    f.seek(off)
    f.write(bytes(binhdr) + area)


def parse_value(s):
    try:
        return json.loads(s)
    except ValueError:
        return s


def walk(meta, path, create):
    keys = path.split(".")
    node = meta
    for k in keys[:-1]:
        if k not in node:
            if not create:
                die("no %s in the metadata" % path)
            node[k] = {}
        node = node[k]
        if not isinstance(node, dict):
            die("%s: %s is not an object" % (path, k))
    return node, keys[-1]


def apply_edit(meta, edit):
    if edit.endswith("!"):
        node, key = walk(meta, edit[:-1], False)
        if key not in node:
            die("no %s to delete" % edit[:-1])
        del node[key]
    elif "+=" in edit:
        path, value = edit.split("+=", 1)
        node, key = walk(meta, path, True)
        node.setdefault(key, [])
        if not isinstance(node[key], list):
            die("%s is not an array" % path)
        node[key].append(parse_value(value))
    elif "=" in edit:
        path, value = edit.split("=", 1)
        node, key = walk(meta, path, True)
        node[key] = parse_value(value)
    else:
        die("bad edit %r (PATH=JSON, PATH+=JSON or PATH!)" % edit)


LUKS1_STR = {"cipher_name": (8, 32), "cipher_mode": (40, 32), "hash_spec": (72, 32)}
LUKS1_INT = {"payload_offset": 104, "key_bytes": 108, "mk_digest_iterations": 164}
LUKS1_SLOT = {"active": 0, "iterations": 4, "key_material_offset": 40, "stripes": 44}


def luks1(path, edits):
    with open(path, "r+b") as f:
        hdr = bytearray(f.read(592))
        if hdr[:6] != MAGIC[0] or struct.unpack(">H", hdr[6:8])[0] != 1:
            die("%s: not a LUKS1 header" % path)
        for e in edits:
            field, _, value = e.partition("=")
            if field in LUKS1_STR:
                off, size = LUKS1_STR[field]
                raw = value.encode()
                if len(raw) >= size:
                    die("%s: %r is too long" % (field, value))
                hdr[off:off + size] = raw + bytes(size - len(raw))
                continue
            if field in LUKS1_INT:
                off = LUKS1_INT[field]
            elif field.startswith("slot") and "." in field:
                n, name = field[4:].split(".", 1)
                if not n.isdigit() or int(n) > 7 or name not in LUKS1_SLOT:
                    die("unknown field %r" % field)
                off = 208 + 48 * int(n) + LUKS1_SLOT[name]
            else:
                die("unknown field %r" % field)
            hdr[off:off + 4] = struct.pack(">I", int(value, 0) & 0xffffffff)
        f.seek(0)
        f.write(bytes(hdr))


def main(argv):
    if len(argv) < 3 or argv[1] not in ("show", "set", "luks1"):
        die("usage: luks2_forge.py show|set|luks1 FILE [EDIT]...")
    cmd, path, edits = argv[1], argv[2], argv[3:]
    if cmd == "luks1":
        luks1(path, edits)
        return
    first, second = load(path)
    if cmd == "show":
        json.dump(first["meta"], sys.stdout, indent=2)
        print()
        return
    meta = first["meta"]
    for e in edits:
        apply_edit(meta, e)
    with open(path, "r+b") as f:
        write_copy(f, 0, first, meta)
        write_copy(f, first["hdr_size"], second, meta)
    load(path)  # proof that both copies read back valid


if __name__ == "__main__":
    main(sys.argv)
