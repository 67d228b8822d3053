#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# At the descriptor limit: with --max-connections above it (5000, limit
# 1024), 1100 idle TCP connections make accept(2) fail with EMFILE.  The
# accept thread must not spin on the connection left queued, and the
# control socket must keep working:
#  1. the daemon uses little CPU (under 20% of a CPU over 3 s; 80% for a sanitizer build);
#  2. the failure is logged;
#  3. a legitimate client still connects and reads 4 KiB within 2 s (the
#     oldest connection still in its handshake makes room);
#  4. `blockcrypt status`, then a plain `blockcrypt detach` (no --force),
#     work within 10 s while the idle connections are still open.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3
requires_python_nbd

N=1100
ulimit -Sn 1024 # the daemon inherits it (soft: the flood client raises its own)
random_volume 'fd limit passphrase' 24M
PORT=$(free_tcp_port)
attach_as fdlim --listen "127.0.0.1:$PORT" --max-connections 5000 --handshake-timeout 60

# (and 50 more a second, as an attacker would: the server keeps accepting,
# so every descriptor that comes free is taken at once)
timeout 400 /usr/bin/python3 "$TESTS_DIR/shell/nbd_flood_client.py" 127.0.0.1 "$PORT" "$N" \
	flood.ready flood.stop 50 >flood.out 2>flood.err &
FLOOD=$!
# shellcheck disable=SC2016 # expanded when the hook runs
cleanup_fn 'touch "$TEST_TMP/flood.stop"'
wait_ready flood.ready "$FLOOD" || fail "the flood could not connect: $(tail -n 1 flood.err)"
note "$N idle connections open; daemon has $(ls /proc/"$PID"/fd | wc -l) descriptors (soft limit 1024)"

cpu=$(cpu_percent "$PID" 3)
note "daemon CPU at the descriptor limit: $cpu% of a CPU"
[ "$cpu" -lt "$CPU_BUDGET" ] || problem "1: the daemon used $cpu% of a CPU at the descriptor limit (budget $CPU_BUDGET%)"
grep -q 'accept: Too many open files' "$BLOCKCRYPT_RUN_DIR/fdlim.log" ||
	problem "2: no log line about accept failing: $(tail -n 2 "$BLOCKCRYPT_RUN_DIR/fdlim.log")"
# The control socket at the limit.
sleep 1
note "daemon has $(ls /proc/"$PID"/fd | wc -l) descriptors"
for i in 1 2 3; do
	timeout 10 "$BLOCKCRYPT" status fdlim >status.out 2>&1 ||
		problem "4: status $i at the descriptor limit failed: $(tail -n 1 status.out)"
done

secs=$(timed_read "nbd://127.0.0.1:$PORT/fdlim")
note "legitimate client connected and read 4 KiB in $secs s"
awk -v s="$secs" 'BEGIN { exit !(s < 2) }' || problem "3: the legitimate read took $secs s (limit 2 s)"

t0=$(date +%s.%N)
rc=0
timeout 10 "$BLOCKCRYPT" detach fdlim >detach.out 2>&1 || rc=$?
t1=$(date +%s.%N)
note "plain detach at the descriptor limit: exit $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
[ "$rc" = 0 ] || problem "4: plain detach at the descriptor limit exited $rc: $(tail -n 1 detach.out)"
gone "$PID" || problem "4: the daemon is still running after detach"
touch flood.stop
wait "$FLOOD" || true
check_problems
exit 0
