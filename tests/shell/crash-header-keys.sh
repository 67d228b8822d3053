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

# slots IMG: active key slots, e.g. "0 1" (LUKS1 and LUKS2).
slots() {
	cryptsetup luksDump "$1" 2>/dev/null | awk '
		/^Key Slot [0-7]: ENABLED/ { sub(":", "", $3); s = s " " $3 }
		/^Keyslots:/ { ks = 1; next }
		ks && /^[^ \t]/ { ks = 0 }
		ks && /^  [0-9]+: / { sub(":", "", $1); s = s " " $1 }
		END { sub(/^ /, "", s); print s }'
}

# state IMG: "SLOT:WHO ..." where WHO is the passphrase (old/new) that
# cryptsetup opens that slot with, "-" for none; and checks blockcrypt
# agrees.  Works on copies: opening may repair a LUKS2 header.
state() {
	local img=$1 s who k out=() cs_ok bc_rc
	cp "$img" cs.img
	cp "$img" bc.img
	for s in $(slots cs.img); do
		who=-
		for k in old new; do
			if cryptsetup open --test-passphrase --key-slot "$s" --key-file "$k" cs.img 2>/dev/null; then
				[ "$who" = - ] || { echo "slot $s opens with both passphrases"; return 1; }
				who=$k
			fi
		done
		out+=("$s:$who")
	done
	for k in old new; do
		cs_ok=no
		case " ${out[*]} " in *":$k "*) cs_ok=yes ;; esac
		bc_rc=0
		bc cat bc.img --key-file "$k" >plain.out 2>cat.err || bc_rc=$?
		if [ "$bc_rc" = 0 ]; then
			[ "$cs_ok" = yes ] || { echo "blockcrypt opens with $k, cryptsetup does not"; return 1; }
			[ "$(sha plain.out)" = "$PLAIN_SHA" ] || { echo "blockcrypt with $k reads wrong data"; return 1; }
		else
			[ "$bc_rc" = 3 ] || { echo "blockcrypt cat with $k: exit $bc_rc: $(cat cat.err)"; return 1; }
			[ "$cs_ok" = no ] || { echo "cryptsetup opens with $k, blockcrypt does not: $(cat cat.err)"; return 1; }
		fi
	done
	echo "${out[*]}"
}

declare -A SEEN
# keyset STATE: the passphrases that open some slot, e.g. "old new".
keyset() {
	local k r=
	for k in old new; do
		case " $1 " in *":$k "*) r+=" $k" ;; esac
	done
	echo "${r# }"
}

# judge IMG LABEL: the crashed image is in an allowed state: the data area
# untouched, and the key set that before or after the operation, or (only
# change-key, whose new slot is written before the old one goes) both.
# add-key must match the before or after state exactly; change-key may
# leave a slot that no passphrase opens (libcryptsetup wipes the old slot's
# area before it drops the slot from the header): counted, not failed.
judge() {
	local img=$1 label=$2 st ks
	[ "$(data_sha "$img")" = "$DATA_SHA" ] || fail "$label: the data area changed"
	st=$(state "$img") || fail "$label: $st"
	ks=$(keyset "$st")
	[ -n "$ks" ] || fail "$label: no passphrase opens the volume (key slots '$st')"
	case "$st" in
	"$BASE_STATE" | "$FINAL_STATE") ;;
	*)
		[ "$OP" = change-key ] ||
			fail "$label: key slots '$st'; expected '$BASE_STATE' (before) or '$FINAL_STATE' (after)"
		[ "$ks" = "$(keyset "$BASE_STATE")" ] || [ "$ks" = "$(keyset "$FINAL_STATE")" ] || [ "$ks" = "old new" ] ||
			fail "$label: opens with '$ks' (key slots '$st')"
		;;
	esac
	SEEN[$st]=$((${SEEN[$st]:-0} + 1))
}

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
