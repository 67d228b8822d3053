#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A raw-socket NBD client (nbd_raw_client.py: no libnbd, says what a real
# client never would) against `blockcrypt attach`.  What must hold:
#  (a) a request with a bad magic: that connection is dropped, nothing else;
#      a good client connected meanwhile keeps reading and writing;
#  (b) unknown command types: simple reply, error EINVAL, connection usable;
#  (c) a client vanishing mid-WRITE (0, 100 or 4095 of 4096 bytes sent): no
#      reply, connection dropped, none of that data applied, a good client
#      connected meanwhile unaffected; a client hanging up before the
#      replies to its 32 MiB READs does not hurt the daemon;
#  (d) handshake abuse: unknown client flags, an option announcing 1 GiB or
#      4 GiB, a bad option magic, EXPORT_NAME of an unknown export -> the
#      server hangs up (without waiting for the announced data); malformed
#      GO/INFO -> ERR_INVALID, unknown options -> ERR_UNSUP, a 1 MiB option
#      -> ERR_TOO_BIG, LIST with data -> ERR_INVALID, and each time a
#      proper GO still works afterwards; ABORT -> ACK and close;
#      EXPORT_NAME pads with 124 zeroes unless NO_ZEROES was negotiated;
#      metadata contexts out of order or malformed (before STRUCTURED_REPLY,
#      bad lengths, oversized or unknown queries, unknown export) get
#      ERR_INVALID / ERR_TOO_BIG / ERR_UNKNOWN or select nothing, and
#      BLOCK_STATUS without a context, of length 0 or beyond the end gets
#      EINVAL, while REQ_ONE and DF replies keep to the spec;
#  (e) 50 clients idle after GO, 10 stalled mid-handshake and 5 stalled in
#      the middle of a WRITE payload do not keep a normal client (nbdcopy,
#      in and out) from working; the idle ones still serve a READ when they
#      wake up, and the cut WRITEs are never applied;
#  (f) an unknown command announcing 0xffffffff bytes is answered EINVAL at
#      once (no payload is awaited), and a READ sent right behind it in the
#      same packet is served.
# After every case the daemon must be alive and the whole device must read
# back as expected; after detach, `blockcrypt cat` must match the image of
# everything the good clients wrote.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3 nbdcopy cmp
requires_python_nbd
find_raw_client

random_volume 'hostile raw passphrase' 24M

NAME=raw
attach_as "$NAME"

# still_serving CASE: the daemon lives and a fresh client reads the whole
# device as expected.  Without that, going on makes no sense.
still_serving() {
	local rc=0
	kill -0 "$PID" 2>/dev/null ||
		fail "after $1: the daemon died (log: $(tail -n 5 "$BLOCKCRYPT_RUN_DIR/$NAME.log"))"
	timeout 30 /usr/bin/python3 - "$URI" expected.raw <<'EOF' 2>serve.err || rc=$?
import sys, nbd
uri, exp = sys.argv[1], open(sys.argv[2], "rb").read()
h = nbd.NBD()
h.connect_uri(uri)
if h.get_size() != len(exp):
    sys.exit(f"export size {h.get_size()} != {len(exp)}")
for off in range(0, len(exp), 1 << 20):
    got = h.pread(min(1 << 20, len(exp) - off), off)
    if got != exp[off:off + len(got)]:
        i = next(i for i in range(len(got)) if got[i] != exp[off + i])
        sys.exit(f"device differs from the expected image at byte {off + i}")
h.shutdown()
EOF
	[ "$rc" != 124 ] || fail "after $1: a fresh client hung reading the device"
	[ "$rc" = 0 ] || fail "after $1: a fresh client cannot read the device as expected: $(tail -n 1 serve.err)"
}

# raw SCENARIO ARGS...: one scenario of the raw client (30 s at most).
raw() {
	local rc=0
	timeout 30 /usr/bin/python3 "$RAW" "$1" "$SOCK" "$NAME" "${@:2}" 2>raw.err || rc=$?
	if [ "$rc" = 124 ]; then
		problem "$*: the raw client hung for 30 s"
	elif [ "$rc" != 0 ]; then
		problem "$*: $(tail -n 1 raw.err | sed 's/^FAIL: [^:]*: //')"
	fi
	still_serving "$*"
}

# py_case CASE < BODY: python (libnbd good client + raw client) with the
# helpers below; the expected image is saved only when BODY succeeds.
PRELUDE='
import os, sys, time
import nbd
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.environ["RAW"]))
import nbd_raw_client as raw
sock, name, uri, exp_path = sys.argv[1:5]
exp = bytearray(open(exp_path, "rb").read())
def good_client():
    h = nbd.NBD()
    h.connect_uri(uri)
    return h
