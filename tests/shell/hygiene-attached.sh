#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key hygiene of the attach daemon while it serves (issue #7).  Two volumes
# with keys known to the test: LUKS2 aes-xts-plain64 with a 512-bit volume
# key set by cryptsetup (--volume-key-file) and a passphrase, served over
# NBD and FUSE; a plain aes-cbc-essiv:sha256 volume with a raw 256-bit key
# file, served over NBD.  After I/O through every frontend (which must
# decrypt what `blockcrypt write` stored, so the known key is the one in
# use), for each daemon:
#  - VmLck in /proc/PID/status is > 0;
#  - the process is not dumpable: a process without CAP_SYS_PTRACE may not
#    ptrace it (the same question asked of `sleep` is allowed);
#  - every copy of key material in its memory (/proc/PID/mem: the key, its
#    16-byte pieces, XTS halves, AES round keys, the ESSIV salt and its
#    round keys) is in a locked mapping, and there is at least one copy
#    (else the scan would prove nothing);
#  - the passphrase, or the unused tail of the plain key file, is nowhere in
#    its memory;
#  - neither key nor passphrase (raw or in hex) is in /proc/PID/cmdline,
#    /proc/PID/environ, the runtime directory's files (NAME.json, NAME.log),
#    or the output of attach, list --json and status --json; nor in the
#    error message of an attach with a wrong passphrase.
# Informative only: how many key copies sit in mappings a core dump would
# include (not MADV_DONTDUMP) -- the non-dumpable flag is what keeps them
# out of core files.
. "$(dirname "$0")/functions.bash"
requires setpriv cryptsetup nbdcopy od cmp mountpoint /usr/bin/python3
. "$TESTS_DIR/shell/hygiene-lib.bash"
# scan ARGS...: hygiene_scan.py, hits in scan.out; status 0 none, 1 some.
scan() {
	local rc=0
	"${SCAN[@]}" "$@" >scan.out 2>scan.err || rc=$?
	[ "$rc" -lt 2 ] || fail "hygiene_scan.py $*: $(cat scan.err)"
	return "$rc"
}

mkdir mnt
cleanup_fn '_detach_all; ! mountpoint -q "$TEST_TMP/mnt" || umount -l "$TEST_TMP/mnt"'


# dumpable PID: 1 if a process without CAP_SYS_PTRACE may ptrace PID
# (PTRACE_SEIZE, which does not stop it; the tracer's exit lets it go), 0
# if the kernel refuses with EPERM.  Both sides run as root with the same
# capabilities (NOPTRACE: everything but CAP_SYS_PTRACE), so what is left
# to decide is the target's dumpable flag (ptrace_may_access).  (Asking
# prctl(PR_GET_DUMPABLE) inside the process with gdb needs an inferior
# call, which some hypervisors break: gdb cannot restore the registers.)
NOPTRACE=(setpriv --bounding-set -sys_ptrace --inh-caps -sys_ptrace)
dumpable() {
	"${NOPTRACE[@]}" /usr/bin/python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) == 0:  # PTRACE_SEIZE
    print(1)
elif ctypes.get_errno() == 1:  # EPERM
    print(0)
else:
    print("ptrace: " + os.strerror(ctypes.get_errno()), file=sys.stderr)
' "$1" 2>dumpable.err
}

# ---- the volumes -------------------------------------------------------------
PASS_TEXT="hygiene-passphrase-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$PASS_TEXT" >pass
head -c 64 /dev/urandom >luks.vk
truncate -s 24M luks.img
cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512 \
	--volume-key-file luks.vk --key-file pass --pbkdf pbkdf2 --pbkdf-force-iterations 1000 luks.img ||
	fail "cryptsetup luksFormat with a known volume key failed"
[ "$(volume_key luks.img pass)" = "$(hexof luks.vk)" ] || fail "cryptsetup did not use the volume key given"

# A key file is used raw: its first 32 bytes are the key, the rest unused
# (and must not linger in memory either).
head -c 32 /dev/urandom >plain.key
head -c 16 /dev/urandom >plain.tail
cat plain.key plain.tail >plain.keyfile
random_file plain.img $((16 * 1048576))
PLAIN=(--type plain --cipher aes-cbc-essiv:sha256 --key-size 256 --key-file plain.keyfile)

random_file data $((2 * 1048576))
bc write luks.img --key-file pass <data 2>/dev/null || fail "write to the LUKS2 volume failed"
bc write plain.img "${PLAIN[@]}" <data 2>/dev/null || fail "write to the plain volume failed"

