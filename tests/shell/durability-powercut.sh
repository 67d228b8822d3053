#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# FLUSH and FUA are honoured: a simulated power cut under heavy concurrent
# writes keeps every write acknowledged with FUA or before a completed
# FLUSH, and every other unit is wholly one generation ever written to it
# (never torn, never garbage).
#
# The "disk" with a volatile write cache: nbdkit's file plugin on the image
# behind its cache filter in writeback mode (writes stay in nbdkit's memory/
# temporary file until a flush), exposed as a regular file by nbdfuse.  The
# blockcrypt daemon serves that file; its FLUSH/FUA fdatasync() reaches
# nbdkit as an NBD flush.  Per round (LUKS2 4096- and 512-byte sectors,
# LUKS1): 4 connections x 8 requests in flight of random writes of
# self-identifying 512-byte units (durability_load.py; 3% FUA, FLUSH now
# and then), then at a random moment SIGKILL to nbdkit (the power cut: its
# cache is gone) and to the daemon.  The image is then attached directly
# under the same name (over the dead daemon's stale entry) and read back
# over NBD: each unit must hold a generation not older than its newest
# durable one.  The harness must actually lose acknowledged-but-unflushed
# writes in some round, or it would prove nothing about FLUSH; and in one
# control round the cache ignores flushes (cache=unsafe), which the same
# check must report as lost durable writes.  Each case also has a
# FLUSH-only round (no FUA at all, FLUSH 5% of requests, at least one
# succeeding before the cut): a FUA write syncs the whole backing, so in the
# mixed rounds a FLUSH that does nothing is noticed only if the cut lands
# between its reply and the next FUA write; here nothing else ever flushes,
# so the writes a FLUSH made durable are lost at every cut unless FLUSH
# reached the disk (the check requires some durable writes per round).
# (durability-order.sh checks the order of replies and backing flushes
# directly.)  Finally
# blockcrypt cat and the python oracle (with cryptsetup's volume key) must
# decrypt the image to what NBD served.  DURABILITY_SEED=N repeats a run.
. "$(dirname "$0")/functions.bash"
requires cryptsetup cmp nbdkit nbdfuse fusermount3 mountpoint
requires_python_nbd
requires_fuse
LOAD=(/usr/bin/python3 "$TESTS_DIR/shell/durability_load.py")
SEED=${DURABILITY_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
note "seed $SEED (DURABILITY_SEED=$SEED repeats this run)"
RANDOM=$SEED
ROUNDS=${DURABILITY_ROUNDS:-2}

. "$TESTS_DIR/shell/disk-lib.bash"
# A power cut: the cache must never be flushed on the way out.
DISK_STOP_SIGNAL=KILL
mkdir -p "$TEST_TMP/cache"

# start_disk IMG [MODE]: $MNT/disk is IMG behind a cache (default
# writeback; "unsafe" ignores flushes).
start_disk() {
	TMPDIR=$TEST_TMP/cache disk_start --filter=cache file "$1" cache="${2:-writeback}"
}

TOTAL_LOST=0

# run_case NAME VOLUME_SIZE FORMAT_ARGS...
run_case() {
	local name=$1 size=$2 uri pid r ka lost mix seed
	shift 2
	VOLUME_SIZE=$size new_volume "$name.img" key "$@"
	uri=$(bc attach "$name.img" --key-file key --name "$name") || fail "$name: attach failed"
	"${LOAD[@]}" fill "$uri" "$name.state" 2>py.err || fail "$name: fill failed: $(cat py.err)"
	bc detach "$name" >/dev/null 2>detach.err || fail "$name: detach failed: $(cat detach.err)"
	for r in $(seq "$ROUNDS") flush ${CONTROL:+control}; do
		# The control round: a disk that ignores flushes must fail the check.
		start_disk "$name.img" "$([ "$r" = control ] && echo unsafe || echo writeback)"
		uri=$(bc attach "$MNT/disk" --key-file key --name "$name" 2>attach.err) ||
			fail "$name: attach of the cached disk failed: $(cat attach.err)"
		pid=$(daemon_pid "$name")
		ka=$((300 + RANDOM % 5000))
		note "$name round $r: power cut (SIGKILL to nbdkit $NBDKIT_PID, daemon $pid) after $ka completed requests"
		case $r in
		flush) mix=(--fua-prob 0 --flush-prob 0.05 --min-flushes 1) seed=98 ;;
		control) mix=(--fua-prob 0.03 --flush-prob 0.01) seed=99 ;;
		*) mix=(--fua-prob 0.03 --flush-prob 0.01) seed=$r ;;
		esac
		timeout 120 "${LOAD[@]}" run "$uri" "$name.state" --seed $((SEED * 100 + seed)) "${mix[@]}" \
			--kill-after "$ka" --kill "$NBDKIT_PID,$pid" 2>py.err || fail "$name round $r: load failed: $(cat py.err)"
		grep '^#' py.err >&2 || true
		gone "$pid" || fail "$name round $r: daemon $pid still alive 10 s after SIGKILL"
		disk_stop
		uri=$(bc attach "$name.img" --key-file key --name "$name" 2>attach.err) ||
			fail "$name round $r: re-attach after the power cut failed: $(cat attach.err)"
		if [ "$r" = control ]; then
			if timeout 120 "${LOAD[@]}" check "$uri" "$name.state" --mode power --dump "$name.nbd" 2>py.err; then
				fail "$name: the check passed although the disk ignored every flush"
			fi
			grep -q '^FAIL: .*older than the newest durable write (lost)' py.err ||
				fail "$name: the control round failed for another reason: $(cat py.err)"
			note "$name control round (flushes ignored): the check failed as it must: $(grep -c '^FAIL' py.err) kind(s)"
			bc detach "$name" >/dev/null 2>detach.err || fail "$name: detach failed: $(cat detach.err)"
			continue
		fi
		timeout 120 "${LOAD[@]}" check "$uri" "$name.state" --mode power --dump "$name.nbd" \
			--stats stats.json 2>py.err || fail "$name round $r: after the power cut: $(cat py.err)"
		grep '^#' py.err >&2 || true
		lost=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lost_unflushed_units"])' stats.json)
		TOTAL_LOST=$((TOTAL_LOST + lost))
		bc detach "$name" >/dev/null 2>detach.err || fail "$name: detach failed: $(cat detach.err)"
	done

	# Independent reads of the same image.
	served_image_ok "$name"
}

CONTROL=yes run_case luks2-4k 48M --sector-size 4096
run_case luks2-512 48M --sector-size 512
run_case luks1 34M --type luks1
note "acknowledged but unflushed units lost by the power cuts: $TOTAL_LOST"
[ "$TOTAL_LOST" -gt 0 ] ||
	fail "no power cut lost any unflushed write: the simulated write cache did not bite, so FLUSH/FUA were not tested"
exit 0
