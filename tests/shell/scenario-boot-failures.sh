#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot with a partly broken blockcrypttab: one good volume (key file, with
# an after-attach hook), one with a wrong key file, a plain volume whose
# token key does not exist (pkcs11:token=bctest;object=nosuch), a LUKS2
# volume whose enrolled token key was deleted from the token (KEY token),
# one whose backing does not exist, a line with too few fields and a line
# with an unknown option.  `attach --all --tab TAB` exits with the code of
# the first failure (3, wrong key), stderr names every failure as
# TAB:LINE (with NAME for volumes), the good volume is attached and its
# hook ran once, the others are not in `list --json`, left no runtime
# files, FUSE mounts or hook runs, and their backings are byte-identical.
# `attach --from-tab NAME` gives each failure's documented exit code and
# the same message as attach --all; a
# second `attach --all` leaves the good volume alone (same daemon, hook not
# run again) and fails the same way.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/scenario-lib.bash"
requires cryptsetup mountpoint
need_root_fuse
p11_token_setup
scn_teardown_register

TAB=$TEST_TMP/blockcrypttab
mkdir -p fuse/good fuse/wrongkey fuse/nokey fuse/gonekey fuse/missing

new_volume good.img good.key
new_volume wrong.img right.key
printf 'not the passphrase' >wrong.key
random_file plain.img $((32 * 1024 * 1024))
new_volume gone.img gone.pass
tmo 60 genkey bc genkey --token pkcs11:token=bctest --label gone --pin-file pin || fail "genkey failed: $(cat .tmo)"
tmo 60 enroll bc enroll gone.img --pkcs11 'pkcs11:token=bctest;object=gone' --key-file gone.pass --pin-file pin ||
	fail "enroll failed: $(cat .tmo)"
tmo 60 "token unlock" bc cat gone.img --token-only --pin-file pin --batch </dev/null || fail "the enrolled token does not open gone.img: $(cat .tmo)"
pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 1234 --delete-object --type secrkey --label gone >p11.out 2>&1 ||
	fail "pkcs11-tool could not delete the token key: $(cat p11.out)"
pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 1234 --list-objects --type secrkey 2>/dev/null | grep -q 'label: *gone' &&
	fail "token key 'gone' still on the token after deleting it"

hook() { echo "after-attach=echo \"\$BLOCKCRYPT_NAME \$BLOCKCRYPT_FUSE_FILE\" >>$TEST_TMP/hook.$1"; }
cat >"$TAB" <<EOF
# line 1: a comment; line 2 is blank

good      $TEST_TMP/good.img   $TEST_TMP/good.key   fuse=$TEST_TMP/fuse/good,$(hook good)
wrongkey  $TEST_TMP/wrong.img  $TEST_TMP/wrong.key  fuse=$TEST_TMP/fuse/wrongkey,$(hook wrongkey)
nokey     $TEST_TMP/plain.img  pkcs11:token=bctest;object=nosuch  plain,cipher=aes-cbc-essiv:sha256,key-size=256,pin-file=$TEST_TMP/pin,fuse=$TEST_TMP/fuse/nokey,$(hook nokey)
gonekey   $TEST_TMP/gone.img   token  pin-file=$TEST_TMP/pin,fuse=$TEST_TMP/fuse/gonekey,$(hook gonekey)
missing   $TEST_TMP/no-such.img  $TEST_TMP/good.key  fuse=$TEST_TMP/fuse/missing,$(hook missing)
toofew    $TEST_TMP/good.img
badopt    $TEST_TMP/good.img   $TEST_TMP/good.key   fuse=$TEST_TMP/fuse/good,frobnicate
EOF
FAILED=(wrongkey nokey gonekey missing)
declare -A LINE=([good]=3 [wrongkey]=4 [nokey]=5 [gonekey]=6 [missing]=7 [toofew]=8 [badopt]=9)
for f in good.img wrong.img plain.img gone.img; do echo "$f $(sha "$f")"; done >shas.before

