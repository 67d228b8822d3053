#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Progress of the commands that move data (format's wipe, write, cat):
# --progress prints bytes, rate and ETA on stderr and ends at 100 %;
# --progress-json prints lines with cryptsetup's keys, each valid JSON, the
# last one at the full size; none of it reaches standard output (cat's
# data stays byte-exact); --no-progress and a non-terminal stderr print
# nothing.  cat refuses to write the decrypted bytes to a terminal unless
# --force.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 cmp

VOLUME_SIZE=24M new_volume vol.img key
random_file data $((8 * 1024 * 1024))

# write --progress: a line with 100.0%, MiB/s and ETA; the data lands.
bc write vol.img --key-file key --progress <data 2>w.err || fail "write --progress failed: $(cat w.err)"
tr '\r' '\n' <w.err | grep -q '^Writing: 100.0%  8/8 MiB .* MiB/s  ETA 0:00$' ||
	fail "write --progress: no final line with 100.0%, 8/8 MiB, rate and ETA: $(tr '\r' '\n' <w.err)"
# A stream of unknown size: the bytes, and a last line at what was written.
cat data | bc write vol.img --key-file key --progress 2>p.err >/dev/null || fail "write from a pipe failed: $(cat p.err)"
tr '\r' '\n' <p.err | grep -q '^Writing: 100.0%  8/8 MiB' || fail "write from a pipe: no final line: $(tr '\r' '\n' <p.err)"

# cat --progress-json: JSON lines on stderr, the data on stdout unchanged.
bc cat vol.img --key-file key --progress-json >out 2>c.err || fail "cat --progress-json failed: $(cat c.err)"
head -c 8388608 out | cmp -s - data || fail "cat --progress-json: the data on stdout differs"
size=$(stat -c %s out)
/usr/bin/python3 - "$size" c.err <<'PY' || fail "cat --progress-json: bad JSON lines: $(cat c.err)"
import json, sys
size, lines = sys.argv[1], open(sys.argv[2]).read().splitlines()
assert lines, "no lines"
recs = [json.loads(l) for l in lines]
for r in recs:
    assert set(r) == {"device", "device_bytes", "device_size", "speed", "eta_ms", "time_ms"}, r
    assert all(isinstance(v, str) for v in r.values()), r
    assert r["device"] == "vol.img" and r["device_size"] == size, r
assert recs[0]["device_bytes"] == "0", recs[0]
assert recs[-1]["device_bytes"] == size and recs[-1]["eta_ms"] == "0", recs[-1]
assert [int(r["device_bytes"]) for r in recs] == sorted(int(r["device_bytes"]) for r in recs)
PY

# format --progress-json: the wipe, from 0 to the data area's size.
bc format new.img --batch --key-file key --size 20M "${FAST_KDF[@]}" --progress-json 2>f.err >/dev/null ||
	fail "format --progress-json failed: $(cat f.err)"
/usr/bin/python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]; sys.exit(0 if r[0]["device_bytes"] == "0" and r[-1]["device_bytes"] == r[-1]["device_size"] != "0" else 1)' f.err ||
	fail "format --progress-json: not from 0 to the full size: $(cat f.err)"

# Not on a terminal, no --progress: nothing; --no-progress: nothing.
bc cat vol.img --key-file key 2>q.err >/dev/null || fail "cat failed"
[ ! -s q.err ] || fail "progress printed to a non-terminal without --progress: $(cat q.err)"
bc write vol.img --key-file key --progress --no-progress <data 2>n.err || fail "write --no-progress failed"
grep -q 'Writing' n.err && fail "--no-progress still printed progress: $(cat n.err)"

# cat to a terminal: refused (exit 2, one line) unless --force (a small
# plain volume: a terminal takes bytes slowly).
random_file small.img 65536
head -c 32 data >raw.key
/usr/bin/python3 - "$BLOCKCRYPT" <<'PY' || fail "cat on a terminal: see above"
import os, pty, sys, select
def run(args):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.argv[1], [sys.argv[1]] + args)
    out = b""
    while True:
        try:
            r, _, _ = select.select([fd], [], [], 30)
            if not r:
                break
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out
rc, out = run(["cat", "small.img", "--type", "plain", "--key-file", "raw.key"])
if rc != 2 or b"terminal" not in out or len(out) > 300:
    sys.exit(f"cat to a terminal: exit {rc}, {len(out)} bytes: {out[:200]!r}")
rc, out = run(["cat", "small.img", "--type", "plain", "--key-file", "raw.key", "--force"])
if rc != 0 or len(out) < 65536:
    sys.exit(f"cat --force to a terminal: exit {rc}, {len(out)} bytes")
PY
exit 0
