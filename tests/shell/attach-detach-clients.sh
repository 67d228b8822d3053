#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# detach refuses (exit 9, one line saying how many) while NBD clients are
# connected, and the clients keep working; --force disconnects them (their
# requests in flight finish first) and the daemon is gone.  Once the
# clients have left, a plain detach works.  SIGTERM (systemd stopping the
# unit) does not wait for NBD clients.
. "$(dirname "$0")/functions.bash"
requires nbdinfo
requires_python_nbd
new_volume vol.img key

# client N: N connections held open until the file "release" appears; each
# writes and reads once before and once after.
client() {
	rm -f release ready
	/usr/bin/python3 - "$(nbd_uri vol)" "$1" >client.out 2>client.err <<'PY' &
import nbd, os, sys, time
uri, n = sys.argv[1], int(sys.argv[2])
hs = []
for i in range(n):
    h = nbd.NBD(); h.connect_uri(uri); hs.append(h)
    h.pwrite(bytes([65 + i]) * 4096, i * 4096)
open("ready", "w").close()
while not os.path.exists("release"):
    time.sleep(0.05)
for i, h in enumerate(hs):
    try:
        assert h.pread(4096, i * 4096) == bytes([65 + i]) * 4096
        print("served")
    except nbd.Error as e:
        print("error: %s" % e.string)
PY
	CLIENT=$!
	for _ in $(seq 200); do [ -e ready ] && return 0; sleep 0.05; done
	fail "client did not connect: $(cat client.err)"
}

bc attach vol.img --key-file key >/dev/null || fail "attach failed"
PID=$(daemon_pid vol)
client 2
expect_exit 9 bc detach vol
[[ "$ERR" == *"2 NBD clients connected"* ]] || fail "detach did not say how many clients: $ERR"
note "detach with clients: $ERR"
touch release; wait "$CLIENT" || fail "client failed: $(cat client.err)"
[ "$(grep -c '^served$' client.out)" = 2 ] || fail "the clients were not served after the refused detach: $(cat client.out)"
bc detach vol 2>err || fail "detach after the clients left failed: $(cat err)"
gone "$PID" || fail "daemon still alive after detach"

bc attach vol.img --key-file key >/dev/null || fail "attach failed"
PID=$(daemon_pid vol)
client 1
bc detach --force vol 2>err || fail "detach --force with a client failed: $(cat err)"
gone "$PID" || fail "daemon still alive after detach --force"
touch release; wait "$CLIENT" || true
grep -q '^error' client.out || fail "the client was still served after detach --force: $(cat client.out)"

bc attach vol.img --key-file key >/dev/null || fail "attach failed"
PID=$(daemon_pid vol)
client 1
kill -TERM "$PID"
gone "$PID" || fail "SIGTERM did not stop the daemon while an NBD client was connected"
touch release; wait "$CLIENT" || true
exit 0
