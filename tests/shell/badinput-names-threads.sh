#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Inputs refused instead of silently bent: --threads above 64 (the NBD
# server's limit) on the command line and threads=0 or 65 in the tab;
# names longer than 64 bytes (--name, a long backing file name, the tab),
# never truncated.  Non-root detach/status of a root daemon says
# "permission denied" (exit 6), not "not attached".  A relative
# BLOCKCRYPT_RUN_DIR means the caller's directory, also for the daemon.
# Tab files: CRLF line ends are accepted; a NUL byte is refused with
# FILE:LINE instead of cutting the line short.
. "$(dirname "$0")/functions.bash"
requires setpriv python3

new_volume vol.img key

# --threads.
for n in 65 1000 0; do
	expect_exit 2 bc attach vol.img --key-file key --threads "$n"
	case $ERR in *"1 to 64"*) ;; *) fail "--threads $n: message does not give the range: $ERR" ;; esac
done
bc attach vol.img --key-file key --threads 64 >/dev/null 2>err || fail "--threads 64 refused: $(cat err)"
bc detach vol 2>/dev/null || fail "detach failed"

# tab_errors TAB: attach --all exits 2; the FILE:LINE messages are in $ERR.
tab_errors() {
	local got=0
	bc attach --all --tab "$1" --batch >/dev/null 2>tab.err || got=$?
	ERR=$(cat tab.err)
	[ "$got" = 2 ] || fail "attach --all --tab $1: expected exit 2, got $got: $ERR"
	[ -z "$(bc list)" ] || fail "attach --all --tab $1 attached $(bc list)"
}
for n in 0 65; do
	printf 'vol %s/vol.img %s/key threads=%s\n' "$TEST_TMP" "$TEST_TMP" "$n" >tab
	tab_errors tab
	grep -q "tab:1: threads: give 1 to 64" tab.err || fail "tab threads=$n: no FILE:LINE message: $ERR"
done

# Names: 64 bytes fine, 65 refused, never cut to 64.
n64=$(printf 'n%.0s' $(seq 64)); n65=${n64}x
expect_exit 2 bc attach vol.img --key-file key --name "$n65"
case $ERR in *"longer than 64"*) ;; *) fail "65-byte --name: unexpected message: $ERR" ;; esac
[ -z "$(files_except "$BLOCKCRYPT_RUN_DIR" '^vol\.log$')" ] ||
	fail "a refused name left files (cut to 64?): $(ls -A "$BLOCKCRYPT_RUN_DIR")"
bc attach vol.img --key-file key --name "$n64" >/dev/null 2>err || fail "a 64-byte name was refused: $(cat err)"
bc detach "$n64" 2>/dev/null || fail "detach of the 64-byte name failed"
expect_exit 2 bc status "$n65"
expect_exit 2 bc detach "$n65"
ln vol.img "$n65.img"
expect_exit 2 bc attach "$n65.img" --key-file key
case $ERR in *--name*) ;; *) fail "a long default name: the message does not suggest --name: $ERR" ;; esac
printf '%s %s/vol.img %s/key\n' "$n65" "$TEST_TMP" "$TEST_TMP" >tab
tab_errors tab
grep -q "tab:1: invalid name" tab.err || fail "tab with a 65-byte name: $ERR"

# Another user asking about root's daemon: permission denied, exit 6.
chmod 711 "$TEST_TMP"   # nobody may reach the run dir, not read it
bc attach vol.img --key-file key >/dev/null 2>err || fail "attach failed: $(cat err)"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
for mode in 700 755; do
	chmod "$mode" "$BLOCKCRYPT_RUN_DIR"
	for cmd in "detach vol" "detach --force vol" "status vol" "resize vol"; do
		# shellcheck disable=SC2086
		expect_exit 6 as_nobody "$BLOCKCRYPT" $cmd
		case $ERR in *"ermission denied"*) ;; *) fail "nobody: $cmd (run dir $mode): $ERR" ;; esac
	done
	note "nobody, run dir $mode: $ERR"
	bc status vol >/dev/null 2>&1 || fail "vol no longer attached after nobody's detach"
done
chmod 700 "$BLOCKCRYPT_RUN_DIR" "$TEST_TMP"
bc detach vol 2>/dev/null || fail "detach failed"

# A relative BLOCKCRYPT_RUN_DIR: the caller's directory, for the daemon too.
mkdir sub
(cd sub && BLOCKCRYPT_RUN_DIR=relrun "$BLOCKCRYPT" attach ../vol.img --key-file ../key >../rel.out 2>../rel.err) ||
	fail "attach with a relative BLOCKCRYPT_RUN_DIR failed: $(cat rel.err)"
grep -qF "socket=$TEST_TMP/sub/relrun/vol.sock" rel.out || fail "URI not absolute: $(cat rel.out)"
[ -S sub/relrun/vol.ctl ] || fail "no control socket in sub/relrun: $(ls -A sub/relrun)"
BLOCKCRYPT_RUN_DIR=$TEST_TMP/sub/relrun bc status vol >/dev/null || fail "status through the absolute path failed"
(cd sub && BLOCKCRYPT_RUN_DIR=relrun "$BLOCKCRYPT" detach vol 2>/dev/null) || fail "relative detach failed"

# Tab files: CRLF accepted (read-only is the last option, before the CR).
printf 'vol %s/vol.img %s/key read-only\r\n# comment\r\n\r\n' "$TEST_TMP" "$TEST_TMP" >crlf.tab
bc attach --all --tab crlf.tab --batch >/dev/null 2>err || fail "a CRLF tab was refused: $(cat err)"
bc status vol --json | python3 -c 'import json,sys; sys.exit(not json.load(sys.stdin)["read_only"])' ||
	fail "CRLF tab: read-only was lost"
bc detach vol 2>/dev/null || fail "detach failed"
# ...a NUL byte is refused with its FILE:LINE, hook and all.
printf '# ok\nvol %s/vol.img %s/key read-only\0,after-attach=touch %s/hook-ran\n' "$TEST_TMP" "$TEST_TMP" "$TEST_TMP" >nul.tab
tab_errors nul.tab
grep -q "nul.tab:2: NUL byte" tab.err || fail "NUL byte: no FILE:LINE message: $ERR"
[ ! -e hook-ran ] || fail "NUL byte: the hook ran"
# ...and so is any other control character: a CR before the line's end
# would end up in a value (listen=24\r; found by fuzz-tab's round trip).
printf 'vol %s/vol.img %s/key read-only,threads=2\r ,after-attach=touch %s/hook-ran\n' "$TEST_TMP" "$TEST_TMP" "$TEST_TMP" >cr.tab
tab_errors cr.tab
grep -q "cr.tab:1: control character in the line" tab.err || fail "CR inside a line: no FILE:LINE message: $ERR"
[ ! -e hook-ran ] || fail "CR inside a line: the hook ran"
exit 0
