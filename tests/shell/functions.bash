# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for blockcrypt's shell tests.  Source this first:
#   . "$(dirname "$0")/functions.bash"
# Each test runs in its own temporary directory (removed at exit) and ends
# with exit 0 (pass), 77 (skipped: a requirement is missing, said loudly on
# stderr) or anything else (fail).

set -euo pipefail
# POSIX mode: bash then exits on an expansion error (an arithmetic syntax
# error such as $((N - $(cmd_that_printed_nothing))), a bad substitution)
# instead of abandoning the current command and carrying on with `set -e`
# silently ignored, and command substitutions inherit `set -e`.
set -o posix

: "${BLOCKCRYPT:?BLOCKCRYPT must point at the built blockcrypt binary}"
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # used by the tests that source this file
ORACLE="/usr/bin/python3 $TESTS_DIR/oracle/dmcrypt.py"

# Python code of the tests (`python3 -` heredocs too) imports the shared
# modules here: nbd_client.py (libnbd clients), nbd_raw_client.py.
export PYTHONPATH="$TESTS_DIR/shell${PYTHONPATH:+:$PYTHONPATH}"

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bc-test.XXXXXX")
# cleanup_fn CODE: run CODE (eval) when the test exits, whatever happened;
# hooks run last-registered first.
_cleanup_hooks=()
cleanup_fn() { _cleanup_hooks+=("$*"); }
_run_cleanup() {
	local rc=$? i
	for ((i=${#_cleanup_hooks[@]}-1; i>=0; i--)); do eval "${_cleanup_hooks[i]}" || true; done
	rm -rf "$TEST_TMP"
	# A problem noted with `problem` fails the test even when it went on to
	# exit 0 (or to skip): nothing noted is ever lost.
	if [ ${#_problems[@]} != 0 ] && { [ "$rc" = 0 ] || [ "$rc" = 77 ]; }; then
		echo "FAIL: $(basename "$0"): ${#_problems[@]} problem(s), see above" >&2
		rc=1
	fi
	exit $rc
}
trap _run_cleanup EXIT
cd "$TEST_TMP"

# skip WHY...: skip the test (exit 77), saying why on stderr.
skip() { echo "SKIP: $(basename "$0"): $*" >&2; exit 77; }

# requires CMD...: skip the test (exit 77) loudly when a tool is missing.
requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "needs '$c', which is not installed"
	done
}

# requires_root [WHY]: skip unless running as root.
requires_root() { [ "$(id -u)" = 0 ] || skip "needs root${1:+ ($1)}"; }
# requires_fuse: skip unless /dev/fuse exists.
requires_fuse() { [ -c /dev/fuse ] || skip "needs /dev/fuse"; }
# requires_root_fuse WHY: both of the above.
requires_root_fuse() { requires_root "$1"; requires_fuse; }
# requires_python_nbd: skip unless /usr/bin/python3 has libnbd's bindings.
requires_python_nbd() {
	/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "needs python3-libnbd (import nbd)"
}
# requires_python_cryptography: skip unless python3-cryptography is there.
requires_python_cryptography() {
	/usr/bin/python3 -c 'import cryptography' 2>/dev/null || skip "needs python3-cryptography"
}
# requires_fio_nbd: skip unless fio has its nbd ioengine.
requires_fio_nbd() {
	fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd' ||
		skip "this fio has no nbd ioengine (fio --enghelp)"
}
# requires_btrfs: skip unless the kernel has btrfs (loads the module if it can).
requires_btrfs() {
	grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || true
	grep -qw btrfs /proc/filesystems || skip "the kernel has no btrfs (modprobe btrfs failed)"
}
# requires_no_zfs_fuse: skip while a zfs-fuse daemon that is not ours runs
# (there can be one per machine).
requires_no_zfs_fuse() {
	if pgrep -x zfs-fuse >/dev/null; then
		skip "a zfs-fuse daemon is already running (pid $(pgrep -x zfs-fuse | tr '\n' ' ')), not ours; stop it to run this test"
	fi
}

# fail WHY...: fail the test now.
fail() { echo "FAIL: $(basename "$0"): $*" >&2; exit 1; }
# problem WHY...: note a failure and go on, so that one run reports every
# broken case.  The test fails at exit (or at check_problems) if any
# problem was noted.  The one way for a test to "fail and go on".
_problems=()
problem() { echo "FAIL: $(basename "$0"): $*" >&2; _problems+=("$*"); }
# check_problems: fail now, listing them, if any problem was noted so far.
check_problems() {
	[ ${#_problems[@]} = 0 ] || fail "${#_problems[@]} problem(s):
$(printf '  %s\n' "${_problems[@]}")"
}
note() { echo "# $*" >&2; }

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; false
# if it has not within SECONDS.
wait_for() {
	local n=$(($1 * 10)) i; shift
	for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}

# bc ARGS...: run blockcrypt.
bc() { "$BLOCKCRYPT" "$@"; }

# Fast key derivation for tests (security of test volumes is irrelevant).
FAST_KDF=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000)
# shellcheck disable=SC2034 # used by the tests that source this file
FAST_ARGON=(--pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 32768 --pbkdf-parallel 1)

# expect_exit CODE CMD...: run CMD, require exit status CODE and a single
# non-empty line on stderr; the message is left in $ERR.
expect_exit() {
	local want=$1 got=0; shift
	"$@" >"$TEST_TMP/.out" 2>"$TEST_TMP/.err" || got=$?
	ERR=$(cat "$TEST_TMP/.err")
	[ "$got" = "$want" ] || fail "expected exit $want, got $got from: $* (stderr: $ERR)"
	[ -n "$ERR" ] || fail "no error message from: $*"
	[ "$(wc -l <"$TEST_TMP/.err")" -le 1 ] || fail "error is more than one line: $ERR"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# volume_key FILE KEYFILE: the volume key in hex, from cryptsetup itself.
volume_key() {
	local key
	key=$(cryptsetup luksDump --dump-volume-key --batch-mode --key-file "$2" "$1" 2>/dev/null |
		sed -n '/MK dump:/,/^[^ \t]/p' | sed 's/MK dump://' | tr -d ' \t\n' | grep -o '^[0-9a-f]*') || true
	[[ "$key" =~ ^([0-9a-f]{2}){16,}$ ]] || fail "volume_key: cryptsetup gave no volume key for $1"
	echo "$key"
}

# data_offset FILE: byte offset of the data segment (LUKS1 or LUKS2).
# Fails the test when there is none (no header, cryptsetup failed), so an
# empty result can never reach arithmetic as a silent no-op.
data_offset() {
	local off
	off=$(cryptsetup luksDump "$1" 2>&1 |
		awk '/^Payload offset:/{print $3*512; exit} /^[ \t]*offset:/{print $2; exit}') || true
	[[ "$off" =~ ^[0-9]+$ ]] || fail "data_offset: no LUKS data offset in $1"
	echo "$off"
}

# data_sha FILE: SHA-256 of the data area (everything after the header).
data_sha() {
	local off
	# (explicit: a caller's `data_sha X || ...` turns `set -e` off in here)
	off=$(data_offset "$1") || fail "data_sha: no data area in $1"
	tail -c +$((off + 1)) "$1" | sha256sum | cut -d' ' -f1
}

# sector_size IMG: the sector size of volume IMG (blockcrypt dump --json).
sector_size() {
	bc dump "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sector_size"])'
}

# served_image_ok NAME: NAME.img (an aes-xts-plain64 LUKS volume, key file
# "key") read independently -- by blockcrypt cat and by the python oracle
# with cryptsetup's volume key -- holds what NBD served (NAME.nbd), and
# cryptsetup still opens it.  Removes the files it used.
served_image_ok() {
	local name=$1 key off
	bc cat "$name.img" --key-file key >"$name.cat" 2>cat.err || fail "$name: cat failed: $(cat cat.err)"
	cmp -s "$name.cat" "$name.nbd" || fail "$name: blockcrypt cat differs from what NBD served"
	key=$(volume_key "$name.img" key)
	off=$(data_offset "$name.img")
	[ -n "$key" ] && [ -n "$off" ] || fail "$name: no volume key / data offset from cryptsetup"
	$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size "$(sector_size "$name.img")" \
		--offset "$off" "$name.img" "$name.oracle" || fail "$name: oracle decryption failed"
	cmp -s "$name.oracle" "$name.nbd" || fail "$name: the oracle's decryption differs from what NBD served"
	cryptsetup open --test-passphrase --key-file key "$name.img" ||
		fail "$name: cryptsetup no longer opens the volume"
	rm -f "$name.img" "$name.cat" "$name.nbd" "$name.oracle"
}

# UNDER_STRACE CMD...: run CMD (under strace) without LeakSanitizer, which
# cannot work under ptrace and would abort a sanitizer build.
# shellcheck disable=SC2034 # used by the tests that source this file
UNDER_STRACE=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")

# files_except DIR REGEX: the names in DIR (dot files too) that do not match
# the extended regular expression REGEX, one a line (nothing if DIR is not
# there).
files_except() {
	local f
	for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		f=${f##*/}
		[[ $f =~ $2 ]] || echo "$f"
	done
}

# random_file NAME BYTES
random_file() { head -c "$2" /dev/urandom >"$1"; }

# Attached volumes of this test live in a private runtime directory, and
# are force-detached when the test ends, whatever happened.
export BLOCKCRYPT_RUN_DIR="$TEST_TMP/run"
_detach_all() {
	"$BLOCKCRYPT" detach --all --force >/dev/null 2>&1 || true
	# A daemon that would not go (should not happen) must not outlive us.
	local f pid
	for f in "$BLOCKCRYPT_RUN_DIR"/*.json; do
		[ -e "$f" ] || continue
		pid=$(state_pid "$f" 2>/dev/null) || continue
		kill -9 "$pid" 2>/dev/null || true
	done
}
cleanup_fn _detach_all

# state_pid FILE: the "pid" of a runtime state file.
state_pid() {
	/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$1"
}
# daemon_pid NAME: the pid of the daemon serving NAME (from its state file).
daemon_pid() { state_pid "$BLOCKCRYPT_RUN_DIR/$1.json" || fail "$1: no pid in $1.json"; }

# running PID: the process exists and is not a zombie.  (The state is the
# first field after the ")" that ends the command name, which may hold
# blanks.)
running() {
	local s
	s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "${s:0:1}" != Z ]
}
_not_running() { ! running "$1"; }
# gone PID [SECONDS]: true once PID has exited (or is a zombie nobody
# reaped yet), waiting up to SECONDS (default 10).
gone() { wait_for "${2:-10}" _not_running "$1"; }

# loop_released LOOP FILE [SECONDS]: true once loop device LOOP no longer
# has FILE as its backing (default: within 10 s).  losetup -d only sets
# autoclear while someone (udev, blkid) still has the device open; FILE is
# released only when the loop device really lets go of it.  (It compares
# the path: another test may already have reused the device.)
loop_released() { wait_for "${3:-10}" _loop_not_on "$1" "$(readlink -f "$2")"; }
_loop_not_on() { [ "$(cat "/sys/block/${1#/dev/}/loop/backing_file" 2>/dev/null)" != "$2" ]; }

# new_volume IMG KEYFILE [format args...]: a small LUKS2 volume, fast KDF.
new_volume() {
	local img=$1 key=$2; shift 2
	[ -e "$key" ] || printf 'test passphrase %s' "$RANDOM" >"$key"
	bc format "$img" --batch --key-file "$key" --size "${VOLUME_SIZE:-64M}" "${FAST_KDF[@]}" --no-progress "$@" >/dev/null 2>"$TEST_TMP/.format.err" ||
		fail "format $img failed: $(cat "$TEST_TMP/.format.err")"
}

# nbd_uri NAME: the URI of an attached volume (default socket).
nbd_uri() { echo "nbd+unix:///$1?socket=$BLOCKCRYPT_RUN_DIR/$1.sock"; }

# fio_verified OUT JOBS BYTES [FIO ARGS...]: run fio on job.fio; it must
# exit 0 with JOBS jobs, each error-free, having written and read back
# (verified) BYTES.  (With --verify_only fio counts the skipped writes as
# done.)
fio_verified() {
	local out=$1 jobs=$2 bytes=$3; shift 3
	fio --output-format=json --output="$out" "$@" job.fio >fio.log 2>&1 ||
		fail "fio $* failed: $(tail -5 fio.log) $(grep -h '"error"' "$out" | sort | uniq -c)"
	python3 - "$out" "$jobs" "$bytes" <<'PY' || fail "fio $* did not write and verify everything"
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
want_jobs, want = int(sys.argv[2]), int(sys.argv[3])
ok = len(jobs) == want_jobs
for j in jobs:
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    print("# job %s: error %d, wrote %d, verified %d" % (j["jobname"], j["error"], w, r), file=sys.stderr)
    ok &= j["error"] == 0 and r == want and w == want
sys.exit(0 if ok else 1)
PY
}

# --- Ceph (tests/ceph/cluster.sh) ---------------------------------------
# requires_ceph: skip unless the Ceph daemons, the rbd CLI and python3-rbd
# are there; then use the suite's cluster (scripts/test.sh starts one and
# exports BC_TEST_CEPH_CONF) or, for a test run alone, start a private one
# in $TEST_TMP/ceph, stopped at exit.  Exports CEPH_CONF (the ceph and rbd
# CLIs and librados read it) and sets CEPH_POOL; images named by
# ceph_image_name are removed at exit.  CEPH_PRIVATE is 1 for a private
# cluster (a test may then stop it, or break it).
CEPH_CLUSTER="$TESTS_DIR/ceph/cluster.sh"
requires_ceph() {
	requires ceph-mon ceph-mgr ceph-osd ceph rbd
	/usr/bin/python3 -c 'import rados, rbd' 2>/dev/null || skip "needs python3-rados and python3-rbd"
	# shellcheck disable=SC2034 # used by the tests that source this file
	CEPH_PRIVATE=0
	if [ -z "${BC_TEST_CEPH_CONF:-}" ]; then
		# shellcheck disable=SC2034 # used by the tests that source this file
		CEPH_PRIVATE=1
		cleanup_fn "$(printf '%q stop %q' "$CEPH_CLUSTER" "$TEST_TMP/ceph")"
		note "no BC_TEST_CEPH_CONF: starting a private cluster in $TEST_TMP/ceph"
		"$CEPH_CLUSTER" start "$TEST_TMP/ceph" >"$TEST_TMP/.ceph.env" 2>"$TEST_TMP/.ceph.err" ||
			fail "cannot start a Ceph cluster: $(cat "$TEST_TMP/.ceph.err")"
		BC_TEST_CEPH_CONF=$TEST_TMP/ceph/ceph.conf
	fi
	[ -r "$BC_TEST_CEPH_CONF" ] || fail "BC_TEST_CEPH_CONF=$BC_TEST_CEPH_CONF: no such ceph.conf"
	export CEPH_CONF=$BC_TEST_CEPH_CONF
	CEPH_POOL=${BC_TEST_CEPH_POOL:-rbd}
	# (A private cluster goes as a whole, images and all.)
	[ "$CEPH_PRIVATE" = 1 ] || cleanup_fn _ceph_remove_images
}
# ceph_image_name [TAG]: a new image name, unique to this test run
# ("bc-TEST-PID-N[-TAG]"); every image whose name starts with this test's
# prefix is removed (with its snapshots) when the test exits.  (The count
# is kept in a file: the name is usually taken in a $(subshell).)
ceph_image_name() {
	local n
	n=$(($(cat "$TEST_TMP/.ceph-images" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$TEST_TMP/.ceph-images"
	echo "$(_ceph_image_prefix)$n${1:+-$1}"
}
_ceph_image_prefix() { echo "bc-$(basename "$0" .sh)-$$-"; }
_ceph_remove_images() {
	local img prefix
	# An attached image has a watcher and cannot be removed: detach first
	# (this hook runs before the general one).
	_detach_all
	prefix=$(_ceph_image_prefix)
	rbd ls -p "$CEPH_POOL" 2>/dev/null | while read -r img; do
		[[ $img == "$prefix"* ]] || continue
		rbd snap purge "$CEPH_POOL/$img" >/dev/null 2>&1 || true
		rbd rm --no-progress "$CEPH_POOL/$img" >/dev/null 2>&1 ||
			echo "# could not remove RBD image $CEPH_POOL/$img" >&2
	done
}
