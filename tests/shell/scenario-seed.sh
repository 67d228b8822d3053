#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The seed scenario, end to end: a LOWER zfs-fuse pool on a plain file
# holds the volume's backing file (a file in a lower dataset stands in for
# a ZVOL); a LUKS2 volume there is keyed by a SoftHSM token key (genkey +
# enroll); an UPPER zfs-fuse pool (checksum=sha256) lives on the volume's
# FUSE file, with a canmount=off parent dataset and a child dataset holding
# files, their checksums and a snapshot.  "Reboot": export the upper pool,
# `detach --all` -> the FUSE dir is empty and `zpool import -d` finds
# nothing -> `attach --all --tab TAB` (KEY `token`, pin-file, after-attach=
# zpool import) brings the pool back in one step -> `zfs mount -a` -> files,
# snapshot and properties intact, scrub clean, the backing holds no
# plaintext.
#
# The lower pool is served by its own zfs-fuse in a private mount namespace
# (see scenario-lib.bash: one zfs-fuse serving both pools deadlocks).
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/scenario-lib.bash"
requires cryptsetup grep find
zfs_need
p11_token_setup

NAME=seed
LPOOL=bclow$$
UPOOL=bcseed$$
FUSE_DIR=$TEST_TMP/fuse/$NAME
UMNT=$TEST_TMP/upper
CHILD=$UMNT/parent/child
TAB=$TEST_TMP/blockcrypttab
mkdir -p "$FUSE_DIR"
scn_teardown_register
UPPER_POOLS=("$UPOOL")
LOWER_POOLS=("$LPOOL")

# ---- lower pool: the backing lives in a dataset ----------------------------
zfs_lower_start
truncate -s 512M lower.img
tmo 60 "lower zpool create" lower zpool create -f -o cachefile=none -m "$SHARED/lower" "$LPOOL" "$TEST_TMP/lower.img" ||
	fail "lower zpool create failed: $(cat .tmo)"
tmo 60 "lower zfs create" lower zfs create "$LPOOL/vols" || fail "lower zfs create $LPOOL/vols failed: $(cat .tmo)"
BACKING=$SHARED/lower/vols/$NAME.img
mountpoint -q "$SHARED/lower/vols" || fail "lower dataset $LPOOL/vols is not visible here at $SHARED/lower/vols"
[ "$(stat -f -c %T "$SHARED/lower/vols")" = fuseblk ] || [ "$(findmnt -n -o FSTYPE "$SHARED/lower/vols")" = fuse.zfs ] ||
	fail "$SHARED/lower/vols is not a zfs-fuse mount: $(findmnt -n "$SHARED/lower/vols")"

zfs_start
zpool list -H -o name 2>/dev/null | grep -qx "$LPOOL" && fail "the upper zfs-fuse sees the lower pool: the daemons are not separate"

# ---- the volume, keyed by a token key --------------------------------------
VOLUME_SIZE=256M new_volume "$BACKING" pass
tmo 60 genkey bc genkey --token pkcs11:token=bctest --label seedkey --pin-file pin || fail "genkey failed: $(cat .tmo)"
tmo 60 enroll bc enroll "$BACKING" --pkcs11 'pkcs11:token=bctest;object=seedkey' --key-file pass --pin-file pin ||
	fail "enroll failed: $(cat .tmo)"
DATA_OFFSET=$(data_offset "$BACKING")
VOL_BYTES=$((256 * 1024 * 1024 - DATA_OFFSET))

# First life: attach with the token only (no passphrase anywhere).
tmo 60 "attach --token-only" bc attach "$BACKING" --name "$NAME" --token-only --pin-file pin --batch --fuse "$FUSE_DIR" </dev/null ||
	fail "attach with the token failed: $(cat .tmo)"
DEV=$FUSE_DIR/$NAME
[ "$(sed -n 2p .tmo)" = "$DEV" ] || fail "attach printed '$(cat .tmo)', expected the FUSE file $DEV on line 2"
[ "$(stat -c %s "$DEV")" = "$VOL_BYTES" ] || fail "FUSE file is $(stat -c %s "$DEV") bytes, expected $VOL_BYTES"

