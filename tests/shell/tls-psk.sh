#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# NBD over TLS with pre-shared keys (psktool file): a client with the key
# reads and writes through TLS (nbdinfo reports TLS; nbdcopy both ways,
# checked offline); a client without TLS, or with a different key, or an
# unknown user, is refused and learns nothing: no export size, no data.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/tls-lib.bash"
requires nbdinfo nbdcopy psktool cmp

new_volume vol.img key
psktool -u alice -p keys.psk >/dev/null 2>&1 || fail "psktool failed"
psktool -u alice -p other.psk >/dev/null 2>&1
psktool -u mallory -p mallory.psk >/dev/null 2>&1

out=$(bc attach vol.img --key-file key --tls-psk keys.psk) || fail "attach with --tls-psk failed"
sock=$BLOCKCRYPT_RUN_DIR/vol.sock
[ "$out" = "nbds+unix:///vol?socket=$sock" ] || fail "attach printed '$out', expected an nbds+unix URI"
uri="nbds+unix://alice@/vol?socket=$sock&tls-psk-file=keys.psk"

nbdinfo "$uri" >info.txt 2>&1 || fail "nbdinfo over TLS failed: $(cat info.txt)"
grep -q "with TLS" info.txt || fail "nbdinfo does not report TLS: $(head -2 info.txt)"

SIZE=$((48 << 20))
random_file data.bin "$SIZE"
nbdcopy data.bin "$uri" || fail "nbdcopy into the TLS export failed"
nbdcopy "$uri" back.bin || fail "nbdcopy out of the TLS export failed"
cmp data.bin back.bin || fail "data read back over TLS differs"

# No TLS: refused before any export information is given.
expect_refused "plain client" nbdinfo "nbd+unix:///vol?socket=$sock"
grep -q "export-size" refused.out && fail "a plain client saw export details: $(cat refused.out)"
expect_refused "plain client, --list" nbdinfo --list "nbd+unix:///?socket=$sock"
expect_refused "wrong key" nbdinfo "nbds+unix://alice@/vol?socket=$sock&tls-psk-file=other.psk"
expect_refused "unknown user" nbdinfo "nbds+unix://mallory@/vol?socket=$sock&tls-psk-file=mallory.psk"
# The refused clients did not hurt the server.
nbdinfo --size "$uri" >size.txt || fail "server unusable after refused clients"
[ "$(cat size.txt)" = "$SIZE" ] || fail "size over TLS is $(cat size.txt), expected $SIZE"

bc detach vol >/dev/null || fail "detach failed"
bc cat vol.img --key-file key >offline.bin || fail "cat failed"
cmp data.bin offline.bin || fail "offline contents differ from what was written over TLS"

# Bad TLS options: one-line errors before anything is attached.
before=$(sha vol.img)
expect_exit 8 bc attach vol.img --key-file key --tls-psk missing.psk
printf 'not a key file\n' >junk.psk
expect_exit 2 bc attach vol.img --key-file key --tls-psk junk.psk
expect_exit 2 bc attach vol.img --key-file key --tls-psk keys.psk --tls-certificates .
expect_exit 2 bc attach vol.img --key-file key --tls-verify-peer
[ -z "$(bc list)" ] || fail "a refused attach left something attached: $(bc list)"
[ "$(sha vol.img)" = "$before" ] || fail "a refused attach changed the backing"

# Raw protocol checks against a TLS-only server (nbd_raw_client.py): no
# export details before STARTTLS, EXPORT_NAME hangs up, a broken TLS
# handshake ends only that connection.
bc attach vol.img --key-file key --tls-psk keys.psk >/dev/null || fail "re-attach failed"
timeout 60 /usr/bin/python3 "$TESTS_DIR/shell/nbd_raw_client.py" tls-required "$sock" vol 2>raw.err ||
	fail "$(tail -n 1 raw.err)"
nbdinfo --size "$uri" >size.txt || fail "server unusable after the raw TLS client"
[ "$(cat size.txt)" = "$SIZE" ] || fail "size over TLS is $(cat size.txt) after the raw client"
bc detach vol >/dev/null || fail "detach failed"

# The same from the tab file (boot-time attach): tls-psk= makes TLS mandatory.
echo "vol $TEST_TMP/vol.img $TEST_TMP/key tls-psk=$TEST_TMP/keys.psk" >tab
bc attach --from-tab vol --tab tab --batch >/dev/null || fail "attach --from-tab with tls-psk= failed"
nbdinfo --size "$uri" >size.txt || fail "TLS client refused by the tab-attached volume"
expect_refused "plain client (tab entry)" nbdinfo "nbd+unix:///vol?socket=$sock"
