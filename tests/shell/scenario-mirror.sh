#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A zfs-fuse mirror across two blockcrypt volumes heals ciphertext damage
# and survives losing one side: pool = mirror of the FUSE files of two
# attachments (different passphrases) -> files + checksums -> export ->
# detach only the second volume -> overwrite 4 MiB of its backing's data
# area at 20 MiB and at 40 MiB with random bytes (dd conv=notrunc) -> attach
# it again, import -> scrub: the damaged vdev shows CKSUM errors and a
# repair, the other none, "No known data errors" -> every file intact ->
# zpool clear -> a second scrub is clean (the repair reached the backing)
# -> plain detach of a pool member refuses (exit 9) -> detach --force of
# the second volume: the pool goes DEGRADED within a minute and stays
# readable and writable -> export, import from the first volume alone:
# DEGRADED, files intact -> re-attach the second, import both: ONLINE after
# a scrub, clean.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/scenario-lib.bash"
requires cryptsetup dd cmp
zfs_need

POOL=bcmir$$
UMNT=$TEST_TMP/pool
D1=$TEST_TMP/fuse1/m1
D2=$TEST_TMP/fuse2/m2
mkdir -p "$TEST_TMP/fuse1" "$TEST_TMP/fuse2"
scn_teardown_register
UPPER_POOLS=("$POOL")

VOLUME_SIZE=256M new_volume m1.img key1
printf 'second volume, other passphrase %s' "$RANDOM" >key2
VOLUME_SIZE=256M new_volume m2.img key2
DATA_OFFSET=$(data_offset m2.img)
[ "$DATA_OFFSET" -gt 0 ] 2>/dev/null || fail "cannot read the data offset of m2.img"
[ "$DATA_OFFSET" -lt $((20 * 1024 * 1024)) ] || fail "data offset $DATA_OFFSET is beyond the 20 MiB we damage"

attach_m() { # N
	tmo 60 "attach m$1" bc attach "m$1.img" --key-file "key$1" --name "m$1" --fuse "$TEST_TMP/fuse$1" ||
		fail "attach m$1 failed: $(cat "$TEST_TMP/.tmo")"
	[ -f "$TEST_TMP/fuse$1/m$1" ] || fail "FUSE file of m$1 missing after attach"
}
import_pool() { # DIR...
	local a=() d
	for d in "$@"; do a+=(-d "$d"); done
	tmo 120 "zpool import $POOL" zpool import -o cachefile=none "${a[@]}" "$POOL" ||
		fail "zpool import ${a[*]} $POOL failed: $(cat "$TEST_TMP/.tmo")"
	mountpoint -q "$UMNT" || fail "pool $POOL not mounted on $UMNT after import"
}
export_pool() {
	tmo 120 "zpool export $POOL" zpool export "$POOL" || fail "zpool export $POOL failed: $(cat "$TEST_TMP/.tmo")"
}

zfs_start
attach_m 1
attach_m 2
tmo 60 "zpool create" zpool create -f -o cachefile=none -O checksum=sha256 -O compression=off -m "$UMNT" "$POOL" mirror "$D1" "$D2" ||
	fail "zpool create mirror failed: $(cat .tmo)"
[ "$(pool_health "$POOL")" = ONLINE ] || fail "new mirror not ONLINE: $(zpool status "$POOL")"

# About 100 MiB of data on a 240 MiB mirror: the damaged ranges hold data.
mkdir -p "$UMNT/d"
for i in $(seq 1 12); do random_file "$UMNT/d/f$i" $((8 * 1024 * 1024 + i * 511)); done
random_file "$UMNT/small" 1000
sync
tree_sums "$UMNT" sums
[ "$(wc -l <sums)" = 13 ] || fail "expected 13 files, got $(wc -l <sums)"
export_pool
wait_for 10 eval '[ "$(list_field m2 fuse_open)" = 0 ]' || fail "m2's FUSE file still open after the export"
tmo 60 "detach m2" bc detach m2 || fail "detach m2 failed: $(cat .tmo)"
[ "$(list_names | tr '\n' ' ')" = "m1 " ] || fail "after detach m2, attached: $(list_names | tr '\n' ' ')"

# Damage the ciphertext of m2 well inside its data area.
before=$(sha m2.img)
for mib in 20 40; do
	dd if=/dev/urandom of=m2.img bs=1M seek="$mib" count=4 conv=notrunc status=none || fail "dd into m2.img at $mib MiB failed"
done
[ "$(sha m2.img)" != "$before" ] || fail "m2.img unchanged after dd"
[ "$(stat -c %s m2.img)" = $((256 * 1024 * 1024)) ] || fail "dd changed the size of m2.img"

