#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# enroll (PKCS#11 key slot + blockcrypt-pkcs11 token, SoftHSM) survives
# SIGKILL at any point: afterwards the passphrase still opens the volume,
# the token either unlocks it (slot and token both there) or is absent, the
# data area is untouched, and blockcrypt and cryptsetup agree.
#
# A clean run under strace counts every call of each write-class syscall
# on the image; then for every syscall S and every N up to its count,
# enroll runs again on a fresh copy under
# `strace -P IMG -e inject=S:signal=KILL:when=N` (killed on entering its
# N-th S on the image, which never happens), plus random-time SIGKILLs
# (crash-lib.bash).
# The SoftHSM token directory is restored before each run and before each
# judgement (SoftHSM rewrites its own files at login; a kill there damages
# the token store, which is not blockcrypt's business).  After each crash:
# `blockcrypt cat --key-file` gives the original plaintext and `cryptsetup
# open --test-passphrase` accepts the passphrase; the header's key slots and
# tokens (cryptsetup's JSON) are those before enroll ("0", none) or after
# ("0 1", one blockcrypt-pkcs11 token on slot 1), and `blockcrypt cat
# --token-only --pin-file` succeeds (with the right data) exactly when the
# token is there.  A crash between the slot and the token commit may leave
# slot 1 without a token (nobody knows its random secret): tolerated and
# counted, and enroll must then still work.
# CRASH_SEED=N repeats the random kill times.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup
. "$TESTS_DIR/shell/crash-lib.bash"
p11_setup
genkey vkey
cp -a tokens tokens.orig
restore_tokens() { rm -rf tokens && cp -a tokens.orig tokens; }
printf 'old passphrase' >old
crash_reset() { cp base.img work.img; restore_tokens; }

# state IMG: "slots=... tokens=... token=yes|no"; fails (message on
# stdout) on anything that must never happen.  Works on copies.
state() {
	local img=$1 slots tokens rc tok
	cp "$img" cs.img
	cp "$img" bc.img
	cryptsetup open --test-passphrase --key-file old cs.img 2>/dev/null ||
		{ echo "cryptsetup no longer accepts the passphrase"; return 1; }
	slots=$(luks_meta cs.img keyslots)
	tokens=$(luks_meta cs.img tokens)
	rc=0
	bc cat bc.img --key-file old --batch </dev/null >plain.out 2>cat.err || rc=$?
	[ "$rc" = 0 ] || { echo "blockcrypt cat --key-file: exit $rc: $(cat cat.err)"; return 1; }
	[ "$(sha plain.out)" = "$PLAIN_SHA" ] || { echo "blockcrypt cat --key-file reads wrong data"; return 1; }
	restore_tokens
	rc=0
	bc cat bc.img --token-only --pin-file pin --batch </dev/null >plain.out 2>cat.err || rc=$?
	if [ "$rc" = 0 ]; then
		[ "$(sha plain.out)" = "$PLAIN_SHA" ] || { echo "blockcrypt cat --token-only reads wrong data"; return 1; }
		tok=yes
	else
		tok=no
		TOKEN_ERR=$(cat cat.err)
	fi
	echo "slots=$slots tokens=$tokens token=$tok"
}

BASE_STATE="slots=0 tokens= token=no"
FINAL_STATE="slots=0 1 tokens=0:blockcrypt-pkcs11 token=yes"
ORPHAN_STATE="slots=0 1 tokens= token=no"
declare -A SEEN
ORPHAN_CHECKED=no

judge() {
	local img=$1 label=$2 st
	[ "$(data_sha "$img")" = "$DATA_SHA" ] || fail "$label: the data area changed"
	st=$(state "$img") || fail "$label: $st"
	case "$st" in
	"$BASE_STATE" | "$FINAL_STATE") ;;
	"$ORPHAN_STATE")
		if [ "$ORPHAN_CHECKED" = no ]; then
			restore_tokens
			cp "$img" again.img
			bc enroll again.img --pkcs11 "$TOKEN_URI;object=vkey" --key-file old --pin-file pin \
				</dev/null >/dev/null 2>enroll.err || fail "$label: enroll after the crash failed: $(cat enroll.err)"
			bc cat again.img --token-only --pin-file pin --batch </dev/null >plain.out 2>cat.err ||
				fail "$label: token unlock after re-enrolling failed: $(cat cat.err)"
			ORPHAN_CHECKED=yes
		fi
		;;
	*) fail "$label: state '$st'; expected '$BASE_STATE' (before) or '$FINAL_STATE' (after)${TOKEN_ERR:+ (token: $TOKEN_ERR)}" ;;
	esac
	SEEN[$st]=$((${SEEN[$st]:-0} + 1))
}

VOLUME_SIZE=17M new_volume base.img old
off=$(data_offset base.img)
random_file plain "$(($(stat -c %s base.img) - off))"
bc write base.img --key-file old <plain >/dev/null 2>&1 || fail "write failed"
PLAIN_SHA=$(sha plain)
DATA_SHA=$(data_sha base.img)
st=$(state base.img) || fail "base: $st"
[ "$st" = "$BASE_STATE" ] || fail "base state '$st', expected '$BASE_STATE'"
cmd=("$BLOCKCRYPT" enroll work.img --pkcs11 "$TOKEN_URI;object=vkey" --key-file old --pin-file pin)

CRASH_POINTS=0
crash_clean_run work.img "${cmd[@]}"
st=$(state work.img) || fail "after a clean enroll: $st"
[ "$st" = "$FINAL_STATE" ] || fail "after a clean enroll: '$st', expected '$FINAL_STATE'"
note "kill points on the image: $(tr '\n' ' ' <crash.counts)"
crash_every_point work.img enroll "${cmd[@]}"
crash_random work.img enroll "${cmd[@]}"
crash_summary enroll
[ "$CRASH_POINTS" -gt "$CRASH_RANDOM_KILLS" ] || fail "enroll: only $CRASH_POINTS crashes judged"
exit 0
