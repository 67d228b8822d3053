#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What goes wrong for a client is in the daemon's log, rate-limited: a
# failed TLS handshake (a client with the wrong pre-shared key), and an I/O
# error returned to a client (the backing was truncated under the daemon:
# reads past its new end fail with EIO).  Twenty failures in a row give one
# line of each kind, not twenty; the client gets the error, and the daemon
# keeps serving.  (Failed flushes: durability-writeback-error.sh.)
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/tls-lib.bash"
requires nbdinfo psktool truncate
requires_python_nbd
VOLUME_SIZE=24M new_volume vol.img key
psktool -u alice -p keys.psk >/dev/null 2>&1 || fail "psktool failed"
psktool -u alice -p other.psk >/dev/null 2>&1 || fail "psktool failed"
bc attach vol.img --key-file key --tls-psk keys.psk >/dev/null || fail "attach failed"
LOG=$BLOCKCRYPT_RUN_DIR/vol.log
sock=$BLOCKCRYPT_RUN_DIR/vol.sock
uri="nbds+unix://alice@/vol?socket=$sock&tls-psk-file=keys.psk"

# --- failed TLS handshakes ------------------------------------------------
for _ in $(seq 20); do
	expect_refused "wrong key" nbdinfo "nbds+unix://alice@/vol?socket=$sock&tls-psk-file=other.psk"
done
n=$(grep -c "TLS handshake failed" "$LOG" || true)
[ "$n" = 1 ] || fail "20 failed TLS handshakes gave $n log lines, expected 1 (rate-limited): $(cat "$LOG")"
note "log: $(grep "TLS handshake failed" "$LOG")"

# --- I/O errors ----------------------------------------------------------------
off=$(data_offset vol.img)
truncate -s $((off + (1 << 20))) vol.img     # the device's last 7 MiB are gone
/usr/bin/python3 - "$uri" >io.out 2>io.err <<'PY' || fail "I/O part: $(cat io.err)"
import errno, nbd, sys
h = nbd.NBD()
h.set_uri_allow_local_file(True)      # the tls-psk-file in the URI
h.connect_uri(sys.argv[1])
failed = 0
for i in range(20):
    try:
        h.pread(4096, (4 << 20) + i * 4096)
    except nbd.Error as e:
        if e.errnum != errno.EIO:
            sys.exit("a read past the truncated end failed with %s, not EIO" % e.string)
        failed += 1
if failed != 20:
    sys.exit("only %d of 20 reads past the truncated end failed" % failed)
h.pread(4096, 0)                      # the part that is still there serves
print("ok")
PY
grep -qx ok io.out || fail "the I/O part did not run to its end"
n=$(grep -c "READ of 4096 bytes at [0-9]* failed" "$LOG" || true)
[ "$n" = 1 ] || fail "20 failed reads gave $n log lines, expected 1 (rate-limited): $(cat "$LOG")"
note "log: $(grep "READ of 4096" "$LOG")"
bc detach vol >/dev/null 2>&1 || fail "detach failed"
exit 0
