#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Growing a pool's encrypted vdev online: zfs-fuse pool on one volume's
# FUSE file, files + checksums -> `resize NAME` with an unchanged backing
# is a successful no-op -> `truncate -s` the backing from 256 to 384 MiB ->
# `resize NAME` -> list --json size, the FUSE file size (at once) and a new
# NBD connection (nbdinfo --size) all show the grown size -> `zpool online
# -e POOL VDEV` -> zpool list SIZE grows (zfs-fuse 0.7's online -e expands
# nothing, a control pool on a plain file shows it: then autoexpand=on and
# export/import must grow it instead) -> more data than the old pool
# could hold fits -> export/detach/attach/import: still the grown size,
# every file intact, scrub clean.  Then, pool exported, the backing is
# truncated below the volume: `resize NAME` is refused (non-zero, the
# message says --size is needed) and the device keeps its size; the tail is
# put back and the pool imports with every file intact, scrub clean.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/scenario-lib.bash"
requires cryptsetup nbdinfo truncate dd cmp
zfs_need

NAME=grow
POOL=bcgrow$$
FUSE_DIR=$TEST_TMP/fuse
UMNT=$TEST_TMP/pool
DEV=$FUSE_DIR/$NAME
MiB=$((1024 * 1024))
mkdir -p "$FUSE_DIR"
scn_teardown_register
UPPER_POOLS=("$POOL")

VOLUME_SIZE=256M new_volume grow.img key
DATA_OFFSET=$(data_offset grow.img)
[ "$DATA_OFFSET" -gt 0 ] 2>/dev/null || fail "cannot read the data offset"
OLD=$((256 * MiB - DATA_OFFSET))
NEW=$((384 * MiB - DATA_OFFSET))

# pool_bytes: zpool list SIZE in bytes (zfs-fuse prints 234M, 1.5G, ...).
pool_bytes() { # POOL
	zpool list -H -o size "$1" | awk '{ v = $1; u = substr(v, length(v)); n = v + 0
		m = (u == "K") ? 2^10 : (u == "M") ? 2^20 : (u == "G") ? 2^30 : (u == "T") ? 2^40 : 1
		printf "%d\n", n * m }'
}
sizes_are() { # BYTES WHEN: list --json, FUSE file, new NBD connection
	local s
	s=$(list_field "$NAME" size); [ "$s" = "$1" ] || fail "$2: list --json size $s, expected $1"
	s=$(stat -c %s "$DEV"); [ "$s" = "$1" ] || fail "$2: FUSE file size $s, expected $1"
	s=$(timeout 30 nbdinfo --size "$(nbd_uri "$NAME")") || fail "$2: nbdinfo --size failed"
	[ "$s" = "$1" ] || fail "$2: a new NBD connection sees $s bytes, expected $1"
}
attach() {
	tmo 60 attach bc attach grow.img --key-file key --name "$NAME" --fuse "$FUSE_DIR" || fail "attach failed: $(cat .tmo)"
}
import_pool() {
	tmo 120 "zpool import" zpool import -o cachefile=none -d "$FUSE_DIR" "$POOL" || fail "zpool import failed: $(cat .tmo)"
	mountpoint -q "$UMNT" || fail "pool not mounted on $UMNT after import"
}
export_pool() {
	tmo 120 "zpool export" zpool export "$POOL" || fail "zpool export failed: $(cat .tmo)"
}
check_clean() { # WHEN
	tree_check "$UMNT" "$TEST_TMP/sums"
	scrub_wait "$POOL" 180
	grep -Eq 'scrub completed .* with 0 errors' scrub.status || fail "$1: scrub found errors: $(cat scrub.status)"
	[ "$(vdev_counts "$POOL" "$DEV")" = "ONLINE 0 0 0" ] || fail "$1: vdev not ONLINE 0 0 0: $(cat scrub.status)"
}

zfs_start
# Control: does this zfs-fuse's `zpool online -e` expand a plain file vdev?
CPOOL=bcctl$$
UPPER_POOLS+=("$CPOOL")
truncate -s 128M control.img
tmo 60 "control zpool create" zpool create -f -o cachefile=none -m none "$CPOOL" "$TEST_TMP/control.img" ||
	fail "control zpool create failed: $(cat .tmo)"
# shellcheck disable=SC2034 # c0 is read by the eval'ed condition below
c0=$(pool_bytes "$CPOOL")
truncate -s 256M control.img
tmo 60 "control online -e" zpool online -e "$CPOOL" "$TEST_TMP/control.img" || true
CONTROL_EXPANDS=no
wait_for 5 eval '[ "$(pool_bytes "$CPOOL")" -gt "$c0" ]' && CONTROL_EXPANDS=yes
tmo 60 "control zpool destroy" zpool destroy "$CPOOL" || fail "control zpool destroy failed: $(cat .tmo)"
note "control: zpool online -e expands a plain-file vdev: $CONTROL_EXPANDS"

attach
sizes_are "$OLD" "freshly attached"
tmo 60 "zpool create" zpool create -f -o cachefile=none -O compression=off -m "$UMNT" "$POOL" "$DEV" ||
	fail "zpool create failed: $(cat .tmo)"
mkdir "$UMNT/d"
for i in 1 2 3 4; do random_file "$UMNT/d/a$i" $((5 * MiB + i)); done
sync
tree_sums "$UMNT" sums
SIZE0=$(pool_bytes "$POOL")
note "pool size before growing: $SIZE0 bytes"

# ---- resize without growth: a no-op that succeeds --------------------------
tmo 30 "resize (no growth)" bc resize "$NAME" || fail "resize with an unchanged backing failed (exit $?): $(cat .tmo)"
sizes_are "$OLD" "after a no-op resize"

