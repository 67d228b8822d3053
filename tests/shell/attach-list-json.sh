#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# list --json / status --json describe attached volumes truthfully: '[]'
# when none; name, realpath of the backing, size, live blockcrypt pid,
# existing socket and FUSE file, live counters for each; status agrees
# with list.  A name or a backing already attached is refused (exit 9),
# detach of one leaves the other, a SIGKILLed daemon's entry is cleaned up
# and its leftover socket (outside the runtime directory) and dead FUSE
# mount do not block attaching it again; detach of an unknown name is exit 8.
. "$(dirname "$0")/functions.bash"
requires python3 nbdinfo

SIZE=$((48 * 1024 * 1024))
new_volume a.img key
cp a.img b.img   # more volumes, without paying for more formats
cp a.img c.img
mkdir mnt sub
# A SIGKILLed daemon leaves its FUSE mount behind; never leave it to rm -rf.
cleanup_fn '_detach_all; mountpoint -q "$TEST_TMP/mnt" && umount -l "$TEST_TMP/mnt"'
ln -s ../a.img sub/link-to-a.img   # attach through a symlink: backing must be the realpath

listj() { bc list --json >"$1" || fail "list --json failed"; }
# check_list FILE NAME...: FILE is a JSON array of exactly NAMEs, each entry right.
check_list() {
	local f=$1; shift
	python3 - "$f" "$PWD" "$SIZE" "$BLOCKCRYPT_RUN_DIR" "$@" <<'PY' || fail "list --json is wrong: $(cat "$f")"
import json, os, sys
f, cwd, size, rundir, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
entries = json.load(open(f))
err = []
def check(c, msg):
    if not c: err.append(msg)
check(isinstance(entries, list), "not an array")
got = sorted(e.get("name") for e in entries)
check(got == sorted(names), "names %s, expected %s" % (got, sorted(names)))
keys = {"name", "backing", "type", "cipher", "key_bits", "size", "sector_size", "uri", "socket",
        "listen", "fuse_file", "pid", "read_only", "discards", "clients", "fuse_open", "responding"}
for e in entries:
    n = e.get("name")
    check(keys <= set(e), "%s: missing keys %s" % (n, sorted(keys - set(e))))
    check(e.get("backing") == os.path.realpath(os.path.join(cwd, n + ".img")), "%s: backing %r" % (n, e.get("backing")))
    check(e.get("size") == size, "%s: size %r" % (n, e.get("size")))
    check(e.get("type") == "luks2", "%s: type %r" % (n, e.get("type")))
    check(e.get("responding") is True, "%s: responding %r" % (n, e.get("responding")))
    check(e.get("read_only") is False, "%s: read_only %r" % (n, e.get("read_only")))
    check(e.get("clients") == 0 and e.get("fuse_open") == 0, "%s: clients %r fuse_open %r" % (n, e.get("clients"), e.get("fuse_open")))
    pid = e.get("pid")
    try:
        comm = open("/proc/%d/comm" % pid).read().strip()
    except Exception as x:
        comm = repr(x)
    check(comm == "blockcrypt", "%s: pid %r is not a live blockcrypt (%s)" % (n, pid, comm))
    sock = {"a": os.path.join(rundir, "a.sock"), "b": os.path.join(cwd, "b.sock")}[n]
    check(e.get("socket") == sock, "%s: socket %r, expected %r" % (n, e.get("socket"), sock))
    check(os.path.exists(sock) and __import__("stat").S_ISSOCK(os.stat(sock).st_mode), "%s: no socket at %s" % (n, sock))
    check(e.get("uri") == "nbd+unix:///%s?socket=%s" % (n, sock), "%s: uri %r" % (n, e.get("uri")))
    check(e.get("listen") is None, "%s: listen %r" % (n, e.get("listen")))
    if n == "b":
        ff = os.path.join(cwd, "mnt", "b")
        check(e.get("fuse_file") == ff, "b: fuse_file %r" % e.get("fuse_file"))
        check(os.path.isfile(ff) and os.path.getsize(ff) == size, "b: FUSE file %s missing or wrong size" % ff)
    else:
        check(e.get("fuse_file") is None, "a: fuse_file %r" % e.get("fuse_file"))
for m in err:
    print("  " + m, file=sys.stderr)
sys.exit(1 if err else 0)
PY
}
# status_agrees NAME LISTFILE
status_agrees() {
	bc status "$1" --json >st.json || fail "status $1 --json failed"
	python3 - "$1" "$2" st.json <<'PY' || fail "status $1 --json disagrees with list --json: $(cat st.json)"
import json, sys
name, lst, st = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
sys.exit(0 if [e for e in lst if e["name"] == name] == [st] else 1)
PY
}

