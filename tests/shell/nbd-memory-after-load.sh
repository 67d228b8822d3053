#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Memory goes back after load: the daemon's resident memory (VmRSS; all of
# it is locked) once 48 fio clients with mixed request sizes (4 KiB to
# 4 MiB, reads and writes, one connection each) have come and gone must
# come back, within 30 s, to twice what it was idle before them, and so
# after a second run too (no growth from run to run).
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
# meson sets MALLOC_PERTURB_, and glibc then writes over every chunk it
# frees: pages a real daemon would have handed back stay touched, locked
# (mlockall) and resident.  The daemon's memory is measured as it runs.
unset MALLOC_PERTURB_
requires fio /usr/bin/python3
requires_fio_nbd

random_volume 'after load passphrase' 128M
attach_as load
# One client first, so the idle figure includes what any connection
# leaves behind for good (libraries' lazily loaded parts).
timed_read "$URI" >/dev/null
sleep 1
idle=$(vm_rss_kib "$PID")

cat >job.fio <<EOF2
[global]
ioengine=nbd
uri=$URI
rw=randrw
bssplit=4k/40:64k/30:1m/20:4m/10
iodepth=8
numjobs=48
size=96m
time_based=1
runtime=6
group_reporting=1
[load]
EOF2

for run in 1 2; do
	peak=0
	fio --output=fio.$run.log job.fio >/dev/null 2>&1 &
	FIO=$!
	while kill -0 "$FIO" 2>/dev/null; do
		r=$(vm_rss_kib "$PID")
		[ "$r" -le "$peak" ] || peak=$r
		sleep 0.2
	done
	wait "$FIO" || fail "fio run $run failed: $(tail -n 5 fio.$run.log)"
	# The server's threads leave, and the last one out gives the buffers
	# back, some time after fio is done (longer on a loaded machine): give
	# the memory up to 30 s to come back, and say how long it took.
	waited=0
	after=$(vm_rss_kib "$PID")
	while [ "$after" -gt $((2 * idle)) ] && [ "$waited" -lt 60 ]; do
		sleep 0.5
		waited=$((waited + 1))
		after=$(vm_rss_kib "$PID")
	done
	note "run $run: VmRSS idle $((idle >> 10)) MiB ($idle KiB), peak under load $((peak >> 10)) MiB, after $((after >> 10)) MiB ($after KiB), $((waited / 2)) s after fio ended"
	[ "$after" -le $((2 * idle)) ] ||
		problem "run $run: resident memory after the clients left is $after KiB, more than twice the idle $idle KiB"
done
detach_and_wait load "$PID"
check_problems
exit 0