# ---- grow --------------------------------------------------------------------
truncate -s 384M grow.img || fail "truncate -s 384M failed"
sizes_are "$OLD" "backing grown, before resize"
tmo 30 resize bc resize "$NAME" || fail "resize after growing the backing failed (exit $?): $(cat .tmo)"
note "resize said: $(cat .tmo)"
sizes_are "$NEW" "after resize"
tmo 60 "zpool online -e" zpool online -e "$POOL" "$DEV" || fail "zpool online -e $POOL $DEV failed: $(cat .tmo)"
# (when the control expanded, allow the stacked pool much longer to follow)
if ! wait_for "$([ "$CONTROL_EXPANDS" = yes ] && echo 30 || echo 5)" eval '[ "$(pool_bytes "$POOL")" -gt "$SIZE0" ]'; then
	# zfs-fuse 0.7's `online -e` may not expand at all: the control pool
	# on a plain file tells whether that is zfs-fuse or our FUSE file.
	[ "$CONTROL_EXPANDS" = no ] ||
		fail "zpool online -e grew a plain-file pool but not the pool on the FUSE file (size $(pool_bytes "$POOL"), was $SIZE0)"
	note "zfs-fuse's 'zpool online -e' does not expand even a plain-file vdev: autoexpand=on + export/import instead"
	tmo 30 "zpool set autoexpand" zpool set autoexpand=on "$POOL" || fail "zpool set autoexpand=on failed: $(cat .tmo)"
	export_pool
	import_pool
	[ "$(pool_bytes "$POOL")" -gt "$SIZE0" ] ||
		fail "pool size still $(pool_bytes "$POOL") after autoexpand=on + export/import (was $SIZE0): $(zpool list "$POOL")"
fi
SIZE1=$(pool_bytes "$POOL")
note "pool size after growing: $SIZE1 bytes"
[ "$SIZE1" -gt $((SIZE0 + 100 * MiB)) ] || fail "pool grew only from $SIZE0 to $SIZE1 bytes, expected about +128 MiB"
# More than the old pool could hold at all.
for i in $(seq 1 13); do random_file "$UMNT/d/b$i" $((18 * MiB + i)) || fail "writing b$i into the grown pool failed"; done
sync
used=$(du -sb "$UMNT" | cut -f1)
[ "$used" -gt "$SIZE0" ] || fail "only $used bytes written, not more than the old pool size $SIZE0"
tree_sums "$UMNT" sums
check_clean "grown, online"

export_pool
tmo 60 detach bc detach "$NAME" || fail "detach failed: $(cat .tmo)"
attach
sizes_are "$NEW" "re-attached after growing"
import_pool
[ "$(pool_bytes "$POOL")" = "$SIZE1" ] || fail "pool size $(pool_bytes "$POOL") after re-import, expected $SIZE1"
check_clean "grown, after detach/attach"

# ---- shrinking the backing: resize refuses -----------------------------------
export_pool
wait_for 10 eval '[ "$(list_field "$NAME" fuse_open)" = 0 ]' || fail "FUSE file still open after export"
FULL_SHA=$(sha grow.img)
dd if=grow.img of=tail.bin bs=1M skip=320 status=none || fail "saving the backing tail failed"
[ "$(stat -c %s tail.bin)" = $((64 * MiB)) ] || fail "tail.bin is $(stat -c %s tail.bin) bytes"
truncate -s 320M grow.img || fail "truncate -s 320M failed"
rc=0
tmo 30 "resize (shrunk backing)" bc resize "$NAME" || rc=$?
[ "$rc" != 0 ] || fail "resize accepted a backing smaller than the volume (output: $(cat .tmo))"
grep -q -- '--size' .tmo || fail "resize refusal (exit $rc) does not say that --size is needed: $(cat .tmo)"
note "resize with a shrunk backing: exit $rc: $(cat .tmo)"
[ "$(stat -c %s grow.img)" = $((320 * MiB)) ] || fail "the refused resize changed the backing size"
sizes_are "$NEW" "after the refused shrink"
# Reading where the backing no longer reaches must not invent data.
off=$((330 * MiB - DATA_OFFSET))
rc=0
timeout 30 dd if="$DEV" of=beyond.bin bs=4096 skip=$((off / 4096)) count=1 iflag=direct status=none 2>beyond.err || rc=$?
[ "$rc" != 124 ] || fail "reading the FUSE file beyond the shrunk backing hung"
note "reading the FUSE file beyond the shrunk backing: exit $rc, $(stat -c %s beyond.bin 2>/dev/null || echo 0) bytes, $(tr '\n' ' ' <beyond.err)"
[ "$rc" != 0 ] || [ "$(stat -c %s beyond.bin)" = 0 ] || fail "reading the FUSE file beyond the end of the shrunk backing returned data (exit 0)"
truncate -s 384M grow.img && dd if=tail.bin of=grow.img bs=1M seek=320 conv=notrunc status=none || fail "restoring the tail failed"
[ "$(sha grow.img)" = "$FULL_SHA" ] || fail "the backing differs after restoring its tail (blockcrypt wrote to it)"
tmo 30 "resize (restored)" bc resize "$NAME" || fail "resize with the restored backing failed: $(cat .tmo)"
sizes_are "$NEW" "after restoring the backing"
import_pool
check_clean "after the refused shrink"
export_pool
tmo 60 "detach --all" bc detach --all || fail "detach --all failed: $(cat .tmo)"
! grep -E 'Sanitizer|runtime error' "$BLOCKCRYPT_RUN_DIR/$NAME.log" >&2 || fail "sanitizer report in the daemon log (above)"
note "grow: resize grew the pool from $SIZE0 to $SIZE1 bytes; shrink refused; data intact"
exit 0