# ---- a passphrase that does not fit must not be echoed ----------------------
printf 'wrong-%s' "$PASS_TEXT" >wrong
expect_exit 3 bc attach luks.img --key-file wrong --name wrong
printf '%s' "$ERR" >wrong.err
scan --secret pass --secret wrong wrong.err ||
	problem "the error of an attach with a wrong passphrase shows a passphrase: $(head -3 scan.out)"

# The daemons run without CAP_SYS_PTRACE, as the dumpable probe does.
"${NOPTRACE[@]}" "$BLOCKCRYPT" attach luks.img --key-file pass --fuse mnt >attach-luks.out 2>&1 || fail "attach luks.img failed: $(cat attach-luks.out)"
"${NOPTRACE[@]}" "$BLOCKCRYPT" attach plain.img "${PLAIN[@]}" >attach-plain.out 2>&1 || fail "attach plain.img failed: $(cat attach-plain.out)"

# I/O through every frontend, from several connections at once (each may
# get its own cipher contexts): the data written before must come back.
for name in luks plain; do
	pids=()
	for i in 1 2 3; do
		timeout 60 nbdcopy "$(nbd_uri "$name")" "$name-$i.raw" &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	for i in 1 2 3; do
		head -c $((2 * 1048576)) "$name-$i.raw" 2>/dev/null | cmp -s - data ||
			fail "$name: NBD connection $i does not read back what was written"
	done
done
head -c $((2 * 1048576)) mnt/luks | cmp -s - data || fail "luks: the FUSE file does not read back what was written"
printf 'over FUSE' | dd of=mnt/luks bs=4096 seek=100 conv=notrunc status=none || fail "luks: FUSE write failed"

bc list --json >list.json 2>&1 || fail "list --json failed"

# ---- per daemon --------------------------------------------------------------
# check_daemon NAME SCAN_ARGS...: SCAN_ARGS name the key (--key/--essiv-key)
# and the secret given to attach (--secret).
check_daemon() {
	local name=$1 pid lck d f; shift
	pid=$(daemon_pid "$name")
	kill -0 "$pid" || fail "$name: daemon $pid is not running"

	lck=$(awk '/^VmLck:/ { print $2 }' "/proc/$pid/status")
	[ -n "$lck" ] && [ "$lck" -gt 0 ] || problem "$name: VmLck is '${lck}' kB: no locked memory"
	note "$name: VmLck $lck kB"

	d=$(dumpable "$pid")
	[ "$d" = 0 ] || problem "$name: the daemon is dumpable ('$d', expected 0: ptrace refused) $(cat dumpable.err)"

	# What the process shows of itself, and what it leaves around.
	tr '\0' '\n' <"/proc/$pid/cmdline" >"$name.cmdline"
	tr '\0' '\n' <"/proc/$pid/environ" >"$name.environ"
	bc status "$name" --json >"$name.status" 2>&1 || problem "$name: status --json failed"
	for f in "$name.cmdline" "$name.environ" "$name.status" list.json attach-*.out "$BLOCKCRYPT_RUN_DIR"/*; do
		[ -f "$f" ] || continue
		scan "$@" "$f" || problem "$name: key material in $(basename "$f"): $(head -3 scan.out)"
	done

	# Its memory: key copies only in locked mappings, no passphrase at all.
	scan "$@" "pid:$pid" || true
	mv scan.out "$name.mem"
	[ -s "$name.mem" ] || problem "$name: no copy of the key found in the daemon's memory (the scan has no teeth?)"
	if grep -q ' (NOT locked' "$name.mem"; then
		problem "$name: key material in memory that is not locked: $(grep ' (NOT locked' "$name.mem" | head -3)"
	fi
	if grep -q ': secret ' "$name.mem"; then
		problem "$name: the passphrase/key file is still in the daemon's memory: $(grep ': secret ' "$name.mem" | head -3)"
	fi
	note "$name: $(wc -l <"$name.mem") key copies in memory, $(grep -c ', dumpable)' "$name.mem") of them in mappings a core dump includes (not MADV_DONTDUMP)"
}

# The question has teeth: an ordinary process is dumpable.
"${NOPTRACE[@]}" sleep 300 &
sleeper=$!
cleanup_fn "kill $sleeper 2>/dev/null"
# (not before it runs sleep: the forked shell would run our EXIT trap)
for _ in $(seq 100); do
	[ "$(cat "/proc/$sleeper/comm" 2>/dev/null)" != sleep ] || break
	sleep 0.05
done
d=$(dumpable "$sleeper")
[ "$d" = 1 ] || fail "sleep is not dumpable ('$d', expected 1): this check cannot work here $(cat dumpable.err)"
kill "$sleeper"

check_daemon luks --key luks.vk --secret pass
check_daemon plain --essiv-key plain.key --secret plain.tail

check_problems
exit 0
