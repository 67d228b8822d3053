#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A client that pipelines READs (32 x 1 MiB) and never reads the replies
# (slow or malicious; nbd_raw_client.py no-read) must hurt nobody but
# itself:
#  1. while it sits there, another client's 4 KiB READ completes (10 s max);
#  2. `blockcrypt detach`, with it still sitting there, refuses at once
#     (exit 9: a client is connected), and `detach --force` completes (the
#     server disconnects its clients) within 45 s;
#  3. the data is intact.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3 cmp
requires_python_nbd
find_raw_client

random_volume 'slow reader passphrase' 48M

NAME=slow
attach_as "$NAME"

note "a client pipelines 32 READs of 1 MiB and reads no reply"
timeout 400 /usr/bin/python3 "$RAW" no-read "$SOCK" "$NAME" 32 1048576 noread.ready noread.stop 2>noread.err &
HOSTILE=$!
# shellcheck disable=SC2016 # expanded when the hook runs
cleanup_fn '[ -z "$HOSTILE" ] || kill "$HOSTILE" 2>/dev/null'
wait_ready noread.ready "$HOSTILE" || fail "the non-reading client could not be set up: $(tail -n 1 noread.err)"
sleep 1 # let the server get stuck, if it does

note "another client reads meanwhile"
rc=0
timeout 60 /usr/bin/python3 - "$URI" expected.raw <<'EOF' 2>good.err || rc=$?
import os, sys, threading, time
import nbd
uri, exp = sys.argv[1], open(sys.argv[2], "rb").read()
res = {}
def run():
    try:
        h = nbd.NBD()
        h.connect_uri(uri)
        t0 = time.monotonic()
        res["data"] = bytes(h.pread(4096, 12288))
        res["secs"] = time.monotonic() - t0
    except nbd.Error as e:
        res["err"] = e.string
t = threading.Thread(target=run, daemon=True)
t.start()
t.join(10)
if t.is_alive():
    print("a 4 KiB READ from another client did not complete within 10 s "
          "(the server is stuck sending to the client that does not read)", file=sys.stderr)
    os._exit(1)
if "err" in res:
    sys.exit(f"another client's READ failed: {res['err']}")
if res["data"] != exp[12288:12288 + 4096]:
    sys.exit("another client's READ returned other data than the volume holds")
EOF
[ "$rc" = 0 ] || problem "1: $(tail -n 1 good.err)"

note "detach while the non-reading client is still connected"
# A plain detach refuses while a client is connected (exit 9, quickly,
# even though that client is stuck); --force must get through.
rc=0
timeout 45 "$BLOCKCRYPT" detach "$NAME" >detach.out 2>&1 || rc=$?
[ "$rc" = 9 ] || problem "2: a plain detach with a client connected exited $rc, expected 9: $(tail -n 1 detach.out)"
grep -q "1 NBD client connected" detach.out || problem "2: detach did not say a client is connected: $(tail -n 1 detach.out)"
rc=0
timeout 45 "$BLOCKCRYPT" detach --force "$NAME" >detach.out 2>&1 || rc=$?
if [ "$rc" = 124 ]; then
	problem "2: detach did not complete within 45 s while a client does not read its replies"
elif [ "$rc" != 0 ] && kill -0 "$PID" 2>/dev/null; then
	# (detach may also fail with "Broken pipe" on its control socket while
	# the daemon goes anyway: that is not this test's business.)
	for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$PID" 2>/dev/null && problem "2: detach failed and the daemon is still running: $(tail -n 1 detach.out)"
fi

touch noread.stop
wait "$HOSTILE" || true
HOSTILE=
# If detach is stuck, the daemon goes once the hostile client has gone.
for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "the daemon is still running 30 s after the hostile client left (log: $(tail -n 3 "$BLOCKCRYPT_RUN_DIR/$NAME.log"))"

bc cat v.img --key-file key >after.raw || fail "cat after detach failed"
cmp after.raw expected.raw >cmp.out 2>&1 || problem "3: the volume changed: $(head -n 1 cmp.out)"

check_problems
exit 0
