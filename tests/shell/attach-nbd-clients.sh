#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An attached volume is a well-behaved NBD export for libnbd clients:
# nbdinfo sees the decrypted size and the flush/FUA/multi-conn flags;
# data copied in with nbdcopy reads back identical over NBD, is still there
# after detach (checked offline with 'blockcrypt cat'), and is stored
# encrypted: the backing's data area does not hold the plaintext.
. "$(dirname "$0")/functions.bash"
requires nbdinfo nbdcopy python3 cryptsetup cmp

new_volume vol.img key
SIZE=$((48 * 1024 * 1024))   # 64M backing - 16 MiB LUKS2 header
random_file random.bin "$SIZE"

out=$(bc attach vol.img --key-file key) || fail "attach failed"
uri=$(nbd_uri vol)
[ "$out" = "$uri" ] || fail "attach printed '$out', expected '$uri'"

nbdinfo --json "$uri" >info.json || fail "nbdinfo $uri failed"
python3 - "$SIZE" info.json <<'PY' || fail "nbdinfo reports wrong export properties: $(cat info.json)"
import json, sys
want = int(sys.argv[1])
e = json.load(open(sys.argv[2]))["exports"][0]
bad = []
if e["export-name"] != "vol": bad.append("export-name %r" % e["export-name"])
if e["export-size"] != want: bad.append("export-size %d != %d" % (e["export-size"], want))
for k in ("can_multi_conn", "can_flush", "can_fua"):
    if e.get(k) is not True: bad.append("%s=%r" % (k, e.get(k)))
if e.get("is_read_only") is not False: bad.append("is_read_only=%r" % e.get("is_read_only"))
if bad:
    print("; ".join(bad), file=sys.stderr); sys.exit(1)
PY

nbdcopy random.bin "$uri" || fail "nbdcopy random.bin -> $uri failed"
nbdcopy "$uri" out.bin || fail "nbdcopy $uri -> out.bin failed"
cmp random.bin out.bin || fail "data read back over NBD differs from what was written"

bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
bc cat vol.img --key-file key >offline.bin || fail "cat after detach failed"
cmp random.bin offline.bin || fail "offline contents after detach differ from what was written over NBD"

# The ciphertext on the backing is not the plaintext, not even one sector of it.
off=$(data_offset vol.img)
[ "$off" -gt 0 ] || fail "cannot find the data offset"
python3 - vol.img "$off" random.bin <<'PY' || fail "backing data area holds plaintext"
import sys
img, off, plain = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(img, "rb") as f, open(plain, "rb") as p:
    f.seek(off)
    same = 0; n = 0
    while True:
        a = p.read(4096)
        if not a: break
        b = f.read(4096)
        n += 1
        same += a == b
if n != 48 * 256 or same:
    print("%d of %d 4 KiB blocks of the data area are plaintext" % (same, n), file=sys.stderr)
    sys.exit(1)
PY
exit 0