def check_range(h, off, n, what):
    got = h.pread(n, off)
    if bytes(got) != bytes(exp[off:off + n]):
        raise raw.Fail(f"{what}: the {n} bytes at {off} are not what they should be")
def good_roundtrip(h, off, n, what):
    pat = os.urandom(n)
    h.pwrite(pat, off)
    if bytes(h.pread(n, off)) != pat:
        raise raw.Fail(f"{what}: good client read back other data than it wrote at {off}")
    exp[off:off + n] = pat
'
py_case() {
	local rc=0 what=$1
	{ printf '%s\n' "$PRELUDE"; cat; printf '%s\n' 'open(exp_path, "wb").write(exp)'; } >case.py
	RAW=$RAW timeout 60 /usr/bin/python3 case.py "$SOCK" "$NAME" "$URI" expected.raw 2>case.err || rc=$?
	[ "$rc" != 124 ] || fail "$what: hung for 60 s"
	[ "$rc" = 0 ] || fail "$what: $(tail -n 1 case.err)"
	still_serving "$what"
}

note "(a) bad request magic: that connection is dropped, a good one goes on"
py_case "bad magic" <<'EOF'
good = good_client()
good_roundtrip(good, 65536 + 17, 10000, "before the bad magic")
raw.sc_bad_magic(sock, name)
check_range(good, 65536 + 17, 10000, "good client after the bad magic")
good_roundtrip(good, 200000, 5000, "after the bad magic")
good.shutdown()
EOF

note "(b) unknown command types -> EINVAL, connection usable"
raw unknown-cmd

note "(f) unknown command with length 0xffffffff -> EINVAL at once"
raw unknown-cmd-huge

note "(c) client vanishing mid-WRITE: nothing applied, others unaffected"
py_case "vanishing writer" <<'EOF'
good = good_client()
good_roundtrip(good, 1 << 20, 8192, "before the vanishing writer")
for off, sent in ((3 << 20, 0), (3 << 20, 100), ((3 << 20) + 4096, 4095), (1 << 20, 4095)):
    raw.sc_vanish_write(sock, name, off, sent)
    time.sleep(0.2)
    check_range(good, off, 4096, f"WRITE at {off} cut after {sent} of 4096 bytes")
check_range(good, 1 << 20, 8192, "good client's data after the vanishing writers")
good_roundtrip(good, (2 << 20) + 1, 4096, "after the vanishing writers")
good.shutdown()
EOF

note "(d) handshake abuse"
raw bad-cflags 0xffffffff
raw bad-cflags 0x4
raw huge-option 0x40000000
raw huge-option 0xffffffff
raw bad-option-magic
raw vanish-option
raw tls-policy
raw big-option
raw go-invalid
raw go-unknown-export
raw unknown-option
raw export-name-wrong
raw export-name-ok
raw abort
raw list
raw meta-context

note "(c') client vanishing before the replies to its 32 MiB READs"
raw vanish-read

note "(e) 50 idle clients, 10 stalled handshakes, 5 stalled WRITEs; nbdcopy in and out"
rm -f idle.ready idle.stop
timeout 400 /usr/bin/python3 "$RAW" idle "$SOCK" "$NAME" 50 10 5 idle.ready idle.stop 2>idle.err &
IDLE=$!
# shellcheck disable=SC2016 # expanded when the hook runs
cleanup_fn '[ -z "$IDLE" ] || kill "$IDLE" 2>/dev/null'
wait_ready idle.ready "$IDLE" || fail "(e) the idle connections could not all be set up: $(tail -n 1 idle.err)"
random_file copy.raw "$SIZE"
timeout 60 nbdcopy copy.raw "$URI" 2>nbdcopy.err ||
	problem "(e) nbdcopy into the export failed beside 65 stalled clients: $(tail -n 1 nbdcopy.err)"
timeout 60 nbdcopy "$URI" copied.raw 2>nbdcopy.err ||
	problem "(e) nbdcopy out of the export failed beside 65 stalled clients: $(tail -n 1 nbdcopy.err)"
cmp copy.raw copied.raw >/dev/null 2>&1 || problem "(e) nbdcopy read back other data than it wrote"
cp copy.raw expected.raw
touch idle.stop
rc=0
wait "$IDLE" || rc=$?
IDLE=
[ "$rc" != 124 ] || problem "(e) the idle clients hung when woken up"
[ "$rc" = 0 ] || [ "$rc" = 124 ] || problem "(e) $(tail -n 1 idle.err)"
still_serving "(e) idle clients"

check_problems

kill -0 "$PID" 2>/dev/null || fail "the daemon died before detach"
detach_and_wait "$NAME" "$PID"
bc cat v.img --key-file key >after.raw || fail "cat after detach failed"
cmp after.raw expected.raw >cmp.out 2>&1 ||
	fail "the volume holds other data than the good clients wrote: $(head -n 1 cmp.out)"
exit 0