# Nothing attached: a valid, empty JSON array (also before the runtime dir exists).
listj l0.json
check_list l0.json
[ "$(tr -d ' \n' <l0.json)" = "[]" ] || fail "empty list is not '[]': $(cat l0.json)"

bc attach sub/link-to-a.img --name a --key-file key >/dev/null || fail "attach a failed"
bc attach b.img --key-file key --socket "$PWD/b.sock" --fuse mnt >/dev/null || fail "attach b failed"
listj l2.json
check_list l2.json a b
status_agrees a l2.json
status_agrees b l2.json
pid_b=$(python3 -c 'import json,sys; print([e["pid"] for e in json.load(open(sys.argv[1])) if e["name"] == "b"][0])' l2.json)

# Already attached: the same name (a free backing), the same backing (other name).
expect_exit 9 bc attach c.img --name a --key-file key
note "same name: $ERR"
expect_exit 9 bc attach a.img --name other --key-file key
note "same backing: $ERR"
expect_exit 9 bc attach sub/link-to-a.img --name other2 --key-file key
listj l2b.json
check_list l2b.json a b

# A daemon that does not answer (stopped): status still reports the
# entry, says it is not responding, and leaves out the live fields.
pid_a=$(python3 -c 'import json,sys; print([e["pid"] for e in json.load(open(sys.argv[1])) if e["name"] == "a"][0])' l2.json)
kill -STOP "$pid_a"
cleanup_fn "kill -CONT $pid_a 2>/dev/null"
bc status a --json >stopped.json 2>stopped.err || fail "status of a stopped daemon failed: $(cat stopped.err)"
kill -CONT "$pid_a"
python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
sys.exit(0 if e.get("responding") is False and "clients" not in e and e.get("name") == "a" else 1)' stopped.json ||
	fail "status of a stopped daemon: $(cat stopped.json)"

bc detach a 2>detach.err || fail "detach a failed: $(cat detach.err)"
listj l1.json
check_list l1.json b

# A daemon that dies without cleaning up: its entry disappears from list.
kill -9 "$pid_b"
# Wait until it is reaped (PID 1 may take a few seconds to reap the zombie).
wait_for 10 test ! -e "/proc/$pid_b" || fail "daemon $pid_b still exists 10 s after kill -9"
listj lk.json
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])))' lk.json)" = "[]" ] ||
	fail "list --json still shows the killed daemon: $(cat lk.json)"
[ -S b.sock ] || fail "test premise: the killed daemon's socket should be left behind"
# list cleared the dead daemon's own runtime files (its state, its control
# socket); the NBD socket given with --socket lives elsewhere and stays.
for f in b.json b.ctl; do
	[ ! -e "$BLOCKCRYPT_RUN_DIR/$f" ] || fail "list left the killed daemon's $f behind"
done
# ... and neither its socket nor its dead FUSE mount blocks attaching again.
bc attach b.img --key-file key --socket "$PWD/b.sock" --fuse mnt >/dev/null 2>attach.err ||
	fail "re-attach after kill -9 failed: $(cat attach.err)"
nbdinfo "nbd+unix:///b?socket=$PWD/b.sock" >/dev/null || fail "re-attached b does not serve NBD"
listj lr.json
check_list lr.json b

expect_exit 8 bc detach nosuch
note "unknown name: $ERR"
exit 0
