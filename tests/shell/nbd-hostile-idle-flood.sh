#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# 1100 TCP connections that never send a byte, at a descriptor limit of
# 1024 (systemd's default), plain and before TLS-PSK: the connection cap
# (128) closes the oldest connection still in its handshake for each new
# one, so
#  1. a legitimate client (libnbd; over TLS-PSK in the second round) still
#     connects and reads 4 KiB within 2 s; the daemon holds no more
#     descriptors than the cap allows, and logs the cap;
#  2. the daemon uses little CPU meanwhile (under 20% of a CPU over 3 s; 80% for a sanitizer build);
#  3. every idle connection is closed by the handshake timeout (4 s here;
#     TIME_SLACK of nbd-lib.bash late at most);
#  4. a plain `blockcrypt detach` (no --force) works.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/nbd-lib.bash"
requires /usr/bin/python3 nbdinfo psktool
requires_python_nbd

N=1100
TIMEOUT=4
ulimit -Sn 1024 # the daemon inherits it (soft: the flood client raises its own)
random_volume 'idle flood passphrase' 24M
psktool -u alice -p keys.psk >/dev/null 2>&1 || fail "psktool failed"

# round NAME URI_PREFIX URI_SUFFIX [ATTACH ARGS...]
round() {
	local name=$1 pre=$2 suf=$3 port flood secs cpu res closed last
	shift 3
	port=$(free_tcp_port)
	attach_as "$name" --listen "127.0.0.1:$port" --handshake-timeout "$TIMEOUT" "$@"
	rm -f flood.ready flood.stop
	timeout 400 /usr/bin/python3 "$TESTS_DIR/shell/nbd_flood_client.py" 127.0.0.1 "$port" "$N" \
		flood.ready flood.stop >flood.out 2>flood.err &
	flood=$!
	wait_ready flood.ready "$flood" || fail "$name: the flood could not connect: $(tail -n 1 flood.err)"
	note "$name: $N idle connections open"

	timeout 10 nbdinfo --size "$pre$port/$name$suf" >size.out 2>&1 ||
		problem "$name 1: nbdinfo failed during the flood: $(tail -n 1 size.out)"
	secs=$(timed_read "$pre$port/$name$suf")
	note "$name: legitimate client connected and read 4 KiB in $secs s"
	awk -v s="$secs" 'BEGIN { exit !(s < 2) }' || problem "$name 1: the legitimate read took $secs s (limit 2 s)"

	fds=$(ls "/proc/$PID/fd" | wc -l)
	note "$name: the daemon holds $fds descriptors"
	[ "$fds" -le $((128 + 64)) ] || problem "$name 1: the daemon holds $fds descriptors, more than the cap of 128 connections allows"
	grep -q 'connections (--max-connections): closed the oldest' "$BLOCKCRYPT_RUN_DIR/$name.log" ||
		problem "$name 1: no log line about the connection cap"

	cpu=$(cpu_percent "$PID" 3)
	note "$name: daemon CPU during the flood: $cpu% of a CPU"
	[ "$cpu" -lt "$CPU_BUDGET" ] || problem "$name 2: the daemon used $cpu% of a CPU while idle connections sat there (budget $CPU_BUDGET%)"

	sleep $((TIMEOUT + TIME_SLACK + 1))
	touch flood.stop
	wait "$flood" || fail "$name: the flood client failed: $(tail -n 1 flood.err)"
	res=$(cat flood.out)
	note "$name: flood client: $res"
	closed=$(echo "$res" | awk '{print $4}')
	last=$(echo "$res" | awk '{print $6}')
	[ "$closed" = "$N" ] || problem "$name 3: only $closed of $N idle connections were closed within $((TIMEOUT + TIME_SLACK + 1)) s"
	awk -v s="$last" -v t="$TIMEOUT" -v k="$TIME_SLACK" 'BEGIN { exit !(s <= t + k) }' ||
		problem "$name 3: the last idle connection was closed after $last s (timeout $TIMEOUT s + $TIME_SLACK s slack)"
	grep -q 'did not finish the handshake' "$BLOCKCRYPT_RUN_DIR/$name.log" ||
		problem "$name 3: no log line about the handshake timeout"

	timeout 30 "$BLOCKCRYPT" detach "$name" >detach.out 2>&1 || problem "$name 4: detach failed: $(tail -n 1 detach.out)"
	gone "$PID" || fail "$name: the daemon is still running after detach"
}

round plain nbd://127.0.0.1: ""
round tls nbds://alice@127.0.0.1: "?tls-psk-file=$TEST_TMP/keys.psk" --tls-psk keys.psk
check_problems
exit 0
