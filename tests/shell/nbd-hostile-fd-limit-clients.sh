#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The control socket works when the descriptor table is full of real
# clients.  With the daemon's limit at 1024 and --max-connections above it,
# 1100 clients that complete the NBD handshake fill every descriptor: none
# of them is pending, so nothing can be closed to make room, and accept(2)
# fails with EMFILE for good.  The control thread must still answer:
# `blockcrypt status` reports the volume as responding with its clients,
# a plain `detach` refuses (clients are connected) and says so, and
# `detach --force` stops the daemon.  (nbd-hostile-fd-limit.sh floods with
# connections still in their handshake.)
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3
N=1100
ulimit -Sn 1024 # the daemon inherits it (soft: the client raises its own)
new_volume vol.img key
bc attach vol.img --key-file key --max-connections 5000 --handshake-timeout 600 >/dev/null || fail "attach failed"
PID=$(daemon_pid vol)
rm -f ready stop
/usr/bin/python3 - "$TESTS_DIR/shell" "$BLOCKCRYPT_RUN_DIR/vol.sock" "$N" >clients.out 2>clients.err <<'PY' &
import os, resource, sys, time
sys.path.insert(0, sys.argv[1])
import nbd_raw_client as raw
path, n = sys.argv[2], int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
socks, failed = [], 0
for i in range(n):
    try:
        s = raw.connect(path, timeout=2)
        socks.append(s)
        raw.greeting(s)
        raw.send(s, raw.struct.pack(">I", raw.FLAG_FIXED_NEWSTYLE | raw.FLAG_NO_ZEROES), "client flags")
        raw.go(s, "vol")
    except (OSError, SystemExit, Exception):
        failed += 1          # the daemon ran out of descriptors: expected
        if failed >= 5:
            break
print("connected %d, failed %d" % (len(socks), failed), flush=True)
open("ready", "w").close()
while not os.path.exists("stop"):
    time.sleep(0.1)
PY
CLIENTS=$!
cleanup_fn "touch '$TEST_TMP/stop'"
for _ in $(seq 1200); do [ -e ready ] && break; kill -0 "$CLIENTS" 2>/dev/null || break; sleep 0.1; done
[ -e ready ] || fail "the clients did not get going: $(cat clients.err)"
note "$(cat clients.out); daemon descriptors: $(ls "/proc/$PID/fd" | wc -l)"
[ "$(ls "/proc/$PID/fd" | wc -l)" -ge 1000 ] || fail "the descriptor table is not full: the test proves nothing"
sleep 1
timeout 20 "$BLOCKCRYPT" status vol --json >status.json 2>status.err || fail "status failed at the descriptor limit: $(cat status.err)"
/usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); sys.exit(0 if e.get("responding") and e.get("clients", 0) > 900 else 1)' status.json ||
	fail "status at the descriptor limit: $(cat status.json)"
expect_exit 9 timeout 20 "$BLOCKCRYPT" detach vol
[[ "$ERR" == *"NBD clients connected"* ]] || fail "detach did not say why it refused: $ERR"
timeout 30 "$BLOCKCRYPT" detach --force vol 2>detach.err || fail "detach --force failed at the descriptor limit: $(cat detach.err)"
gone "$PID" || fail "the daemon is still running after detach --force"
touch stop
wait "$CLIENTS" || true
exit 0
