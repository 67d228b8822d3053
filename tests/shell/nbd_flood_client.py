#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Idle-connection flood for the nbd-hostile-*.sh tests (not a test itself).

nbd_flood_client.py HOST PORT N READY_FILE STOP_FILE [PER_SECOND]
Raises its own descriptor limit, opens N TCP connections that never send
a byte, touches READY_FILE, then watches them until STOP_FILE appears (at
most 300 s), meanwhile opening PER_SECOND more idle connections a second
(default 0; not counted below: they keep the server busy accepting), and
prints one line:
  opened N closed M last_close_s T
M: connections the server has closed by then (EOF or reset), T: seconds
from READY_FILE to the last close seen (-1: none)."""
import errno
import os
import resource
import select
import socket
import sys
import time

host, port, n, ready, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
per_second = float(sys.argv[6]) if len(sys.argv) > 6 else 0
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 256 + int(per_second * 300)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))

socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect((host, port))
    except OSError as e:
        sys.exit(f"connection {i}: {e}")
    s.setblocking(False)
    socks.append(s)
t0 = time.monotonic()
open(ready, "w").close()

poller = select.poll()
by_fd = {}
for s in socks:
    poller.register(s, select.POLLIN)
    by_fd[s.fileno()] = s
closed, last = 0, -1.0
deadline = t0 + 300
more = []
while not os.path.exists(stop) and time.monotonic() < deadline:
    while per_second and len(more) < (time.monotonic() - t0) * per_second:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        more.append(s)
    for fd, ev in poller.poll(10 if per_second else 200):
        s = by_fd[fd]
        try:
            data = s.recv(4096)
        except BlockingIOError:
            continue
        except OSError as e:
            data = b"" if e.errno in (errno.ECONNRESET, errno.EPIPE) else None
        if data == b"":  # the server hung up
            poller.unregister(fd)
            closed += 1
            last = time.monotonic() - t0
print(f"opened {len(socks)} closed {closed} last_close_s {last:.2f}", flush=True)
