#!/usr/bin/env bash
# A backing that cannot be written (as root: an immutable file, chattr +i;
# and a file on a read-only tmpfs mount): every command that writes (write,
# add-key, change-key, remove-key, erase, format, header-restore) fails
# with exit 6 and one line, and the backing is byte-identical; read-only
# commands (cat, dump, header-backup to elsewhere) still work; format of a
# new file on the read-only mount exits 6 and creates nothing.  Each part
# is skipped loudly when the machine cannot provide it.
. "$(dirname "$0")/functions.sh"
requires sha256sum cp

problems=0
problem() { echo "FAIL: $(basename "$0"): $*" >&2; problems=$((problems + 1)); }

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

parts=0

# ---- part 1: immutable file -------------------------------------------------
touch probe
if command -v chattr >/dev/null && chattr +i probe 2>/dev/null && lsattr -d probe 2>/dev/null | grep -q '^[^ ]*i'; then
	chattr -i probe
	cp vol imm
	cleanup_fn "chattr -i '$TEST_TMP/imm' 2>/dev/null"
	chattr +i imm
	check_unwritable "immutable file" imm
	parts=$((parts + 1))
else
	echo "SKIP (part): $(basename "$0"): chattr +i does not work on $(df --output=fstype . | tail -n 1) here" >&2
fi

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
	echo "SKIP (part): $(basename "$0"): cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)" >&2
fi

if [ "$parts" = 0 ]; then
	echo "SKIP: $(basename "$0"): neither an immutable file nor a read-only mount is possible here" >&2
	exit 77
fi
[ "$problems" = 0 ] || fail "$problems problem(s), see above"
exit 0
