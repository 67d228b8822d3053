#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# attach --header H serves a volume whose header is detached: what qemu-io
# writes over NBD is what nbdcopy reads back, what blockcrypt cat --header
# reads after detach, and what the oracle decrypts from the data file with
# the volume key cryptsetup dumps from H; status and list --json name the
# header (absolute path) and the header file is locked with the volume: a
# header change that needs the data lock (header-restore, erase) and a
# second volume using the same header are refused with exit 9, nothing
# changed, while a key can be added as with an attached header.  A tab
# line's header= and key-slot= do the same.
. "$(dirname "$0")/functions.bash"
requires cryptsetup qemu-io nbdcopy /usr/bin/python3 cmp
requires_python_cryptography

SIZE=$((8 * 1024 * 1024))
printf 'attach --header passphrase' >key
printf 'second passphrase' >key2
truncate -s "$SIZE" vol.data
bc format vol.data --header vol.hdr --batch --key-file key "${FAST_KDF[@]}" --no-progress 2>/dev/null ||
	fail "format --header failed"
bc header-backup vol.data --header vol.hdr backup.hdr 2>/dev/null || fail "header-backup --header failed"

dsha=$(sha vol.data)
mkdir sub
(cd sub && bc attach ../vol.data --header ../vol.hdr --key-file ../key >/dev/null) ||
	fail "attach --header (relative paths) failed"
uri=$(nbd_uri vol)

# status and list show the header, canonical.
header=$(bc status vol --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["header"])')
[ "$header" = "$(readlink -f vol.hdr)" ] || fail "status --json: header '$header', not $(readlink -f vol.hdr)"
bc list --json | /usr/bin/python3 -c 'import json,sys; e=json.load(sys.stdin); sys.exit(0 if e[0]["header"] == sys.argv[1] else 1)' \
	"$(readlink -f vol.hdr)" || fail "list --json does not show the header"

qemu-io -f raw "$uri" -c "write -P 0xa5 1000 300000" -c "write -P 0x3c $((SIZE - 4097)) 4097" >qio.out 2>&1 ||
	fail "qemu-io write failed: $(cat qio.out)"
nbdcopy "$uri" - >nbd.raw || fail "nbdcopy read failed"
[ "$(stat -c %s nbd.raw)" = "$SIZE" ] || fail "NBD export is $(stat -c %s nbd.raw) bytes, not $SIZE"
/usr/bin/python3 - "$SIZE" <<'EOF' || fail "nbdcopy did not read back what qemu-io wrote"
import sys
size = int(sys.argv[1])
want = bytearray(size)
want[1000:301000] = b'\xa5' * 300000
want[size - 4097:] = b'\x3c' * 4097
sys.exit(0 if open('nbd.raw', 'rb').read() == bytes(want) else 1)
EOF

# The header file is locked with the volume.
hsha=$(sha vol.hdr)
expect_exit 9 bc header-restore vol.data --header vol.hdr backup.hdr --batch
expect_exit 9 bc erase vol.data --header vol.hdr --batch
cp backup.hdr other.hdr
truncate -s "$SIZE" other.data
expect_exit 9 bc write other.data --header vol.hdr --key-file key </dev/null
[[ "$ERR" == *"vol.hdr is attached as 'vol'"* ]] || fail "the header lock does not name the volume: $ERR"
[ "$(sha vol.hdr)" = "$hsha" ] || fail "a refused command changed the header file"
# Adding a key does not need the data: allowed while attached.
bc add-key vol.data --header vol.hdr --key-file key --new-key-file key2 "${FAST_KDF[@]}" 2>/dev/null ||
	fail "add-key --header while attached failed"
[ "$(sha vol.hdr)" != "$hsha" ] || fail "add-key --header did not change the header file"

bc detach vol >/dev/null || fail "detach failed"
[ "$(sha vol.data)" != "$dsha" ] || fail "the writes did not reach the data file"
bc cat vol.data --header vol.hdr --key-file key2 >cat.raw 2>cat.err || fail "cat --header failed: $(cat cat.err)"
cmp cat.raw nbd.raw || fail "cat --header after detach differs from what NBD served"
key=$(volume_key vol.hdr key)
$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size 4096 vol.data oracle.raw
cmp oracle.raw nbd.raw || fail "the oracle's decryption of the data file differs from what NBD served"
cryptsetup open --test-passphrase --header vol.hdr --key-file key2 vol.data ||
	fail "cryptsetup does not accept the key added while attached"

# The same from a tab file: header= and key-slot= reach the attachment.
printf 'tabvol %s/vol.data %s/key2 header=%s/vol.hdr,key-slot=1\n' "$TEST_TMP" "$TEST_TMP" "$TEST_TMP" >tab
bc attach --from-tab tabvol --tab tab >/dev/null 2>err || fail "attach --from-tab with header= failed: $(cat err)"
header=$(bc status tabvol --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["header"])')
[ "$header" = "$(readlink -f vol.hdr)" ] || fail "tab header=: status shows header '$header'"
nbdcopy "$(nbd_uri tabvol)" - | cmp - nbd.raw || fail "the tab-attached volume serves different bytes"
bc detach tabvol 2>/dev/null || fail "detach tabvol failed"
printf 'tabvol %s/vol.data %s/key header=%s/vol.hdr,key-slot=1\n' "$TEST_TMP" "$TEST_TMP" "$TEST_TMP" >tab
expect_exit 3 bc attach --from-tab tabvol --tab tab
[[ "$ERR" == *"key slot 1"* ]] || fail "tab key-slot=1 with slot 0's key: unexpected message: $ERR"