attach_m 2
import_pool "$TEST_TMP/fuse1" "$TEST_TMP/fuse2"
scrub_wait "$POOL" 180
cp scrub.status scrub1.status
c1=$(vdev_counts "$POOL" "$D1")
c2=$(vdev_counts "$POOL" "$D2")
note "after the first scrub: m1 '$c1', m2 '$c2'"
set -- $c2
[ "${4:-0}" -gt 0 ] 2>/dev/null || fail "the damaged vdev m2 shows no CKSUM errors after scrub: $(cat scrub1.status)"
[ "$(echo "$c1" | cut -d' ' -f2-)" = "0 0 0" ] || fail "the undamaged vdev m1 has errors '$c1': $(cat scrub1.status)"
grep -E "^[[:space:]]+$D2 " scrub1.status | grep -q repaired || fail "zpool status shows no repair on $D2: $(cat scrub1.status)"
grep -q 'errors: No known data errors' scrub1.status || fail "data errors after scrub of a mirror: $(cat scrub1.status)"
tree_check "$UMNT" "$TEST_TMP/sums"

tmo 60 "zpool clear" zpool clear "$POOL" || fail "zpool clear failed: $(cat .tmo)"
[ "$(vdev_counts "$POOL" "$D2")" = "ONLINE 0 0 0" ] || fail "m2 after zpool clear: '$(vdev_counts "$POOL" "$D2")'"
scrub_wait "$POOL" 180
[ "$(vdev_counts "$POOL" "$D2")" = "ONLINE 0 0 0" ] ||
	fail "second scrub still finds errors on m2 (the repair did not reach the backing): $(cat scrub.status)"
! grep -E "^[[:space:]]+$D2 " scrub.status | grep -q repaired || fail "second scrub repaired m2 again: $(cat scrub.status)"

# ---- lose one side ----------------------------------------------------------
expect_exit 9 bc detach m2
[ -f "$D2" ] || fail "m2's FUSE file gone after a refused detach"
tmo 60 "detach --force m2" bc detach m2 --force || fail "detach --force m2 failed (exit $?): $(cat .tmo)"
! mountpoint -q "$TEST_TMP/fuse2" || fail "m2's FUSE mount still there after detach --force"
[ "$(list_names | tr '\n' ' ')" = "m1 " ] || fail "after detach --force m2, attached: $(list_names | tr '\n' ' ')"
# Write and sync until ZFS notices the missing side.
degraded() {
	random_file "$UMNT/probe" 65536
	timeout 30 sync
	[ "$(pool_health "$POOL")" = DEGRADED ]
}
wait_for 60 degraded || fail "pool not DEGRADED within 60 s of losing m2: $(zpool status "$POOL" 2>&1)"
rm -f "$UMNT/probe"
random_file "$UMNT/while-degraded" $((3 * 1024 * 1024))
(cd "$UMNT" && sha256sum while-degraded) >>sums
sync
tree_check "$UMNT" "$TEST_TMP/sums"

# export / import from the surviving side only.
export_pool
import_pool "$TEST_TMP/fuse1"
[ "$(pool_health "$POOL")" = DEGRADED ] || fail "pool imported from m1 alone is '$(pool_health "$POOL")', expected DEGRADED: $(zpool status "$POOL")"
tree_check "$UMNT" "$TEST_TMP/sums"

# Bring m2 back: both sides, resilvered by a scrub, clean.
export_pool
attach_m 2
import_pool "$TEST_TMP/fuse1" "$TEST_TMP/fuse2"
scrub_wait "$POOL" 180
[ "$(pool_health "$POOL")" = ONLINE ] || fail "pool not ONLINE with both sides back: $(cat scrub.status)"
grep -q 'errors: No known data errors' scrub.status || fail "data errors with both sides back: $(cat scrub.status)"
tmo 60 "zpool clear" zpool clear "$POOL" || fail "zpool clear failed: $(cat .tmo)"
scrub_wait "$POOL" 180
[ "$(vdev_counts "$POOL" "$D1")" = "ONLINE 0 0 0" ] && [ "$(vdev_counts "$POOL" "$D2")" = "ONLINE 0 0 0" ] ||
	fail "mirror not clean after resilver and clear: $(cat scrub.status)"
tree_check "$UMNT" "$TEST_TMP/sums"
export_pool
tmo 60 "detach --all" bc detach --all || fail "detach --all failed: $(cat .tmo)"
for n in m1 m2; do
	! grep -E 'Sanitizer|runtime error' "$BLOCKCRYPT_RUN_DIR/$n.log" >&2 || fail "sanitizer report in the $n daemon log (above)"
done
note "mirror: ciphertext damage on one side repaired by scrub; DEGRADED and readable without it; ONLINE again"
exit 0
