#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Record real NBD client sessions as fuzz-nbd seed inputs.

    nbd_capture.py LISTEN_SOCKET SERVER_SOCKET OUT_PREFIX [VARIANT]

A Unix-socket proxy: every connection to LISTEN_SOCKET is passed on to
SERVER_SOCKET (e.g. `blockcrypt attach ... --socket`), and what the client
sends is written to OUT_PREFIX-N (N = 1, 2, ... per connection), preceded
by one byte VARIANT (default 1: the read-write export "fuzz" with
discards; see fuzz_nbd.c), which makes the file a fuzz-nbd input as is.
Runs until killed.  Used once to make corpus/fuzz-nbd/real-* (README.md).
"""
import os
import socket
import sys
import threading


def pump(src, dst, record=None):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                record.write(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(client, upstream_path, out_path, variant):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.connect(upstream_path)
    with open(out_path, "wb") as rec:
        rec.write(bytes([variant]))
        back = threading.Thread(target=pump, args=(upstream, client))
        back.start()
        pump(client, upstream, rec)
        back.join()
    client.close()
    upstream.close()


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    listen_path, upstream_path, prefix = sys.argv[1:4]
    variant = int(sys.argv[4]) if len(sys.argv) == 5 else 1
    if os.path.exists(listen_path):
        os.unlink(listen_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen_path)
    srv.listen(16)
    n = 0
    while True:
        client, _ = srv.accept()
        n += 1
        threading.Thread(target=serve, args=(client, upstream_path, f"{prefix}-{n}", variant),
                         daemon=True).start()


if __name__ == "__main__":
    main()
