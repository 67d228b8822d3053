#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# add-key and change-key survive SIGKILL at any point: afterwards the
# volume opens with the old key set or with the new one (change-key: or
# both, while old and new slot briefly coexist), never with neither, and
# the data area is untouched.
#
# For LUKS2 and LUKS1: a clean run under strace counts every call of each
# write-class syscall (write, pwrite64, pwritev, writev, fsync, fdatasync,
# ftruncate, fallocate, ...) on the image; then for every syscall S and
# every N up to its count, the operation runs again on a fresh copy under
# `strace -P IMG -e inject=S:signal=KILL:when=N`, which kills it on
# entering its N-th S on the image (that call never happens).  Plus
# random-time SIGKILLs (crash-lib.bash).  After each
# crash, on separate copies: cryptsetup luksDump lists the key slots,
# `cryptsetup open --test-passphrase --key-slot N` tells which passphrase
# opens which slot, and `blockcrypt cat` with each passphrase must give the
# original plaintext or fail with exit 3 (wrong key), agreeing with
# cryptsetup; the state must be the one before the operation or the one a
# clean run produces.  change-key may also stop with old and new slot both
# there, or with the new slot plus the old one whose key material is
# already wiped (libcryptsetup wipes it before dropping it from the
# header): tolerated as long as a passphrase opens the volume, and counted
# in the summary line.
# CRASH_SEED=N repeats the random kill times.
. "$(dirname "$0")/functions.bash"
requires cryptsetup
. "$TESTS_DIR/shell/crash-lib.bash"
printf 'old passphrase' >old
printf 'new passphrase' >new
crash_reset() { cp base.img work.img; }

. "$TESTS_DIR/shell/keyset-judge-lib.bash"

# crash_case TYPE VOLUME_SIZE OP
crash_case() {
	local type=$1 size=$2 name="$1 $3" cmd off
	OP=$3
	SEEN=()
	CRASH_POINTS=0
	rm -f base.img
	VOLUME_SIZE=$size new_volume base.img old --type "$type"
	off=$(data_offset base.img)
	random_file plain "$(($(stat -c %s base.img) - off))"
	bc write base.img --key-file old <plain >/dev/null 2>&1 || fail "$name: write failed"
	PLAIN_SHA=$(sha plain)
	DATA_SHA=$(data_sha base.img)
	cmd=("$BLOCKCRYPT" "$OP" work.img --key-file old --new-key-file new --batch "${FAST_KDF[@]}")
	BASE_STATE=$(state base.img) || fail "$name: base: $BASE_STATE"

	crash_clean_run work.img "${cmd[@]}"
	FINAL_STATE=$(state work.img) || fail "$name: after a clean run: $FINAL_STATE"
	[ "$FINAL_STATE" != "$BASE_STATE" ] || fail "$name: the operation changed nothing ($FINAL_STATE)"
	note "$name: $BASE_STATE -> $FINAL_STATE; kill points on the image: $(tr '\n' ' ' <crash.counts)"
	crash_every_point work.img "$name" "${cmd[@]}"
	crash_random work.img "$name" "${cmd[@]}"
	crash_summary "$name"
	[ "$CRASH_POINTS" -gt "$CRASH_RANDOM_KILLS" ] || fail "$name: only $CRASH_POINTS crashes judged"
	CASES_DONE+=("$name")
}

# Every case must run to its end: a case that bash abandoned half-way (the
# way an expansion error used to, silently) must not pass as nothing.
CASES_DONE=()
crash_case luks2 17M add-key
crash_case luks2 17M change-key
crash_case luks1 3M add-key
crash_case luks1 3M change-key
[ "${#CASES_DONE[@]}" = 4 ] || fail "only ${#CASES_DONE[@]} of 4 cases ran to the end: ${CASES_DONE[*]}"
exit 0
