# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the crash-* tests: kill an operation at every write to the
# volume, and at random moments, and judge what it leaves behind.
# Source after functions.bash.  (Not a test itself.)
#
# Kill points are the write-class syscalls on the image file only
# (strace -P).  Counting every write of the process made the test flaky:
# modules that p11-kit loads (opensc, through GLib) start threads that
# sometimes write to an eventfd and sometimes don't, so the N-th write of a
# later run was not the N-th of the counting run.  Writes elsewhere (the
# SoftHSM token store, stderr) are not this test's business; the random
# kills still land anywhere.
#
# The caller defines:
#   crash_reset          put a fresh copy of the image (and whatever else)
#   judge IMG LABEL      check the state after a crash, fail on a bad one
# CRASH_SEED=N repeats the random kill times; CRASH_RANDOM_KILLS=N sets
# how many (default 8).

requires strace
CRASH_SEED=${CRASH_SEED:-$(($(od -An -N2 -tu2 /dev/urandom)))}
note "seed $CRASH_SEED (CRASH_SEED=$CRASH_SEED repeats the random kill times)"
RANDOM=$CRASH_SEED
CRASH_RANDOM_KILLS=${CRASH_RANDOM_KILLS:-8}
CRASH_TRACE_ENV=("${UNDER_STRACE[@]}")
CRASH_SYSCALLS=write,pwrite64,pwritev,pwritev2,writev,fsync,fdatasync,ftruncate,fallocate,sync_file_range,copy_file_range,sendfile

# crash_clean_run IMG CMD...: one clean run under strace (after
# crash_reset).  Leaves "SYSCALL COUNT" lines for IMG in ./crash.counts and
# the run's duration in CRASH_DUR_US; fails if CMD fails or never writes IMG.
crash_clean_run() {
	local img t0 t1
	img=$(realpath "$1"); shift
	crash_reset
	t0=$(date +%s%N)
	"${CRASH_TRACE_ENV[@]}" strace -f -qq -o crash.trace -P "$img" -e trace="$CRASH_SYSCALLS" "$@" \
		</dev/null >/dev/null 2>crash.err || fail "clean run of $(basename "$1") $2 failed: $(cat crash.err)"
	t1=$(date +%s%N)
	CRASH_DUR_US=$(((t1 - t0) / 1000))
	awk '$2 ~ /^[a-z0-9_]+\(/ { sub(/\(.*/, "", $2); n[$2]++ } END { for (s in n) print s, n[s] }' \
		crash.trace | sort >crash.counts
	[ -s crash.counts ] || fail "strace saw no write-class syscall on $img"
}

# crash_every_point IMG LABEL CMD...: for each kill point of the clean run,
# crash_reset, run CMD under strace killed on entering that syscall (which
# never happens), judge.  Adds to CRASH_POINTS.
crash_every_point() {
	local img label=$2 s count n rc
	img=$(realpath "$1"); shift 2
	while read -r s count; do
		for n in $(seq "$count"); do
			crash_reset
			# (an inner shell reaps it, so no "Killed" notice reaches our stderr)
			rc=$(bash -c '"$@" </dev/null >/dev/null 2>&1; echo $?' _ "${CRASH_TRACE_ENV[@]}" \
				strace -f -qq -o /dev/null -P "$img" -e trace="$CRASH_SYSCALLS" \
				-e inject="$s:signal=KILL:when=$n" "$@" 2>/dev/null)
			[ "$rc" = 137 ] || fail "$label: kill at $s #$n on the image: exit $rc, not killed (its writes differ from the clean run's)"
			judge "$img" "$label, SIGKILL on entering $s #$n"
			CRASH_POINTS=$((CRASH_POINTS + 1))
		done
	done <crash.counts
}

# crash_random IMG LABEL CMD...: CRASH_RANDOM_KILLS runs of CMD, each
# SIGKILLed at a random moment within the clean run's duration, judged.
crash_random() {
	local img=$1 label=$2 t pid
	shift 2
	for _ in $(seq "$CRASH_RANDOM_KILLS"); do
		crash_reset
		t=$(((RANDOM * 32768 + RANDOM) % (CRASH_DUR_US + 1)))
		"$@" </dev/null >/dev/null 2>&1 &
		pid=$!
		sleep "$(printf '%d.%06d' $((t / 1000000)) $((t % 1000000)))"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		judge "$img" "$label, SIGKILL after $t us"
		CRASH_POINTS=$((CRASH_POINTS + 1))
	done
}

# crash_summary LABEL: the number of crashes and the states judge counted
# in the associative array SEEN.
crash_summary() {
	local k summary=
	for k in "${!SEEN[@]}"; do summary+="[$k]x${SEEN[$k]} "; done
	note "$1: $CRASH_POINTS crashes, states: $summary"
}
