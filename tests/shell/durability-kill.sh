#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The NBD daemon killed with SIGKILL under heavy concurrent writes loses
# nothing it acknowledged (replies leave only after pwrite() to the backing,
# whose page cache survives the process), and no unit is torn or garbage.
#
# For LUKS2 with 4096- and 512-byte sectors and for LUKS1: a volume on a
# regular file is filled with self-identifying 512-byte units
# (durability_load.py: offset + generation + BLAKE2b filler), then, per
# round, 4 connections x 8 requests in flight write random ranges (1 to
# 512 units, often not sector aligned, so 4096-byte sectors are
# read-modified-written under concurrency), 15% with FUA, with FLUSHes in
# between; after a random number of completed requests the daemon gets
# SIGKILL.  Then (odd rounds) `list` must drop the dead daemon's entry, or
# (even rounds) `attach` of the same name must cope with the stale runtime
# files (state and socket) by itself; after re-attaching, reading
# everything back over NBD must show, for every unit, its newest
# acknowledged generation or a newer one that was in flight, never anything
# else.  The checker proves on its own copy that it catches a flipped byte,
# a rolled-back unit and a misplaced unit.  Finally the image is decrypted
# independently (blockcrypt cat, and the python oracle with cryptsetup's
# volume key) and must equal what NBD served; cryptsetup still opens it.
# DURABILITY_SEED=N repeats a run.
. "$(dirname "$0")/functions.bash"
requires cryptsetup cmp
requires_python_nbd
LOAD=(/usr/bin/python3 "$TESTS_DIR/shell/durability_load.py")
SEED=${DURABILITY_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
note "seed $SEED (DURABILITY_SEED=$SEED repeats this run)"
RANDOM=$SEED
ROUNDS=${DURABILITY_ROUNDS:-2}

# run_case NAME VOLUME_SIZE FORMAT_ARGS...
run_case() {
	local name=$1 size=$2 uri pid r ka
	shift 2
	VOLUME_SIZE=$size new_volume "$name.img" key "$@"
	uri=$(bc attach "$name.img" --key-file key --name "$name") || fail "$name: attach failed"
	"${LOAD[@]}" fill "$uri" "$name.state" 2>py.err || fail "$name: fill failed: $(cat py.err)"
	for r in $(seq "$ROUNDS"); do
		pid=$(daemon_pid "$name")
		ka=$((300 + RANDOM % 5000))
		note "$name round $r: SIGKILL to daemon $pid after $ka completed requests"
		timeout 120 "${LOAD[@]}" run "$uri" "$name.state" --seed $((SEED * 100 + r)) \
			--kill-after "$ka" --kill "$pid" 2>py.err || fail "$name round $r: load failed: $(cat py.err)"
		grep '^#' py.err >&2 || true
		gone "$pid" || fail "$name round $r: daemon $pid still alive 10 s after SIGKILL"
		[ -e "$BLOCKCRYPT_RUN_DIR/$name.json" ] && [ -S "$BLOCKCRYPT_RUN_DIR/$name.sock" ] ||
			fail "$name: the killed daemon left no runtime entry / socket (test assumption)"
		if [ $((r % 2)) = 1 ]; then
			# Odd rounds: `list` must drop the dead daemon's entry.
			bc list --json >list.json 2>list.err || fail "$name: list failed after the kill: $(cat list.err)"
			/usr/bin/python3 -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1]))) != 0)' list.json ||
				fail "$name: list still shows the killed daemon: $(tr -d '\n' <list.json)"
		fi
		# Even rounds: attach itself meets the stale entry and socket.
		uri=$(bc attach "$name.img" --key-file key --name "$name" 2>attach.err) ||
			fail "$name round $r: re-attach over the stale entry failed: $(cat attach.err)"
		timeout 120 "${LOAD[@]}" check "$uri" "$name.state" --mode proc --dump "$name.nbd" 2>py.err ||
			fail "$name round $r: after SIGKILL: $(cat py.err)"
		grep '^#' py.err >&2 || true
	done
	bc detach "$name" >/dev/null 2>detach.err || fail "$name: detach failed: $(cat detach.err)"

	# Independent reads of the same image.
	served_image_ok "$name"
}

run_case luks2-4k 48M --sector-size 4096
run_case luks2-512 48M --sector-size 512
run_case luks1 34M --type luks1
exit 0