tmo 60 "zpool create upper" zpool create -f -o cachefile=none -O checksum=sha256 -O compression=off -m "$UMNT" "$UPOOL" "$DEV" ||
	fail "zpool create $UPOOL on $DEV failed: $(cat .tmo)"
tmo 60 "zfs create parent" zfs create -o canmount=off "$UPOOL/parent" || fail "zfs create parent failed: $(cat .tmo)"
tmo 60 "zfs create child" zfs create "$UPOOL/parent/child" || fail "zfs create child failed: $(cat .tmo)"
mountpoint -q "$CHILD" || fail "child dataset not mounted on $CHILD"

MARK="seed-plaintext-marker-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
random_file "$CHILD/one-mib" $((1024 * 1024))
random_file "$CHILD/eight-mib" $((8 * 1024 * 1024))
random_file "$CHILD/odd-size" $((3 * 1024 * 1024 + 4097))
: >"$CHILD/empty"
mkdir -p "$CHILD/tree/a/b" "$CHILD/tree/c"
for d in tree tree/a tree/a/b tree/c; do
	for i in 1 2 3; do random_file "$CHILD/$d/f$i" $((RANDOM * 5 + i)); done
done
for ((i = 0; i < 2048; i++)); do echo "$MARK $i"; done >"$CHILD/marker.txt"
sync
tree_sums "$CHILD" sums.snap
[ "$(wc -l <sums.snap)" = 17 ] || fail "expected 17 files in the checksum list, got $(wc -l <sums.snap)"
tmo 60 "zfs snapshot" zfs snapshot "$UPOOL/parent/child@seed" || fail "zfs snapshot failed: $(cat .tmo)"
# Live data moves on after the snapshot: one file changes, one is added.
random_file "$CHILD/one-mib" $((1024 * 1024))
random_file "$CHILD/after-snapshot" $((2 * 1024 * 1024 + 1))
sync
tree_sums "$CHILD" sums.live
cmp -s sums.snap sums.live && fail "live checksums equal the snapshot's: the post-snapshot writes did not happen"

# ---- "shutdown": export, detach --all --------------------------------------
tmo 120 "zpool export $UPOOL" zpool export "$UPOOL" || fail "zpool export $UPOOL failed: $(cat .tmo)"
wait_for 10 eval '[ "$(list_field "$NAME" fuse_open)" = 0 ]' ||
	fail "FUSE file still open (fuse_open $(list_field "$NAME" fuse_open)) 10 s after the export"
tmo 60 "detach --all" bc detach --all || fail "detach --all failed (exit $?): $(cat .tmo)"
[ -z "$(list_names)" ] || fail "list --json after detach --all: $(list_names | tr '\n' ' ')"
! mountpoint -q "$FUSE_DIR" || fail "FUSE mount $FUSE_DIR still there after detach --all"
[ -z "$(ls -A "$FUSE_DIR")" ] || fail "FUSE dir not empty after detach --all: $(ls -A "$FUSE_DIR")"
tmo 60 "zpool import -d (nothing)" zpool import -d "$FUSE_DIR" || true
! grep -q "$UPOOL" .tmo || fail "zpool import -d $FUSE_DIR still finds the pool with the volume detached: $(cat .tmo)"
! zpool list -H -o name 2>/dev/null | grep -qx "$UPOOL" || fail "pool $UPOOL still imported after export/detach"

# The plaintext never reached the lower pool.
n=$(grep -c -a -F "$MARK" "$BACKING" || true)
[ "$n" = 0 ] || fail "plaintext marker found $n times in the backing file on the lower pool"
BACKING_SHA=$(sha "$BACKING")

