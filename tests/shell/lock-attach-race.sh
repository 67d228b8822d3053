#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Attaches racing each other end with exactly one daemon per backing, all
# of them listed, nothing orphaned.  30 attaches start at once: 10 of one
# name on backing A (as blockcrypt-all.service and blockcrypt@NAME may),
# 10 of different names on backing B, and 10 of one name on ten different
# backings (only the name claim can keep those apart).  Then: every winner is listed
# and serving, every loser exited 9 with one line, no blockcrypt process
# runs but the listed daemons, and the runtime directory holds only the
# winners' files.  Also one volume per --fuse DIR: a second attach with the
# same directory, or with a directory that is already a mount point, exits
# 9 and the first volume's file stays reachable.
. "$(dirname "$0")/functions.bash"
requires nbdinfo mountpoint
new_volume a.img key
new_volume b.img key
for i in $(seq 10); do cp a.img "c$i.img"; done   # same key, ten backings

for i in $(seq 10); do
	bc attach a.img --key-file key --name same >"out.a$i" 2>"err.a$i" &
	echo $! >"pid.a$i"
	bc attach b.img --key-file key --name "b$i" >"out.b$i" 2>"err.b$i" &
	echo $! >"pid.b$i"
	bc attach "c$i.img" --key-file key --name cname >"out.c$i" 2>"err.c$i" &
	echo $! >"pid.c$i"
done
wins=()
for f in pid.*; do
	id=${f#pid.}
	rc=0; wait "$(cat "$f")" || rc=$?
	case $rc in
	0) wins+=("$id") ;;
	9) [ "$(wc -l <"err.$id")" = 1 ] || fail "attach $id: not one line: $(cat "err.$id")" ;;
	*) fail "attach $id exited $rc: $(cat "err.$id")" ;;
	esac
done
note "winners: ${wins[*]}; e.g. $(cat err.a* err.b* err.c* 2>/dev/null | sort -u | head -3 | tr '\n' ' ')"
[ "${#wins[@]}" = 3 ] || fail "expected 3 winners (one per backing, one for the name cname), got ${#wins[@]}: ${wins[*]}"

bc list --json >list.json || fail "list failed"
names=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(e["name"] for e in json.load(open(sys.argv[1])))))' list.json)
pids=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(str(e["pid"]) for e in json.load(open(sys.argv[1])))))' list.json)
[ "$(wc -w <<<"$names")" = 3 ] || fail "list shows '$names', expected three volumes"
[[ " $names " == *" same "* ]] || fail "the winner of the same-name race is not listed: $names"
[[ " $names " == *" cname "* ]] || fail "the winner of the same-name race on ten backings is not listed: $names"
for n in $names; do
	nbdinfo --size "$(nbd_uri "$n")" >/dev/null || fail "$n is listed but does not serve"
done
# ours: blockcrypt processes of this test (other tests may run meanwhile).
ours() {
	local p
	for p in $(pgrep -x blockcrypt || true); do
		{ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qxF "BLOCKCRYPT_RUN_DIR=$BLOCKCRYPT_RUN_DIR" && echo "$p" || true
	done | sort | tr '\n' ' '
}
# No other blockcrypt process is left (losers gone, no orphaned daemon).
others=$(ours)
[ "$others" = "$pids " ] || fail "blockcrypt processes '$others', but only '$pids' are listed"
# Only the winners' files in the runtime directory.
for f in "$BLOCKCRYPT_RUN_DIR"/*; do
	base=$(basename "$f")
	case " $names " in *" ${base%.*} "*) ;; *) fail "runtime file of a loser left behind: $base" ;; esac
done
bc detach --all >/dev/null 2>&1 || fail "detach --all failed"
[ -z "$(ours)" ] || fail "a daemon outlived detach --all: $(ours)"

# --- one volume per --fuse DIR -----------------------------------------------
requires_fuse
mkdir fdir
bc attach a.img --key-file key --name fa --fuse fdir >/dev/null || fail "attach --fuse failed"
expect_exit 9 bc attach b.img --key-file key --name fb --fuse fdir
note "second volume on the same --fuse DIR: $ERR"
[ -f fdir/fa ] || fail "the first volume's FUSE file is hidden"
[ ! -e "$BLOCKCRYPT_RUN_DIR/fb.json" ] || fail "the refused attach left a state file"
mkdir mnt2
mount -t tmpfs -o size=1m tmpfs mnt2 || fail "cannot mount a tmpfs"
cleanup_fn "umount -l '$TEST_TMP/mnt2'"
expect_exit 9 bc attach b.img --key-file key --name fb --fuse mnt2
note "--fuse on a mount point: $ERR"
bc detach fa >/dev/null 2>&1 || fail "detach failed"
mountpoint -q fdir && fail "fdir still mounted after detach"
bc attach b.img --key-file key --name fb --fuse fdir >/dev/null || fail "attach on the freed --fuse DIR failed"
bc detach fb >/dev/null 2>&1 || fail "detach failed"
exit 0
