#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A command that fails leaves nothing behind: no new file, no header
# change.  On a full file system (a small tmpfs filled up): format of a
# new file exits 5 and creates no file; add-key on a sparse volume (its
# free key slot area a hole) exits 5 and the volume is byte-identical --
# libcryptsetup would have written a new salt and key material before
# failing.  An impossible --size creates no file.  A stream larger than
# the volume (from a pipe) writes nothing.
. "$(dirname "$0")/functions.bash"
requires mount umount cryptsetup
printf 'the key' >key
printf 'another key' >key2

# --- an impossible size ---------------------------------------------------
expect_exit 2 bc format huge.img --size 9223372036854775808 --batch --key-file key "${FAST_KDF[@]}"
note "format --size 2^63: $ERR"
[ ! -e huge.img ] || fail "format with an impossible --size left a file"

# --- a full file system ---------------------------------------------------
mkdir full
mount -t tmpfs -o size=24m tmpfs full || fail "cannot mount a tmpfs"
cleanup_fn "umount -l '$TEST_TMP/full'"
VOLUME_SIZE=20M new_volume vol.img key
cp --sparse=always vol.img full/vol.img
du -k full/vol.img >&2
head -c 30M /dev/zero >full/filler 2>/dev/null || true   # fills the rest
BEFORE=$(sha full/vol.img)
expect_exit 5 bc add-key full/vol.img --key-file key --new-key-file key2 "${FAST_KDF[@]}"
note "add-key on a full file system: $ERR"
[ "$(sha full/vol.img)" = "$BEFORE" ] || fail "the failed add-key changed the volume"
cryptsetup open --test-passphrase --key-file key full/vol.img || fail "the volume no longer opens"
expect_exit 5 bc format full/new.img --size 20M --batch --key-file key "${FAST_KDF[@]}"
note "format on a full file system: $ERR"
[ ! -e full/new.img ] || fail "the failed format left a file ($(du -k full/new.img | cut -f1) KiB)"

# --- a write that fails half-way ----------------------------------------------
# Every write of add-key and change-key to the image in turn fails with
# EIO (strace fault injection): libcryptsetup gives up with part of the
# update on disk; blockcrypt must restore the header it copied before.
requires strace
for type in luks2 luks1; do
	rm -f io.orig
	VOLUME_SIZE=$([ "$type" = luks1 ] && echo 3M || echo 17M) new_volume io.orig key --type "$type"
	BEFORE=$(sha io.orig)
	for op in add-key change-key; do
		cmd=("$BLOCKCRYPT" "$op" io.img --key-file key --new-key-file key2 "${FAST_KDF[@]}")
		cp io.orig io.img
		# (strace counts each syscall on its own: inject one kind at a time)
		"${UNDER_STRACE[@]}" strace -f -qq -c -P "$TEST_TMP/io.img" -e trace=pwrite64,write "${cmd[@]}" 2>&1 >/dev/null |
			awk '($NF == "pwrite64" || $NF == "write") && $4 ~ /^[0-9]+$/ { print $NF, $4 }' >counts
		[ -s counts ] || fail "$type $op: strace saw no write to the image"
		total=0
		while read -r sc count; do
			for n in $(seq "$count"); do
				cp io.orig io.img
				rc=0
				"${UNDER_STRACE[@]}" strace -f -qq -o /dev/null -P "$TEST_TMP/io.img" -e trace="$sc" \
					-e inject="$sc":error=EIO:when="$n" "${cmd[@]}" >/dev/null 2>err || rc=$?
				[ "$rc" != 0 ] || fail "$type $op: $sc #$n failed with EIO, yet the command succeeded"
				[ "$(wc -l <err)" = 1 ] || fail "$type $op: $sc #$n: not one line: $(cat err)"
				[ "$(sha io.img)" = "$BEFORE" ] || fail "$type $op: $sc #$n failed: the header was left changed: $(cat err)"
				total=$((total + 1))
			done
		done <counts
		[ "$total" -ge 2 ] || fail "$type $op: only $total failing writes tried"
		note "$type $op: each of $total writes failing in turn ($(tr '\n' ' ' <counts)) left the volume byte-identical; e.g. $(cat err)"
	done
done

# --- a stream larger than the volume ----------------------------------------
BEFORE=$(sha vol.img)
size=$(bc dump vol.img --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["data_size"] if "data_size" in d else d["segments"][0]["size"])' 2>/dev/null) ||
	size=$(( $(stat -c %s vol.img) - $(data_offset vol.img) ))
expect_exit 5 bash -c 'head -c $(('"$size"' + 1)) /dev/urandom | "$0" write vol.img --key-file key' "$BLOCKCRYPT"
note "write of a too-large stream: $ERR"
[[ "$ERR" == *"nothing written"* ]] || fail "the message does not say nothing was written: $ERR"
[ "$(sha vol.img)" = "$BEFORE" ] || fail "the refused stream changed the volume"
head -c "$size" /dev/urandom >exact
bc write vol.img --key-file key <exact 2>/dev/null || fail "a stream that exactly fills the volume was refused"
exit 0
