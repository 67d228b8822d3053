#!/usr/bin/env bash
# Big requests on one NBD connection, with every number of serving threads
# that changes how they are shared out.  A READ or WRITE of 128 KiB or more
# is handed, with the buffer holding its payload, to a sleeping thread
# while the reader reads on (lib/nbd/nbd_conn.c); with --threads 1 nothing
# is ever handed over, with 2 at most one request waits, with 8 up to 7.
# For each: fio writes 128 KiB-2 MiB blocks at queue depth 16 with a FLUSH
# every 4 writes, and reads them all back (crc32c); after detach and
# re-attach with another thread count, everything verifies again.  A buffer
# given to the wrong request, or reused while its request still runs,
# fails the verify.  Last, a client that sends big WRITEs and hangs up
# without reading a reply leaves the daemon serving.
. "$(dirname "$0")/functions.sh"
requires fio python3
if ! fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd'; then
	echo "SKIP: $(basename "$0"): this fio has no nbd ioengine (fio --enghelp)" >&2
	exit 77
fi

VOLUME_SIZE=96M new_volume vol.img key
uri=$(nbd_uri vol)

cat >job.fio <<EOF2
[global]
ioengine=nbd
uri=$uri
rw=randwrite
bsrange=128k-2m
iodepth=16
fsync=4
size=64m
verify=crc32c
do_verify=1
verify_fatal=1
verify_dump=0
randseed=${RANDOM}
[big]
EOF2

run_fio() { fio_verified "$1" 1 $((64 << 20)) "${@:2}"; }

for threads in 1 2 8; do
	bc attach vol.img --key-file key --threads "$threads" >/dev/null || fail "attach --threads $threads failed"
	run_fio "write-$threads.json"
	bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
	# Written with THREADS, read back by another layout.
	bc attach vol.img --key-file key --threads $((threads == 8 ? 1 : 8)) >/dev/null || fail "re-attach failed"
	run_fio "reverify-$threads.json" --verify_only
	bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
done

# A raw client: "read OFF LEN" prints export bytes; "hangup" sends six
# 1 MiB WRITEs at offset 0, the start of a seventh, and hangs up without
# reading a reply.
cat >raw.py <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit("the server closed the connection")
        b += c
    return b
magic, opt, flags = struct.unpack(">QQH", recv(18))
s.sendall(struct.pack(">I", 1))                        # fixed newstyle
s.sendall(struct.pack(">QII", opt, 1, 3) + b"vol")     # NBD_OPT_EXPORT_NAME
recv(10 + 124)
def request(t, cookie, off, n, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, t, cookie, off, n) + payload)
if sys.argv[2] == "read":
    off, left = int(sys.argv[3]), int(sys.argv[4])
    while left:
        n = min(left, 4 << 20)
        request(0, off, off, n)
        m, err, cookie = struct.unpack(">IIQ", recv(16))
        if m != 0x67446698 or err or cookie != off:
            sys.exit("read at %d failed: magic %x error %d" % (off, m, err))
        sys.stdout.buffer.write(recv(n))
        off, left = off + n, left - n
else:
    mib = 1 << 20
    for i in range(6):
        request(1, i, i * mib, mib, b"\xa5" * mib)
    request(1, 9, 0, mib, b"\xa5" * 4096)
    s.close()
PY
raw() { python3 raw.py "$BLOCKCRYPT_RUN_DIR/vol.sock" "$@"; }

bc attach vol.img --key-file key --threads 8 >/dev/null || fail "attach failed"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$BLOCKCRYPT_RUN_DIR/vol.json")
before=$(raw read $((6 << 20)) $((58 << 20)) | sha256sum) || fail "reading the export failed"
raw hangup || fail "the hang-up client failed"
sleep 0.5
kill -0 "$pid" 2>/dev/null || fail "the daemon died after a client hung up in the middle of big WRITEs"
after=$(raw read $((6 << 20)) $((58 << 20)) | sha256sum) || fail "the daemon does not serve a new client after the hang-up"
[ "$before" = "$after" ] || fail "data outside the hung-up client's WRITEs changed"
note "hang-up: daemon alive, 58 MiB beyond the WRITEs unchanged"
exit 0