# ---- "boot": one step brings the pool back ---------------------------------
cat >"$TAB" <<EOF
# blockcrypttab for the seed scenario
$NAME  $BACKING  token  fuse=$FUSE_DIR,pin-file=$TEST_TMP/pin,after-attach=zpool import -o cachefile=none -d "\$BLOCKCRYPT_FUSE_DIR" $UPOOL
EOF
[ "$(sha "$BACKING")" = "$BACKING_SHA" ] || fail "the backing changed while detached"
tmo 180 "attach --all" bc attach --all --tab "$TAB" --batch </dev/null || fail "attach --all --tab failed (exit $?): $(cat .tmo)"
[ "$(list_names)" = "$NAME" ] || fail "after attach --all, list --json has '$(list_names | tr '\n' ' ')', expected $NAME"
[ "$(list_field "$NAME" fuse_file)" = "$DEV" ] || fail "fuse_file is '$(list_field "$NAME" fuse_file)', expected $DEV"
[ "$(pool_health "$UPOOL")" = ONLINE ] || fail "pool $UPOOL not ONLINE after attach --all (the after-attach import): $(zpool status "$UPOOL" 2>&1)"
tmo 60 "zfs mount -a" zfs mount -a || fail "zfs mount -a failed: $(cat .tmo)"
mountpoint -q "$CHILD" || fail "child dataset not mounted on $CHILD after zfs mount -a"
[ "$(zfs get -H -o value canmount "$UPOOL/parent")" = off ] || fail "parent lost canmount=off"
[ "$(zfs get -H -o value mounted "$UPOOL/parent")" = no ] || fail "canmount=off parent got mounted"
[ "$(zfs get -H -o value checksum "$UPOOL/parent/child")" = sha256 ] ||
	fail "child checksum is '$(zfs get -H -o value checksum "$UPOOL/parent/child")', expected sha256 (inherited)"

tree_sums "$CHILD" sums.after
diff sums.live sums.after >sums.diff || fail "live files changed across the reboot: $(cat sums.diff)"
tree_check "$CHILD" "$TEST_TMP/sums.live"
zfs list -H -t snapshot -o name >snaps 2>&1 || fail "zfs list -t snapshot failed: $(cat snaps)"
grep -qx "$UPOOL/parent/child@seed" snaps || fail "snapshot $UPOOL/parent/child@seed missing after the reboot: $(cat snaps)"
# The snapshot holds the pre-snapshot state: clone it and compare.
tmo 60 "zfs clone" zfs clone "$UPOOL/parent/child@seed" "$UPOOL/parent/restored" || fail "zfs clone failed: $(cat .tmo)"
mountpoint -q "$UMNT/parent/restored" || fail "clone not mounted on $UMNT/parent/restored"
tree_sums "$UMNT/parent/restored" sums.clone
diff sums.snap sums.clone >sums.diff || fail "snapshot contents differ from the files at snapshot time: $(cat sums.diff)"

scrub_wait "$UPOOL" 120
grep -Eq 'scrub completed .* with 0 errors' scrub.status || fail "scrub did not complete with 0 errors: $(cat scrub.status)"
grep -q 'errors: No known data errors' scrub.status || fail "zpool status reports data errors: $(cat scrub.status)"
[ "$(vdev_counts "$UPOOL" "$DEV")" = "ONLINE 0 0 0" ] || fail "vdev not ONLINE 0 0 0: $(cat scrub.status)"

# ---- shutdown again, in order ----------------------------------------------
tmo 120 "zpool export $UPOOL" zpool export "$UPOOL" || fail "final zpool export failed: $(cat .tmo)"
tmo 60 "detach --all" bc detach --all || fail "final detach --all failed: $(cat .tmo)"
[ -z "$(list_names)" ] || fail "volumes still attached at the end: $(list_names)"
! grep -E 'Sanitizer|runtime error' "$BLOCKCRYPT_RUN_DIR/$NAME.log" >&2 || fail "sanitizer report in the daemon log (above)"
note "seed: token-keyed volume on a lower pool, upper pool (sha256, parent/child, snapshot) back after detach --all / attach --all, scrub clean"
exit 0
