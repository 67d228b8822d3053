#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# attach --read-only really is read-only: the export is advertised
# read-only, the server itself refuses a write with EPERM (also when the
# client does not check the flag), qemu-io cannot write, the FUSE file
# cannot be opened for writing, reads still return the data, and the
# backing file is byte-identical after detach.
. "$(dirname "$0")/functions.bash"
requires nbdinfo nbdcopy qemu-io python3 cmp
# nbdsh is 'python3 -m nbd'; the python3 first on PATH may lack libnbd's module.
NBDPY=/usr/bin/python3
requires_python_nbd

new_volume vol.img key
random_file data.bin $((48 * 1024 * 1024))
bc write vol.img --key-file key <data.bin 2>/dev/null || fail "write failed"
before=$(sha vol.img)

mkdir mnt
out=$(bc attach vol.img --key-file key --read-only --fuse mnt) || fail "attach --read-only failed"
uri=$(nbd_uri vol)
fusefile=$PWD/mnt/vol
[ "$out" = "$uri"$'\n'"$fusefile" ] || fail "attach printed '$out'"

nbdinfo --json "$uri" >info.json || fail "nbdinfo failed"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["exports"][0]; sys.exit(e["is_read_only"] is not True)' info.json ||
	fail "export not advertised read-only: $(cat info.json)"

# The server must refuse the write itself: with strict mode off libnbd
# sends it regardless of the read-only flag.
for strict in default off; do
	$NBDPY - "$uri" "$strict" <<'PY' || fail "NBD write on a read-only export (strict mode $strict) was not refused with EPERM"
import errno, sys, nbd
h = nbd.NBD()
if sys.argv[2] == "off":
    h.set_strict_mode(0)
h.connect_uri(sys.argv[1])
bad = 0
for what, op in (("pwrite", lambda: h.pwrite(b"x" * 512, 0)), ("zero", lambda: h.zero(65536, 4096))):
    try:
        op()
    except nbd.Error as e:
        print("# strict %s: %s refused: %s" % (sys.argv[2], what, e), file=sys.stderr)
        bad += e.errno != errno.errorcode[errno.EPERM]  # .errno is the name
        continue
    print("%s succeeded" % what, file=sys.stderr)
    bad += 1
sys.exit(bad != 0)
PY
done

if qemu-io -f raw "$uri" -c 'write -P 0xab 0 4096' >qio.out 2>&1; then
	fail "qemu-io wrote to a read-only export: $(cat qio.out)"
fi
note "qemu-io: $(head -1 qio.out)"

python3 - "$fusefile" <<'PY' || fail "FUSE file of a read-only volume opened for writing"
import errno, os, sys
for flags in (os.O_WRONLY, os.O_RDWR):
    try:
        fd = os.open(sys.argv[1], flags)
    except OSError as e:
        print("# fuse open(%d): %s" % (flags, e), file=sys.stderr)
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            sys.exit(1)
        continue
    os.close(fd)
    sys.exit(1)
PY

# Reading still works, through both frontends.
nbdcopy "$uri" nbd.bin || fail "nbdcopy read failed"
cmp data.bin nbd.bin || fail "NBD read of a read-only volume returned wrong data"
cmp data.bin "$fusefile" || fail "FUSE read of a read-only volume returned wrong data"

bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
[ "$(sha vol.img)" = "$before" ] || fail "backing changed while attached read-only"
exit 0
