#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Relative paths given to attach mean the caller's working directory, even
# though the daemon runs elsewhere: VOLUME, --socket and --fuse DIR.  The
# socket is created there, and the printed URI, socket and FUSE path (and
# list --json) are absolute, so they work from any directory.
. "$(dirname "$0")/functions.bash"
requires nbdinfo python3

new_volume vol.img key
mkdir mnt
out=$(bc attach vol.img --key-file key --socket rel.sock --fuse mnt) || fail "attach with relative paths failed"
want="nbd+unix:///vol?socket=$PWD/rel.sock"$'\n'"$PWD/mnt/vol"
[ "$out" = "$want" ] || fail "attach printed '$out', expected '$want'"
[ -S rel.sock ] || fail "no socket at $PWD/rel.sock (relative --socket resolved against another directory?)"
(cd / && nbdinfo "nbd+unix:///vol?socket=$TEST_TMP/rel.sock" >/dev/null) || fail "cannot reach the export through $PWD/rel.sock"
first=$(head -1 <<<"$out")
(cd / && nbdinfo "$first" >/dev/null) || fail "the printed URI '$first' does not work from another directory"
[ -f mnt/vol ] || fail "no FUSE file at $PWD/mnt/vol"

bc list --json >l.json || fail "list --json failed"
python3 - l.json "$PWD" <<'PY' || fail "list --json paths are wrong: $(cat l.json)"
import json, sys
e, cwd = json.load(open(sys.argv[1]))[0], sys.argv[2]
want = {"backing": cwd + "/vol.img", "socket": cwd + "/rel.sock", "fuse_file": cwd + "/mnt/vol",
        "uri": "nbd+unix:///vol?socket=%s/rel.sock" % cwd}
bad = {k: e.get(k) for k in want if e.get(k) != want[k]}
if bad: print("  wrong: %r" % bad, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
[ ! -e rel.sock ] || fail "detach left the socket $PWD/rel.sock behind"
exit 0
