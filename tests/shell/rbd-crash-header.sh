#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# add-key and change-key on an RBD image survive SIGKILL between any two
# of their writes, as on files (crash-header-keys.sh): afterwards the
# image opens with the old key set or with the new one (change-key: or
# both), never with neither, and the data area is untouched.
#
# On RBD the header goes back to the image through librbd (staged in
# memory, written back block by block in a crash-safe order, with a flush
# after each phase: lib/luks/header_stage.c), so the kill points are
# blockcrypt's calls into librbd, not system calls: gdb stops the process
# on entering rbd_aio_write (the only write blockcrypt issues) or
# rbd_aio_flush, and kills it there (SIGKILL; that call never happens).
# A clean run lists the calls; the kill points are every flush (a phase
# issued, perhaps only into librbd's cache) and the first two writes of
# each run of header writes (a torn header), for LUKS2 and LUKS1: 22 runs.
# (Killing before the N-th write of a run of key material writes leaves
# what killing before the flush after it leaves, or less.  Every write a
# kill point: RBD_CRASH_EVERY_WRITE=1, about 300 runs.)  Each run uses a fresh image
# imported from the same base file; after the kill the dead client's lock
# is removed (Ceph blocklists it), and the exported image is judged as
# crash-header-keys.sh judges a file: cryptsetup tells which passphrase
# opens which slot, `blockcrypt cat` must agree and read the original
# plaintext.
. "$(dirname "$0")/functions.bash"
requires cryptsetup gdb timeout
requires_ceph
. "$TESTS_DIR/shell/rbd-lib.bash"
printf 'old passphrase' >old
printf 'new passphrase' >new
# gdb without LeakSanitizer (ptrace) and without the debuginfod network.
GDB=("${UNDER_STRACE[@]}" gdb -q -batch -nx -iex 'set debuginfod enabled off' -iex 'set pagination off'
	-iex 'set confirm off' -iex 'set breakpoint pending on' -iex 'set print thread-events off'
	-iex 'set print inferior-events off')

. "$TESTS_DIR/shell/keyset-judge-lib.bash"

# --- runs on RBD ---------------------------------------------------------------
# fresh_image: a new image holding base.img; its name in IMG.
fresh_image() {
	IMG=$(ceph_image_name crash)
	timeout 120 rbd import --no-progress base.img "$CEPH_POOL/$IMG" >/dev/null 2>import.err ||
		fail "rbd import failed: $(cat import.err)"
}

# export_and_forget IMAGE FILE: IMAGE's bytes into FILE; then IMAGE goes,
# in the background: a dead client's lock removed first, which drops that
# client's watch; a watch left by a client that exited (blockcrypt does
# not close the image) lasts until it times out, so removal is retried.
export_and_forget() {
	rm -f "$2"
	timeout 120 rbd export --no-progress "$CEPH_POOL/$1" "$2" >/dev/null 2>export.err ||
		fail "rbd export of $1 failed: $(cat export.err)"
	{
		rbd_drop_lock "$1"
		for _ in $(seq 20); do
			timeout 60 rbd rm --no-progress "$CEPH_POOL/$1" && break
			sleep 5
		done
	} >/dev/null 2>&1 &
}

# op_cmd IMAGE: the operation on IMAGE.
op_cmd() {
	CMD=("$BLOCKCRYPT" "$OP" "$(rbd_spec "$1")" --key-file old --new-key-file new --batch "${FAST_KDF[@]}")
}

# clean_run: the operation under gdb, every rbd_aio_write ("W OFFSET
# LENGTH") and rbd_aio_flush ("F") listed in ./calls.
clean_run() {
	fresh_image
	op_cmd "$IMG"
	cat >trace.gdb <<'EOF'
break rbd_aio_write
commands
silent
printf "CALL W %lu %lu\n", $rsi, $rdx
continue
end
break rbd_aio_flush
commands
silent
printf "CALL F\n"
continue
end
run
printf "EXIT %d\n", $_exitcode
EOF
	timeout 300 "${GDB[@]}" -x trace.gdb --args "${CMD[@]}" </dev/null >gdb.out 2>&1 || true
	grep -q '^EXIT 0$' gdb.out || fail "$NAME: clean run under gdb failed: $(grep -v '^CALL' gdb.out | tail -n 5)"
	sed -n 's/^CALL //p' gdb.out >calls
	grep -q '^W' calls || fail "$NAME: gdb saw no rbd_aio_write (is librbd's rbd_aio_write still what blockcrypt calls?)"
	export_and_forget "$IMG" work.img
}

