#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# qemu's NBD client (qemu-io) can write and read back patterns at offsets
# and lengths that are not aligned to the 4096-byte encryption sector (so
# the server must read-modify-write partial sectors), through both URI and
# --image-opts syntax and across separate connections; every byte outside
# the written ranges stays zero (format wipes the data area), checked with
# an nbdcopy dump and again offline after detach.
. "$(dirname "$0")/functions.bash"
requires qemu-io nbdcopy python3 cmp

new_volume vol.img key
SIZE=$((48 * 1024 * 1024))
bc attach vol.img --key-file key >/dev/null || fail "attach failed"
uri=$(nbd_uri vol)
sock=$BLOCKCRYPT_RUN_DIR/vol.sock
opts="driver=nbd,server.type=unix,server.path=$sock,export=vol"

# pattern offset length; later writes overwrite earlier ones.
writes=(
	"0xab 1000 5000"                   # crosses the first sector boundary
	"0xcd 8191 1"                      # the last byte of sector 1
	"0x5a 12287 8194"                  # 1 byte, two whole sectors, 1 byte
	"0xee 3000 100"                    # inside the 0xab range
	"0x77 $((SIZE - 777)) 777"         # the device's tail
	"0x42 $((20 * 1048576 + 511)) 65537"
)

qio() { qemu-io "$@" >qio.out 2>&1; }

args=()
for w in "${writes[@]}"; do set -- $w; args+=(-c "write -P $1 $2 $3"); done
qio -f raw "$uri" "${args[@]}" || fail "qemu-io writes failed: $(cat qio.out)"
[ "$(grep -c '^wrote ' qio.out)" = "${#writes[@]}" ] || fail "not every write was done: $(cat qio.out)"

# Read back what must be there after all the overwrites, on a new connection.
reads=(
	"0xab 1000 2000" "0xee 3000 100" "0xab 3100 2900"
	"0xcd 8191 1" "0x5a 12287 8194"
	"0x77 $((SIZE - 777)) 777" "0x42 $((20 * 1048576 + 511)) 65537"
	"0 0 1000" "0 6000 2191" "0 8192 4095" "0 20481 4096"
)
args=()
for r in "${reads[@]}"; do set -- $r; args+=(-c "read -P $1 $2 $3"); done
qio --image-opts "$opts" "${args[@]}" || fail "qemu-io read-back failed: $(cat qio.out)"
! grep -q 'Pattern verification failed' qio.out || fail "pattern mismatch: $(cat qio.out)"
[ "$(grep -c '^read ' qio.out)" = "${#reads[@]}" ] || fail "not every read was done: $(cat qio.out)"

# A wrong expectation must be caught, or the checks above prove nothing.
if qio -f raw "$uri" -c "read -P 0xac 1000 5000"; then
	fail "qemu-io did not notice a pattern mismatch: $(cat qio.out)"
fi
grep -q 'Pattern verification failed' qio.out || fail "no mismatch report: $(cat qio.out)"

# The whole device, byte for byte.
python3 - "$SIZE" expected.bin "${writes[@]}" <<'PY'
import sys
size, out = int(sys.argv[1]), sys.argv[2]
img = bytearray(size)
for w in sys.argv[3:]:
    pat, off, n = w.split()
    pat, off, n = int(pat, 0), int(off), int(n)
    img[off:off + n] = bytes([pat]) * n
open(out, "wb").write(img)
PY
nbdcopy "$uri" dump.bin || fail "nbdcopy dump failed"
cmp dump.bin expected.bin || fail "device contents over NBD differ from the writes (bytes outside them touched?)"

bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
bc cat vol.img --key-file key >offline.bin || fail "cat after detach failed"
cmp offline.bin expected.bin || fail "offline contents after detach differ from the writes"
exit 0
