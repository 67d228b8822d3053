#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# 16 clients each pipeline 4 READs of 32 MiB and never read a reply (2 GiB
# of replies asked for), against a memory budget of 64 MiB (--max-memory):
#  1. the daemon's resident memory (VmRSS, sampled every 0.1 s) never grows
#     by more than the budget plus 16 MiB (stacks, read-ahead) over idle;
#  2. a legitimate client is served meanwhile: it connects and reads 4 KiB
#     within 15 s (clients that take no reply data for 5 s while others
#     wait for memory are cut off), and the cut is logged.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
# meson sets MALLOC_PERTURB_, and glibc then writes over every chunk it
# frees: pages a real daemon would have handed back stay touched, locked
# (mlockall) and resident.  The daemon's memory is measured as it runs.
unset MALLOC_PERTURB_
requires /usr/bin/python3
requires_python_nbd
find_raw_client

BUDGET_MIB=64
random_volume 'memory pin passphrase' 48M
attach_as pin --max-memory "${BUDGET_MIB}M"
idle=$(vm_rss_kib "$PID")

HOSTILE=()
# shellcheck disable=SC2016 # expanded when the hook runs
cleanup_fn 'touch "$TEST_TMP/stop"; for p in "${HOSTILE[@]}"; do kill "$p" 2>/dev/null; done'
for i in $(seq 16); do
	timeout 300 /usr/bin/python3 "$RAW" no-read "$SOCK" pin 4 $((32 << 20)) "ready.$i" stop 2>"noread.$i.err" &
	HOSTILE+=($!)
done
for i in $(seq 16); do
	wait_ready "ready.$i" "${HOSTILE[i - 1]}" || fail "hostile client $i could not be set up: $(tail -n 1 "noread.$i.err")"
done
note "16 clients have asked for 4 x 32 MiB each and read nothing"

# Sample the daemon's memory while a legitimate client reads.
( peak=0; for _ in $(seq 100); do
	r=$(vm_rss_kib "$PID" 2>/dev/null) || break
	[ "$r" -le "$peak" ] || peak=$r
	echo "$peak" >peak.kib
	sleep 0.1
done ) &
SAMPLER=$!
secs=$(timed_read "$URI")
wait "$SAMPLER" || true
peak=$(cat peak.kib)
note "daemon VmRSS: idle $((idle >> 10)) MiB, peak $((peak >> 10)) MiB (budget $BUDGET_MIB MiB)"
note "legitimate client connected and read 4 KiB in $secs s"
[ $((peak - idle)) -le $(((BUDGET_MIB + 16) << 10)) ] ||
	problem "1: resident memory grew by $(((peak - idle) >> 10)) MiB, over the $BUDGET_MIB MiB budget (+16)"
awk -v s="$secs" 'BEGIN { exit !(s < 15) }' || problem "2: the legitimate read took $secs s (limit 15 s)"
grep -q 'out of memory budget.*disconnected' "$BLOCKCRYPT_RUN_DIR/pin.log" ||
	problem "2: no log line about cutting off stalled clients: $(tail -n 2 "$BLOCKCRYPT_RUN_DIR/pin.log")"

touch stop
for p in "${HOSTILE[@]}"; do wait "$p" || true; done
HOSTILE=()
detach_and_wait pin "$PID"
check_problems
exit 0