# check_after_all WHEN: the state after an attach --all run (stderr in all.err).
check_after_all() {
	local n l
	for n in "${FAILED[@]}"; do
		l=${LINE[$n]}
		grep -qF "$TAB:$l: $n: " all.err || fail "$1: stderr has no '$TAB:$l: $n: ...' line: $(cat all.err)"
		mountpoint -q "fuse/$n" && fail "$1: failed volume $n left a FUSE mount on fuse/$n"
		[ -z "$(ls -A "fuse/$n")" ] || fail "$1: fuse/$n not empty: $(ls -A "fuse/$n")"
		[ ! -e "hook.$n" ] || fail "$1: after-attach of the failed volume $n ran: $(cat "hook.$n")"
		[ ! -e "$BLOCKCRYPT_RUN_DIR/$n.json" ] && [ ! -e "$BLOCKCRYPT_RUN_DIR/$n.sock" ] && [ ! -e "$BLOCKCRYPT_RUN_DIR/$n.ctl" ] ||
			fail "$1: runtime files left for $n: $(ls "$BLOCKCRYPT_RUN_DIR")"
	done
	grep -qF "$TAB:${LINE[toofew]}: " all.err || fail "$1: stderr has no '$TAB:${LINE[toofew]}: ...' line for the short line: $(cat all.err)"
	grep -qF "$TAB:${LINE[badopt]}: " all.err || fail "$1: stderr has no '$TAB:${LINE[badopt]}: ...' line for the unknown option: $(cat all.err)"
	grep -F "$TAB:${LINE[badopt]}: " all.err | grep -q frobnicate ||
		note "$1: the unknown-option message does not name the option: $(grep -F "$TAB:${LINE[badopt]}: " all.err)"
	grep -qF "$TAB:${LINE[good]}:" all.err && fail "$1: an error was reported for the good line: $(cat all.err)"
	[ "$(list_names | tr '\n' ' ')" = "good " ] || fail "$1: list --json has '$(list_names | tr '\n' ' ')', expected only good"
	[ -f fuse/good/good ] || fail "$1: the good volume's FUSE file is missing"
	[ "$(wc -l <hook.good)" = 1 ] || fail "$1: the good volume's after-attach ran $(wc -l <hook.good) times: $(cat hook.good)"
	[ "$(cat hook.good)" = "good $TEST_TMP/fuse/good/good" ] || fail "$1: after-attach saw '$(cat hook.good)'"
	for f in good.img wrong.img plain.img gone.img; do echo "$f $(sha "$f")"; done >shas.now
	diff shas.before shas.now >shas.diff || fail "$1: backings changed: $(cat shas.diff)"
}

rc=0
timeout -k 5 180 "$BLOCKCRYPT" attach --all --tab "$TAB" --batch </dev/null >all.out 2>all.err || rc=$?
[ "$rc" != 124 ] || fail "attach --all hung"
note "attach --all: exit $rc; stderr:"; sed 's/^/#   /' all.err >&2
[ "$rc" -lt 128 ] || fail "attach --all --tab crashed (exit $rc, signal $((rc - 128))); attached: '$(list_names | tr '\n' ' ')'; stderr: $(cat all.err)"
[ "$rc" = 3 ] || fail "attach --all exited $rc, expected 3 (the first failure, line ${LINE[wrongkey]}: wrong key)"
check_after_all "first attach --all"
PID=$(list_field good pid)
# (cat of the attached backing itself is refused: the daemon holds it
# exclusively; a copy, with nothing writing, holds the same contents)
cp --sparse=always good.img good-copy.img
cmp -s <(bc cat good-copy.img --key-file good.key) fuse/good/good || fail "the good volume's FUSE file does not match its contents"
rm -f good-copy.img

# Each failure alone, through --from-tab: the documented exit codes.
# The message must be the same line attach --all printed for it.
from_tab() { # NAME WANT
	local rc=0 want
	want=$(grep -F "blockcrypt: $TAB:${LINE[$1]}: $1: " all.err | head -1)
	timeout -k 5 60 "$BLOCKCRYPT" attach --from-tab "$1" --tab "$TAB" --batch </dev/null >one.out 2>one.err || rc=$?
	[ "$rc" = "$2" ] || fail "attach --from-tab $1 exited $rc, expected $2: $(cat one.err)"
	grep -qF "$TAB:${LINE[$1]}: $1: " one.err || fail "attach --from-tab $1: no '$TAB:${LINE[$1]}: $1: ' in: $(cat one.err)"
	grep -qxF "$want" one.err ||
		fail "attach --from-tab $1: the error is not '$want' as attach --all said, but: $(grep -F "$TAB:${LINE[$1]}:" one.err)"
	[ -z "$(list_names | grep -vx good)" ] || fail "attach --from-tab $1 attached something: $(list_names | tr '\n' ' ')"
	note "--from-tab $1: exit $rc: $(grep -F "$TAB:${LINE[$1]}:" one.err)"
}
from_tab wrongkey 3
from_tab nokey 12
from_tab gonekey 12
from_tab missing 8
rc=0
timeout -k 5 60 "$BLOCKCRYPT" attach --from-tab toofew --tab "$TAB" --batch </dev/null >one.out 2>one.err || rc=$?
[ "$rc" != 0 ] || fail "attach --from-tab of a malformed line succeeded"
grep -qF "$TAB:${LINE[toofew]}: " one.err || fail "--from-tab toofew does not report the malformed line: $(cat one.err)"

# Again: the good one stays as it is, the failures fail the same way.
rc=0
timeout -k 5 180 "$BLOCKCRYPT" attach --all --tab "$TAB" --batch </dev/null >all.out 2>all.err || rc=$?
[ "$rc" = 3 ] || fail "second attach --all exited $rc, expected 3: $(cat all.err)"
grep -q 'good.*already attached' all.err || note "second attach --all does not mention that good is already attached: $(cat all.err)"
check_after_all "second attach --all"
[ "$(list_field good pid)" = "$PID" ] || fail "the good volume's daemon changed ($PID -> $(list_field good pid))"

tmo 60 "detach --all" bc detach --all || fail "detach --all failed: $(cat .tmo)"
[ -z "$(list_names)" ] || fail "still attached after detach --all: $(list_names)"
! mountpoint -q fuse/good || fail "good's FUSE mount still there after detach --all"
note "boot failures: 4 volumes and 2 lines failed with FILE:LINE, the good one attached once, backings untouched"
exit 0