# kill_points HEADER_END: "F N" (kill on entering the N-th flush) and
# "W F J" (the J-th write after the F-th flush) for the points chosen (see
# the top); writes below HEADER_END are header writes.
kill_points() {
	awk -v hdr="$1" -v every="${RBD_CRASH_EVERY_WRITE:-0}" '
		$1 == "F" { f++; j = 0; print "F", f; next }
		$1 == "W" {
			j++
			if (every || (j <= 2 && $2 + 0 < hdr)) print "W", f + 0, j
		}' calls
}

# kill_run POINT...: a fresh image, the operation killed at POINT; judged.
kill_run() {
	local what=$1 label
	fresh_image
	op_cmd "$IMG"
	{
		if [ "$what" = F ]; then
			echo "break rbd_aio_flush"
			[ "$2" = 1 ] || echo "ignore 1 $(($2 - 1))"
			echo "run"
			label="SIGKILL on entering rbd_aio_flush #$2"
		else
			if [ "$2" = 0 ]; then
				echo "break rbd_aio_write"
				[ "$3" = 1 ] || echo "ignore 1 $(($3 - 1))"
				echo "run"
			else
				echo "break rbd_aio_flush"
				[ "$2" = 1 ] || echo "ignore 1 $(($2 - 1))"
				echo "run"
				echo "delete 1"
				echo "break rbd_aio_write"
				[ "$3" = 1 ] || echo "ignore 2 $(($3 - 1))"
				echo "continue"
			fi
			label="SIGKILL on entering rbd_aio_write #$3 after flush #$2"
		fi
		echo 'printf "STOPPED\n"'
		echo "kill"
		echo 'printf "KILLED\n"'
	} >kill.gdb
	timeout 300 "${GDB[@]}" -x kill.gdb --args "${CMD[@]}" </dev/null >gdb.out 2>&1 || true
	grep -q '^KILLED$' gdb.out && ! grep -q 'exited normally\|exited with code' gdb.out ||
		fail "$NAME: $label: not reached (its calls differ from the clean run's): $(tail -n 5 gdb.out)"
	export_and_forget "$IMG" crashed.img
	judge crashed.img "$NAME, $label"
	CRASH_POINTS=$((CRASH_POINTS + 1))
}

# crash_case TYPE VOLUME_SIZE OP
crash_case() {
	local type=$1 size=$2 off hdr_end k
	OP=$3 NAME="$1 $3"
	SEEN=()
	CRASH_POINTS=0
	rm -f base.img
	VOLUME_SIZE=$size new_volume base.img old --type "$type"
	off=$(data_offset base.img)
	random_file plain "$(($(stat -c %s base.img) - off))"
	bc write base.img --key-file old <plain >/dev/null 2>&1 || fail "$NAME: write failed"
	PLAIN_SHA=$(sha plain)
	DATA_SHA=$(data_sha base.img)
	BASE_STATE=$(state base.img) || fail "$NAME: base: $BASE_STATE"

	clean_run
	FINAL_STATE=$(state work.img) || fail "$NAME: after a clean run: $FINAL_STATE"
	[ "$FINAL_STATE" != "$BASE_STATE" ] || fail "$NAME: the operation changed nothing ($FINAL_STATE)"
	[ "$(data_sha work.img)" = "$DATA_SHA" ] || fail "$NAME: a clean run changed the data area"
	# The header copies: LUKS1 one 4 KiB block, LUKS2 two 16 KiB copies.
	if [ "$type" = luks1 ]; then hdr_end=4096; else hdr_end=32768; fi
	note "$NAME: $BASE_STATE -> $FINAL_STATE; librbd calls: $(awk '$1 != p { if (p) printf "%s%s ", p, (n > 1 ? "x" n : ""); p = $1; n = 0 } { n++ } END { printf "%s%s", p, (n > 1 ? "x" n : "") }' calls)"
	kill_points "$hdr_end" >points
	[ -s points ] || fail "$NAME: no kill points"
	# (fd 3: nothing run inside may eat the list)
	while read -r -a k <&3; do
		kill_run "${k[@]}"
	done 3<points
	local summary=
	for k in "${!SEEN[@]}"; do summary+="[$k]x${SEEN[$k]} "; done
	note "$NAME: $CRASH_POINTS crashes, states: $summary"
	[ "$CRASH_POINTS" = "$(wc -l <points)" ] || fail "$NAME: $CRASH_POINTS of $(wc -l <points) kill points judged"
	CASES_DONE+=("$NAME")
}

CASES_DONE=()
crash_case luks2 17M add-key
crash_case luks2 17M change-key
crash_case luks1 3M add-key
crash_case luks1 3M change-key
wait
[ "${#CASES_DONE[@]}" = 4 ] || fail "only ${#CASES_DONE[@]} of 4 cases ran to the end: ${CASES_DONE[*]}"
exit 0
