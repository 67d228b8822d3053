#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Many clients connecting at once all get in: with the daemon stopped
# (SIGSTOP, so nothing is accepted meanwhile), 300 clients connect to the
# Unix socket without blocking; the listen backlog (SOMAXCONN) must take
# them all -- a backlog of 64 used to refuse the 65th (EAGAIN).  Once the
# daemon runs again, a normal client is served.
. "$(dirname "$0")/functions.bash"
requires nbdinfo
new_volume vol.img key
bc attach vol.img --key-file key >/dev/null || fail "attach failed"
PID=$(daemon_pid vol)
kill -STOP "$PID"
cleanup_fn "kill -CONT $PID 2>/dev/null"
/usr/bin/python3 - "$BLOCKCRYPT_RUN_DIR/vol.sock" >burst.out 2>burst.err <<'PY' || { kill -CONT "$PID"; fail "$(cat burst.err)"; }
import socket, sys
socks, refused = [], 0
for i in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
        socks.append(s)
    except BlockingIOError:
        refused += 1
        s.close()
if refused:
    sys.exit("%d of 300 connections refused while the daemon was not accepting (listen backlog too small)" % refused)
print(len(socks))
for s in socks:
    s.close()
PY
kill -CONT "$PID"
[ "$(cat burst.out)" = 300 ] || fail "the burst did not connect 300 clients: $(cat burst.out)"
nbdinfo --size "$(nbd_uri vol)" >/dev/null || fail "the daemon does not serve after the burst"
bc detach vol >/dev/null 2>&1 || fail "detach failed"
exit 0
