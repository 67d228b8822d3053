#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# As root, a tab file is a list of commands run as root (after-attach=):
# like sudoers, one that anyone but root may change is refused (exit 2, one
# line) before any entry is attached or any hook runs: a file owned by
# another user, a 0666 or group-writable one, one in a world-writable
# (even sticky) or another user's directory.  The same file, root's and
# 0644 in a root 0755 directory, is used.
. "$(dirname "$0")/functions.bash"
requires sha256sum
requires_root

new_volume vol.img key
# The hook leaves a mark outside every directory the test varies.
line="vol $TEST_TMP/vol.img $TEST_TMP/key after-attach=touch $TEST_TMP/hook-ran"

# try DIR MODE OWNER DIRMODE DIROWNER WHAT: the tab DIR/tab so set up is
# refused by attach --all and --from-tab, naming WHAT; nothing attached,
# no hook run.
try() {
	local dir=$1 mode=$2 owner=$3 dmode=$4 downer=$5 what=$6
	mkdir -p "$dir"
	printf '%s\n' "$line" >"$dir/tab"
	chown "$owner" "$dir/tab" && chmod "$mode" "$dir/tab"
	chown "$downer" "$dir" && chmod "$dmode" "$dir"
	for how in --all "--from-tab vol"; do
		# shellcheck disable=SC2086
		expect_exit 2 bc attach $how --tab "$dir/tab" --batch
		case $ERR in *"$dir/tab"*"$what"*) ;; *) fail "tab $mode $owner in $dmode $downer ($how): expected '$what': $ERR" ;; esac
		[ ! -e hook-ran ] || fail "tab $mode $owner in $dmode $downer ($how): the after-attach hook ran"
		[ -z "$(bc list)" ] || fail "tab $mode $owner in $dmode $downer ($how): attached $(bc list)"
	done
	note "$mode $owner in $dmode $downer: $ERR"
}

try "$TEST_TMP/t1" 0644 nobody 0755 root "owned by uid"
try "$TEST_TMP/t2" 0666 root 0755 root "mode 0666"
try "$TEST_TMP/t3" 0664 root 0755 root "mode 0664"
try "$TEST_TMP/t4" 0644 root 1777 root "directory"
try "$TEST_TMP/t5" 0644 root 0777 root "directory"
try "$TEST_TMP/t6" 0644 root 0755 nobody "directory"
# A symlink to a bad file is judged by the file it reaches.
ln -s "$TEST_TMP/t2/tab" "$TEST_TMP/link-tab"
expect_exit 2 bc attach --all --tab "$TEST_TMP/link-tab" --batch
[ ! -e hook-ran ] || fail "the hook ran through a symlinked tab"

# The same file, root's: attached, hook run.
mkdir -m 755 good
printf '%s\n' "$line" >good/tab
chmod 0644 good/tab
bc attach --all --tab good/tab --batch >/dev/null 2>err || fail "a root 0644 tab was refused: $(cat err)"
[ -e hook-ran ] || fail "the after-attach hook did not run for a trusted tab"
bc detach vol 2>/dev/null || fail "detach failed"
exit 0
