#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An attached volume cannot be destroyed under its daemon: with it attached
# (a file, and a block device), format, erase, header-restore, repair,
# remove-key and write exit 9 with one line naming the holder, the backing
# is byte-identical, and the daemon keeps serving the same data; cat (a
# reader) is refused too.  Key changes that keep the data reachable --
# add-key, change-key -- work on a live volume, as with cryptsetup.
# After detach the destructive commands work again.
. "$(dirname "$0")/functions.bash"
requires nbdcopy losetup cryptsetup
new_volume vol.img key
printf 'second key' >key2
printf 'third key' >key3
random_file data $((1 << 20))
bc write vol.img --key-file key <data >/dev/null 2>&1 || fail "write failed"
bc header-backup vol.img hdr.bak 2>/dev/null || fail "header-backup failed"

# live_checks BACKING NAME
live_checks() {
	local b=$1 name=$2 uri pid before
	uri=$(bc attach "$b" --key-file key --name "$name") || fail "$name: attach failed"
	pid=$(daemon_pid "$name")
	nbdcopy "$uri" served.before || fail "$name: cannot read the export"
	before=$(sha "$b")
	for cmd in "format $b --batch --key-file key2 ${FAST_KDF[*]}" "erase $b --batch" \
		"header-restore $b hdr.bak --batch" "repair $b" "remove-key $b --key-file key" \
		"remove-key $b --key-slot 0 --batch" "write $b --key-file key" "cat $b --key-file key"; do
		# shellcheck disable=SC2086
		expect_exit 9 bc $cmd <data
		[[ "$ERR" == *"is attached as '$name', pid $pid"* ]] || fail "$name: $cmd: the error does not name the holder: $ERR"
		[ "$(sha "$b")" = "$before" ] || fail "$name: refused '$cmd' changed the backing"
	done
	note "$name: refused while attached: $ERR"
	# Key changes are fine while attached, and the daemon notices nothing.
	bc add-key "$b" --key-file key --new-key-file key2 "${FAST_KDF[@]}" 2>err ||
		fail "$name: add-key on the live volume failed: $(cat err)"
	bc change-key "$b" --key-file key2 --new-key-file key3 "${FAST_KDF[@]}" 2>err ||
		fail "$name: change-key on the live volume failed: $(cat err)"
	cryptsetup open --test-passphrase --key-file key3 "$b" || fail "$name: the changed key does not open it"
	nbdcopy "$uri" served.after || fail "$name: the export stopped serving"
	cmp -s served.before served.after || fail "$name: the export's data changed"
	cmp -s <(head -c $((1 << 20)) served.after) data || fail "$name: the export does not serve the data"
	bc detach "$name" >/dev/null 2>&1 || fail "$name: detach failed"
	# Not attached: the same commands act again.
	bc remove-key "$b" --key-file key3 --batch 2>err || fail "$name: remove-key after detach failed: $(cat err)"
}

live_checks vol.img file
LOOP=$(losetup -f --show vol.img) || skip "no loop device"
cleanup_fn "losetup -d $LOOP"
live_checks "$LOOP" blk
bc erase "$LOOP" --batch 2>err || fail "erase after detach failed: $(cat err)"
exit 0
