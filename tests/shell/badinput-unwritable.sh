#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A backing that cannot be written (as root: an immutable file, chattr +i;
# and a file on a read-only tmpfs mount): every command that writes (write,
# add-key, change-key, remove-key, erase, format, header-restore) fails
# with exit 6 and one line, and the backing is byte-identical; read-only
# commands (cat, dump, header-backup to elsewhere) still work; format of a
# new file on the read-only mount exits 6 and creates nothing.  Both parts
# must run: where the test directory's file system has no immutable flag
# (tmpfs), part 1 uses an ext4 file system on a loop device; a part the
# machine cannot provide at all skips the whole test (exit 77), which the
# suite counts as a failure -- never a pass with half the checks.
. "$(dirname "$0")/functions.bash"
requires sha256sum cp

printf 'read only key' >key
printf 'new key' >key2
random_file data $((1048576))
bc format vol --batch --key-file key --size 20M "${FAST_KDF[@]}" >/dev/null 2>&1
bc write vol --key-file key <data 2>/dev/null
bc add-key vol --key-file key --new-key-file key2 --key-slot 1 "${FAST_KDF[@]}" 2>/dev/null
bc cat vol --key-file key >ref
bc header-backup vol hdr 2>/dev/null

# denied LABEL FILE CMD...: CMD fails with exit 6 and one line; FILE unchanged.
denied() {
	local label=$1 f=$2 before got=0; shift 2
	before=$(sha "$f")
	"$@" <data >/dev/null 2>err || got=$?
	note "$label: ${*:2:1}: exit $got: $(cat err)"
	[ "$got" = 6 ] || problem "$label: $*: expected exit 6, got $got: $(cat err)"
	[ "$(wc -l <err)" = 1 ] || problem "$label: $*: expected one error line, got: $(cat err)"
	[ "$(sha "$f")" = "$before" ] || problem "$label: $*: modified the backing"
}

check_unwritable() {
	local label=$1 f=$2
	bc cat "$f" --key-file key >out 2>err || problem "$label: cat failed: $(cat err)"
	cmp -s out ref || problem "$label: cat gives the wrong data"
	bc dump "$f" >/dev/null 2>err || problem "$label: dump failed: $(cat err)"
	rm -f hb; bc header-backup "$f" hb 2>err || problem "$label: header-backup to a writable place failed: $(cat err)"
	denied "$label" "$f" bc write "$f" --key-file key
	denied "$label" "$f" bc add-key "$f" --key-file key --new-key-file key2 "${FAST_KDF[@]}"
	denied "$label" "$f" bc change-key "$f" --key-file key2 --new-key-file data "${FAST_KDF[@]}"
	denied "$label" "$f" bc remove-key "$f" --key-file key2
	denied "$label" "$f" bc remove-key "$f" --key-slot 1 --batch
	denied "$label" "$f" bc erase "$f" --batch
	denied "$label" "$f" bc format "$f" --batch --key-file key2 "${FAST_KDF[@]}"
	denied "$label" "$f" bc header-restore "$f" hdr --batch
	bc cat "$f" --key-file key2 >out 2>err || problem "$label: slot 1 no longer opens: $(cat err)"
	cmp -s out ref || problem "$label: cat gives the wrong data at the end"
}


# immutable_ok FILE: chattr +i works on FILE's file system.
immutable_ok() {
	touch "$1"
	chattr +i "$1" 2>/dev/null || return 1
	local attrs
	attrs=$(lsattr -d "$1" 2>/dev/null) || attrs=
	chattr -i "$1"
	[[ "$attrs" == *i*" "* ]] && [[ "${attrs%% *}" == *i* ]]
}

# ---- part 1: immutable file -------------------------------------------------
requires chattr lsattr
imm_dir=$TEST_TMP
if ! immutable_ok probe; then
	# e.g. TMPDIR on tmpfs: an ext4 file system on a loop device has the flag.
	requires mkfs.ext4 losetup
	truncate -s 64M ext4.img
	mkfs.ext4 -q -F ext4.img || fail "mkfs.ext4 failed"
	mkdir ext4
	mount -o loop ext4.img ext4 2>mount.err || skip "needs an ext4 loop mount for chattr +i (not on $(df --output=fstype . | tail -n 1)): $(cat mount.err)"
	cleanup_fn "umount '$TEST_TMP/ext4'"
	imm_dir=$TEST_TMP/ext4
	immutable_ok "$imm_dir/probe" || fail "chattr +i does not work even on ext4"
	note "part 1 on an ext4 loop mount: chattr +i does not work on $(df --output=fstype . | tail -n 1)"
fi
cp vol "$imm_dir/imm"
cleanup_fn "chattr -i '$imm_dir/imm' 2>/dev/null"
chattr +i "$imm_dir/imm"
check_unwritable "immutable file" "$imm_dir/imm"
parts=1

# ---- part 2: read-only tmpfs mount --------------------------------------------
mkdir mnt
if mount -t tmpfs -o size=48m tmpfs mnt 2>/dev/null; then
	cleanup_fn "umount '$TEST_TMP/mnt'"
	cp vol mnt/vol
	mount -o remount,ro mnt || fail "cannot remount the tmpfs read-only"
	check_unwritable "read-only mount" mnt/vol
	got=0; bc format mnt/new --size 20M --batch --key-file key "${FAST_KDF[@]}" >/dev/null 2>err || got=$?
	note "read-only mount: format of a new file: exit $got: $(cat err)"
	[ "$got" = 6 ] || problem "read-only mount: format of a new file: expected exit 6, got $got: $(cat err)"
	[ ! -e mnt/new ] || problem "read-only mount: format created a file"
	got=0; bc header-backup mnt/vol mnt/hb >/dev/null 2>err || got=$?
	[ "$got" = 6 ] || problem "read-only mount: header-backup into it: expected exit 6, got $got: $(cat err)"
	parts=$((parts + 1))
else
	skip "cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
fi

[ "$parts" = 2 ] || fail "only $parts of 2 parts ran"
check_problems
exit 0
