#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The runtime directory is trusted only if it (and every parent) is owned
# by the caller or root and writable by nobody else; inside it, nothing is
# followed through a symlink and no path read from a state file is ever
# deleted.  Refused: a run dir owned by another user, a 1777 or 0770 one,
# one under a world-writable (not sticky) parent.  Handled safely: planted
# symlinks NAME.log, NAME.json.tmp, NAME.json pointing at victim files, a
# planted state file whose socket path climbs out with '..', and names
# with '..' or '/' given to status, detach and resize.  The victim files,
# outside the runtime directory, are hashed before and after.  State files
# are 0600.
. "$(dirname "$0")/functions.bash"
requires sha256sum stat python3

new_volume vol.img key
RUN=$BLOCKCRYPT_RUN_DIR
mkdir -p victim
printf '{"name": "victim", "pid": 1}\n' >victim/victim.json # valid JSON: old code went on to delete
printf 'victim socket stand-in\n' >victim/victim.ctl
printf 'victim socket stand-in\n' >victim/victim.sock
printf 'victim log\n' >victim/log
printf 'victim tmp\n' >victim/tmp
printf '{"victim": 1}\n' >victim/state
victims() { (cd victim && find . -printf '%p %y %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort) | sha256sum; }
BEFORE=$(victims)
check_victims() { [ "$(victims)" = "$BEFORE" ] || fail "$1: a file outside the runtime directory changed: $(ls -l victim)"; }

# refused DIR WHAT: attach and list refuse DIR as the runtime directory
# (one line, naming DIR) and create nothing in it.
refused() {
	local dir=$1 what=$2
	# (a build that wrongly accepts DIR must not leave its daemon behind)
	cleanup_fn "BLOCKCRYPT_RUN_DIR='$dir' '$BLOCKCRYPT' detach --all --force >/dev/null 2>&1"
	expect_exit 6 env BLOCKCRYPT_RUN_DIR="$dir" "$BLOCKCRYPT" attach vol.img --key-file key --name t
	case $ERR in *"$what"*) ;; *) fail "attach with run dir $dir: expected '$what' in: $ERR" ;; esac
	note "$dir: $ERR"
	expect_exit 6 env BLOCKCRYPT_RUN_DIR="$dir" "$BLOCKCRYPT" list
	expect_exit 6 env BLOCKCRYPT_RUN_DIR="$dir" "$BLOCKCRYPT" status t
	[ -z "$(ls -A "$dir")" ] || fail "run dir $dir was used: $(ls -A "$dir")"
}

# Another user's directory, and directories others may write.
mkdir -m 700 theirs && chown nobody theirs
refused "$TEST_TMP/theirs" "owned by uid"
mkdir -m 700 sticky && chmod 1777 sticky
refused "$TEST_TMP/sticky" "writable by group or others"
mkdir -m 700 group && chmod 770 group
refused "$TEST_TMP/group" "writable by group or others"
# A trusted-looking directory in a parent anyone may rename things in.
mkdir -m 777 open && mkdir -m 700 open/run && chmod 777 open
refused "$TEST_TMP/open/run" "$TEST_TMP/open: writable"
# A symlink as the directory itself.
mkdir -m 700 real && ln -s real link
refused "$TEST_TMP/link" "symlink"
# ...while a sticky parent (as /tmp) and a directory created fresh are fine.
mkdir -m 1777 tmpish
BLOCKCRYPT_RUN_DIR="$TEST_TMP/tmpish/run" bc attach vol.img --key-file key --name s >/dev/null 2>err ||
	fail "attach in a fresh run dir under a sticky parent failed: $(cat err)"
[ "$(stat -c %a tmpish/run)" = 700 ] || fail "fresh run dir has mode $(stat -c %a tmpish/run), not 700"
BLOCKCRYPT_RUN_DIR="$TEST_TMP/tmpish/run" bc detach s 2>/dev/null || fail "detach s failed"
check_victims "untrusted run dirs"

# Planted symlinks in the (trusted) run dir.
mkdir -m 700 "$RUN"
ln -s "$TEST_TMP/victim/log" "$RUN/vol.log"
expect_exit 2 bc attach vol.img --key-file key
case $ERR in *vol.log*) ;; *) fail "attach over a NAME.log symlink: message does not name it: $ERR" ;; esac
[ -z "$(bc list)" ] || fail "attach refused for its log still left an entry"
check_victims "NAME.log symlink"
rm "$RUN/vol.log"

ln -s "$TEST_TMP/victim/tmp" "$RUN/vol.json.tmp"
ln -s "$TEST_TMP/victim/state" "$RUN/vol.json"
bc attach vol.img --key-file key >/dev/null 2>err || fail "attach with planted NAME.json(.tmp) links failed: $(cat err)"
[ -f "$RUN/vol.json" ] && [ ! -L "$RUN/vol.json" ] || fail "vol.json is still a symlink"
check_victims "NAME.json and NAME.json.tmp symlinks"
for f in vol.json vol.log vol.lock vol.sock vol.ctl; do
	m=$(stat -c %a "$RUN/$f") || fail "no $f"
	[ "$m" = 600 ] || fail "$f has mode $m, not 600"
done
# The daemon rewrites its state (resize): still 0600, still not through a link.
bc resize vol >/dev/null 2>&1 || fail "resize failed"
[ "$(stat -c %a "$RUN/vol.json")" = 600 ] || fail "rewritten vol.json has mode $(stat -c %a "$RUN/vol.json")"
[ -z "$(find "$RUN" -name '.*')" ] || fail "temporary state files left: $(find "$RUN" -name '.*')"
bc detach vol 2>/dev/null || fail "detach failed"
check_victims "after detach"
rm -f "$RUN/vol.json.tmp"

# A state file that is itself a symlink (no daemon): refused, left alone.
ln -s "$TEST_TMP/victim/victim.json" "$RUN/ln.json"
expect_exit 2 bc status ln
note "status of a symlinked state file: $ERR"
bc list >/dev/null 2>&1 || fail "list with a symlinked state file failed"
check_victims "symlinked state file"
rm "$RUN/ln.json"

# A planted (stale) state file whose socket climbs out of the directory:
# list clears the entry by name only.
printf '{"name": "stale", "pid": 999999, "socket": "%s/../victim/victim.sock"}\n' "$RUN" >"$RUN/stale.json"
bc list >/dev/null 2>err || fail "list failed: $(cat err)"
[ ! -e "$RUN/stale.json" ] || fail "list did not clear the stale entry"
check_victims "planted socket path with '..'"

# Names that are paths.
for name in ../victim/victim "$TEST_TMP/victim/victim" a/b .. .hidden; do
	expect_exit 2 bc status "$name"
	case $ERR in *"name '"*) ;; *) fail "status '$name': not refused as a name: $ERR" ;; esac
	expect_exit 2 bc detach "$name"
	expect_exit 2 bc detach --force "$name"
	expect_exit 2 bc resize "$name"
	check_victims "name '$name'"
done
note "names: $ERR"
exit 0
