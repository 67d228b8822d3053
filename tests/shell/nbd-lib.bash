# SPDX-License-Identifier: GPL-2.0-or-later
# Shared setup of the hostile-NBD-client shell tests (nbd-hostile-*.sh).
# Source it after functions.bash:
#   . "$(dirname "$0")/functions.bash"
#   . "$TESTS_DIR/shell/nbd-lib.bash"       (functions.bash has cd-ed away)
# (Not a test itself: meson runs tests/shell/*.sh only.)

# find_raw_client: RAW, the raw-socket NBD client nbd_raw_client.py.
find_raw_client() {
	RAW=$TESTS_DIR/shell/nbd_raw_client.py
	[ -r "$RAW" ] || fail "missing $RAW"
}

# random_volume PASSPHRASE VOLUME_SIZE [MIN_BYTES WHY]: a new volume v.img
# (key file "key" holding PASSPHRASE) whose SIZE bytes of data are random,
# written by `blockcrypt write` (not through the NBD server); the same
# bytes are in expected.raw.  With MIN_BYTES, fail (saying WHY) unless the
# data area is larger.
random_volume() {
	printf '%s' "$1" >key
	VOLUME_SIZE=$2 new_volume v.img key
	bc cat v.img --key-file key >zero.raw || fail "cat of the new volume failed"
	SIZE=$(stat -c %s zero.raw)
	[ $# -lt 3 ] || [ "$SIZE" -gt "$3" ] || fail "data area is only $SIZE bytes; $4"
	random_file expected.raw "$SIZE"
	bc write v.img --key-file key <expected.raw >/dev/null 2>&1 || fail "blockcrypt write of the baseline failed"
}

# attach_as NAME [ATTACH_ARGS...]: attach v.img as NAME; sets URI, SOCK
# (its NBD socket) and PID (its daemon).
# shellcheck disable=SC2034 # URI, SOCK, PID are for the tests
attach_as() {
	local name=$1; shift
	bc attach v.img --key-file key --name "$name" "$@" >/dev/null || fail "attach${*:+ $*} failed"
	URI=$(nbd_uri "$name")
	SOCK=$BLOCKCRYPT_RUN_DIR/$name.sock
	PID=$(daemon_pid "$name")
}

# detach_and_wait NAME PID: `blockcrypt detach NAME`, and the daemon gone.
# detach can report "daemon (pid N) does not answer: Broken pipe" although
# the daemon got the request and stops (rt_control sends the command and its
# newline in two send()s; the daemon answers after reading the first and
# closes, so the second send may hit EPIPE).  That is not what this test is
# about: then wait for the daemon to go (or try again), and say so.
detach_and_wait() {
	local name=$1 pid=$2 try
	for try in 1 2 3; do
		timeout 90 "$BLOCKCRYPT" detach "$name" >detach.out 2>&1 && return 0
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if ! kill -0 "$pid" 2>/dev/null; then
			note "detach said '$(tail -n 1 detach.out)', but the daemon did stop"
			return 0
		fi
		note "detach try $try failed: $(tail -n 1 detach.out)"
	done
	fail "detach failed: $(tail -n 1 detach.out)"
}

# wait_ready FILE PID: up to 20 s for background process PID to create
# FILE; succeeds if FILE is there (fails at once if PID exits without it).
wait_ready() {
	for _ in $(seq 200); do
		[ -e "$1" ] || ! kill -0 "$2" 2>/dev/null || { sleep 0.1; continue; }
		break
	done
	[ -e "$1" ]
}

# py_verdict RC: judge the python client run that exited RC with its
# stderr in py.err (one "FAIL: ..." line a failed case).
py_verdict() {
	[ "$1" != 124 ] || fail "the NBD client hung (timeout); $(tail -n 5 py.err)"
	[ "$1" = 0 ] || fail "$(grep -c '^FAIL' py.err || true) case(s) failed:
$(cat py.err)"
}

# free_tcp_port: a TCP port on 127.0.0.1 that nobody listens on now.
free_tcp_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cpu_ticks PID: utime + stime of PID so far, in clock ticks.
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# CPU_BUDGET: the share of a CPU (%) a daemon may use while clients only
# sit there.  A sanitizer build pays several times over for every thread
# start and system call, so it gets a wider budget -- still well below the
# ~100% of a loop that spins.
# shellcheck disable=SC2034 # used by the tests that source this file
# TIME_SLACK: seconds a deadline the daemon keeps (a timeout) may be
# overrun before a test calls it missed; the sanitizer build accepts and
# closes connections several times slower, more so on a loaded machine.
# shellcheck disable=SC2034 # used by the tests that source this file
if grep -q __asan_init "$BLOCKCRYPT"; then  # (no pipe: pipefail + grep -q)
	CPU_BUDGET=80
	TIME_SLACK=5
else
	CPU_BUDGET=20
	TIME_SLACK=2
fi

# cpu_percent PID SECONDS: the CPU PID uses over SECONDS (percent of one CPU).
cpu_percent() {
	local a b hz
	hz=$(getconf CLK_TCK)
	a=$(cpu_ticks "$1")
	sleep "$2"
	b=$(cpu_ticks "$1")
	echo $(((b - a) * 100 / hz / $2))
}

# timed_read URI: connect with libnbd, read 4 KiB at 0; prints the seconds
# it took (fails the test if it fails or takes more than 30 s).
timed_read() {
	timeout 30 /usr/bin/python3 - "$1" <<'PY' || fail "a legitimate client could not read from $1: $(cat timed_read.err 2>/dev/null)"
import sys, time
import nbd
t0 = time.monotonic()
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(sys.argv[1])
if len(h.pread(4096, 0)) != 4096:
    sys.exit("short read")
h.shutdown()
print("%.3f" % (time.monotonic() - t0))
PY
}

# vm_rss_kib PID: the resident set of PID, KiB.
vm_rss_kib() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}
