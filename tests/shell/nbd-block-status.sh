#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# base:allocation over NBD on a file backing (issue #19).  A volume full of
# random data, attached with --allow-discards; libnbd TRIMs three ranges
# (one aligned, one unaligned at both ends, one to the end of the device).
#  (a) nbdinfo --map: the whole encryption sectors inside each TRIM are
#      "hole,zero" (flags 3), everything else "data" (flags 0);
#  (b) qemu-img map --output=json over the URI agrees exactly with the
#      backing file's own SEEK_DATA/SEEK_HOLE map, shifted by the data
#      offset and rounded inwards to whole sectors;
#  (c) nbdcopy to a file: the copy has holes over every trimmed range (it
#      stays sparse), and holds the same bytes as a plain read (nbdcopy
#      --no-extents) and as the model: the data written, zeros where it was
#      trimmed (zero ciphertext reads as zeros).
. "$(dirname "$0")/functions.bash"
requires nbdinfo nbdcopy qemu-img cryptsetup cmp
requires_python_nbd
NBDPY=/usr/bin/python3

VOLUME_SIZE=40M new_volume v.img key
off=$(data_offset v.img)
ss=$(sector_size v.img)
size=$(( $(stat -c %s v.img) - off ))
random_file data.raw "$size"
bc write v.img --key-file key <data.raw >/dev/null 2>&1 || fail "blockcrypt write failed"
uri=$(bc attach v.img --key-file key --allow-discards) || fail "attach failed"
MiB=$((1 << 20))
# OFFSET:LENGTH of each TRIM, and the whole sectors inside it.
trims="$MiB:$((2 * MiB)) $((8 * MiB + 100)):$((3 * MiB)) $((size - MiB)):$MiB"
holes=""
for t in $trims; do
	o=${t%:*} l=${t#*:}
	holes+=" $(( (o + ss - 1) / ss * ss )):$(( (o + l) / ss * ss ))"
done

$NBDPY - "$uri" $trims <<'EOF' || fail "TRIM through libnbd failed"
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for t in sys.argv[2:]:
    o, l = map(int, t.split(":"))
    h.trim(l, o)
h.flush()
h.shutdown()
EOF

note "(a) nbdinfo --map"
nbdinfo --map "$uri" >map.txt 2>map.err || fail "nbdinfo --map failed: $(tail -n 1 map.err)"
want=""
pos=0
for hr in $holes; do
	s=${hr%:*} e=${hr#*:}
	[ "$s" = "$pos" ] || want+="$pos $((s - pos)) 0"$'\n'
	want+="$s $((e - s)) 3"$'\n'
	pos=$e
done
[ "$pos" = "$size" ] || want+="$pos $((size - pos)) 0"$'\n'
got=$(awk '{print $1, $2, $3}' map.txt)
[ "$got"$'\n' = "$want" ] || problem "nbdinfo --map shows
$(cat map.txt)
want (offset length flags):
$want"

note "(b) qemu-img map against the backing's SEEK_HOLE map; (c) nbdcopy stays sparse"
timeout 60 qemu-img map --output=json "$uri" >qmap.json 2>qmap.err || fail "qemu-img map failed: $(tail -n 1 qmap.err)"
timeout 60 nbdcopy "$uri" copy.raw 2>copy.err || fail "nbdcopy failed: $(tail -n 1 copy.err)"
timeout 60 nbdcopy --no-extents "$uri" plain.raw 2>copy.err || fail "nbdcopy --no-extents failed: $(tail -n 1 copy.err)"
cmp copy.raw plain.raw >/dev/null || problem "nbdcopy (with extents) and a plain read differ"
$NBDPY - v.img "$off" "$size" "$ss" qmap.json copy.raw data.raw $holes <<'EOF' || problem "see above"
import json, os, sys
img, off, size, ss, qmap, copy, data = sys.argv[1], *map(int, sys.argv[2:5]), *sys.argv[5:8]
holes = [tuple(map(int, h.split(":"))) for h in sys.argv[8:]]
bad = 0
def say(msg):
    global bad
    bad += 1
    print("FAIL: nbd-block-status.sh: " + msg, file=sys.stderr)

def file_holes(path, start, end):
    """Holes of PATH within [start, end), as (start, end) pairs."""
    fd = os.open(path, os.O_RDONLY)
    out, pos = [], start
    while pos < end:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            d = end
        d = min(d, end)
        if d > pos:
            out.append((pos, d))
        if d >= end:
            break
        pos = os.lseek(fd, d, os.SEEK_HOLE)
    os.close(fd)
    return out

def runs(hole_list):
    """(start, length, is_hole) runs of [0, size)."""
    out, pos = [], 0
    for s, e in hole_list:
        if s > pos:
            out.append((pos, s - pos, False))
        out.append((s, e - s, True))
        pos = e
    if pos < size:
        out.append((pos, size - pos, False))
    return out

# The backing's holes in the data area, in volume offsets, whole sectors.
backing = []
for s, e in file_holes(img, off, off + size):
    s, e = -(-(s - off) // ss) * ss, (e - off) // ss * ss
    if e > s:
        backing.append((s, e))
if backing != holes:
    say(f"the backing's holes {backing} are not the trimmed sectors {holes}")
q, merged = json.load(open(qmap)), []
for x in q:
    h = (not x["data"]) and x["zero"]
    if merged and merged[-1][2] == h and merged[-1][0] + merged[-1][1] == x["start"]:
        merged[-1] = (merged[-1][0], merged[-1][1] + x["length"], h)
    else:
        merged.append((x["start"], x["length"], h))
if merged != runs(backing):
    say(f"qemu-img map {merged} disagrees with the backing's map {runs(backing)}")
# (c) the copy is sparse over every trimmed range, and holds the model.
ch = file_holes(copy, 0, size)
for s, e in holes:
    if not any(a <= s and e <= b for a, b in ch):
        say(f"the nbdcopy copy has no hole over the trimmed {s}..{e} (its holes: {ch})")
model = bytearray(open(data, "rb").read())
for s, e in holes:
    model[s:e] = bytes(e - s)
if open(copy, "rb").read() != model:
    say("the copy is not the data written with zeros over the trimmed sectors")
sys.exit(1 if bad else 0)
EOF

check_problems
