#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key hygiene of the one-shot commands (issue #7).  Each runs under gdb,
# which stops it at its very end (the exit_group system call) and forces a
# core there with gcore (every mapping, MADV_DONTDUMP ones included); the
# core must hold no trace of the volume key (whole, 16-byte pieces, XTS
# halves, hex, AES round keys; ESSIV salt and its schedule) nor of any
# passphrase given, and the command must exit 0 with nothing of them on
# stderr.  Commands: cat and write (LUKS2 aes-xts-plain64 with a 512-bit key
# set by cryptsetup --volume-key-file), cat of a plain aes-cbc-essiv:sha256
# volume (raw key file longer than the key), add-key, change-key,
# remove-key, and format (its volume key is read back with cryptsetup
# afterwards).
# While cat and write stream data (stopped at their first write to stdout
# / pwrite64 to the backing), /proc/PID/mem is searched too: the key must
# be there (so the search has teeth), every copy of it in locked memory
# (our standard: keys in mlock'd memory), and the passphrase (or the
# unused tail of the key file) already gone.
. "$(dirname "$0")/functions.bash"
requires gdb cryptsetup od /usr/bin/python3
. "$TESTS_DIR/shell/hygiene-lib.bash"

# run_oneshot CASE MID ARGS...: run `blockcrypt ARGS` under gdb (stdin
# from CASE.in if it exists, stdout to CASE.out, stderr to CASE.err).  With
# MID (a syscall name), at its first call the process memory is searched
# with the needles in NEEDLES (result in CASE.mem).  At exit_group:
# CASE.core and CASE.core.smaps.
run_oneshot() {
	local case=$1 mid=$2 in=/dev/null rc=0 a args=""; shift 2
	[ ! -e "$case.in" ] || in=$TEST_TMP/$case.in
	for a in "$@"; do args+=" $(printf '%q' "$a")"; done
	{
		echo 'set pagination off'
		echo 'set confirm off'
		echo 'set dump-excluded-mappings on'
		if [ -n "$mid" ]; then
			echo "catch syscall $mid"
			# (only a write to stdout: x86-64 passes the fd in rdi)
			[ "$mid" != write ] || [ "$(uname -m)" != x86_64 ] || echo 'condition 1 $rdi == 1'
			echo "catch syscall exit_group"
			echo 'run'
			printf 'python gdb.execute("shell %s %s pid:%%d >%s 2>%s; grep VmLck /proc/%%d/status >%s" %% ((gdb.selected_inferior().pid,) * 2))\n' \
				"${SCAN[*]}" "${NEEDLES[*]}" "$TEST_TMP/$case.mem" "$TEST_TMP/$case.mem.err" "$TEST_TMP/$case.mem.status"
			echo 'delete 1'
			echo 'continue'
		else
			echo "catch syscall exit_group"
			echo 'run'
		fi
		printf 'python gdb.execute("shell cp /proc/%%d/smaps %s" %% gdb.selected_inferior().pid)\n' "$TEST_TMP/$case.core.smaps"
		echo "gcore $TEST_TMP/$case.core"
		echo 'continue'
	} >"$case.gdb.cmds"
	timeout 120 gdb -batch -nx -ex "set args$args <$in >$TEST_TMP/$case.out 2>$TEST_TMP/$case.err" \
		-x "$case.gdb.cmds" "$BLOCKCRYPT" >"$case.gdb" 2>&1 || rc=$?
	[ "$rc" = 0 ] || fail "$case: gdb exited with $rc: $(grep -v '^\[' "$case.gdb" | tail -n 3)"
	grep -q 'call to syscall exit_group' "$case.gdb" ||
		fail "$case: did not stop at exit_group: $(grep -v '^\[' "$case.gdb" | tail -n 3) $(cat "$case.err")"
	grep -q 'exited normally' "$case.gdb" || problem "$case: blockcrypt $* did not exit 0: $(cat "$case.err")"
	[ -s "$case.core" ] || fail "$case: no core written: $(tail -n 3 "$case.gdb")"
	if [ -n "$mid" ]; then
		grep -q "call to syscall $mid" "$case.gdb" || fail "$case: never stopped at $mid"
		[ ! -s "$case.mem.err" ] || fail "$case: memory search failed: $(cat "$case.mem.err")"
	fi
}

# check_exit CASE SCAN_ARGS...: no needle in CASE's exit core nor stderr.
check_exit() {
	local case=$1 rc=0; shift
	"${SCAN[@]}" --summary --maps "$case.core.smaps" "$@" "$case.core" "$case.err" >"$case.hits" 2>scan.err || rc=$?
	rm -f "$case.core"
	[ "$rc" -lt 2 ] || fail "$case: hygiene_scan.py: $(cat scan.err)"
	[ "$rc" = 0 ] || problem "$case: key material left at exit (core) or on stderr: $(wc -l <"$case.hits") kinds, e.g.
$(sed 's/^\([^:]*\): /    \1: /' "$case.hits" | head -4)"
}

# check_mid CASE: the key is in memory while in use, locked, the secret gone.
check_mid() {
	local case=$1
	grep -q ': key ' "$case.mem" ||
		problem "$case: no copy of the key in memory while it is in use: the search has no teeth"
	! grep -q ' (NOT locked' "$case.mem" ||
		problem "$case: key material in memory that is not locked (VmLck $(awk '/VmLck/ {print $2}' "$case.mem.status" 2>/dev/null)): $(grep -c ' (NOT locked' "$case.mem") copies, e.g.
$(grep ' (NOT locked' "$case.mem" | sed 's/^pid:[0-9]*: /    /' | head -2)"
	! grep -q ': secret ' "$case.mem" ||
		problem "$case: the passphrase/key file is still in memory while streaming: $(grep ': secret ' "$case.mem" | head -2)"
}

PASS_TEXT="hygiene-passphrase-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$PASS_TEXT" >pass
printf 'second-%s' "$PASS_TEXT" >pass2
printf 'third-%s' "$PASS_TEXT" >pass3
head -c 64 /dev/urandom >vk
truncate -s 20M vol.img
cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512 \
	--volume-key-file vk --key-file pass --pbkdf pbkdf2 --pbkdf-force-iterations 1000 vol.img ||
	fail "cryptsetup luksFormat with a known volume key failed"
[ "$(volume_key vol.img pass)" = "$(hexof vk)" ] || fail "cryptsetup did not use the volume key given"
random_file write.in $((2 * 1048576))

# ---- write, cat ----------------------------------------------------------------
NEEDLES=(--key "$TEST_TMP/vk" --secret "$TEST_TMP/pass")
run_oneshot write pwrite64 write "$TEST_TMP/vol.img" --key-file "$TEST_TMP/pass"
check_mid write
check_exit write --key vk --secret pass
run_oneshot cat write cat "$TEST_TMP/vol.img" --key-file "$TEST_TMP/pass"
head -c $((2 * 1048576)) cat.out | cmp -s - write.in || fail "cat does not read back what write wrote"
rm -f cat.out
check_mid cat
check_exit cat --key vk --secret pass

# ---- plain ESSIV -----------------------------------------------------------------
head -c 32 /dev/urandom >pk
head -c 32 /dev/urandom >pk.tail
cat pk pk.tail >pk.file
random_file plain.img $((4 * 1048576))
PLAIN=(--type plain --cipher aes-cbc-essiv:sha256 --key-size 256 --key-file "$TEST_TMP/pk.file")
NEEDLES=(--essiv-key "$TEST_TMP/pk" --secret "$TEST_TMP/pk.tail")
run_oneshot plain-cat write cat "$TEST_TMP/plain.img" "${PLAIN[@]}"
[ "$(stat -c %s plain-cat.out)" = $((4 * 1048576)) ] || fail "plain cat: wrong output size"
check_mid plain-cat
check_exit plain-cat --essiv-key pk --secret pk.tail

# ---- key slots -------------------------------------------------------------------
run_oneshot add-key "" add-key "$TEST_TMP/vol.img" --key-file "$TEST_TMP/pass" --new-key-file "$TEST_TMP/pass2" "${FAST_KDF[@]}"
cryptsetup open --test-passphrase --key-file pass2 vol.img || fail "add-key did not add pass2"
check_exit add-key --key vk --secret pass --secret pass2
run_oneshot change-key "" change-key "$TEST_TMP/vol.img" --key-file "$TEST_TMP/pass2" --new-key-file "$TEST_TMP/pass3" "${FAST_KDF[@]}"
cryptsetup open --test-passphrase --key-file pass3 vol.img || fail "change-key did not set pass3"
check_exit change-key --key vk --secret pass2 --secret pass3
run_oneshot remove-key "" remove-key "$TEST_TMP/vol.img" --key-file "$TEST_TMP/pass3" --batch
! cryptsetup open --test-passphrase --key-file pass3 vol.img 2>/dev/null || fail "remove-key did not remove pass3"
check_exit remove-key --key vk --secret pass3

# ---- format: the key is known only afterwards ------------------------------------------
run_oneshot format "" format "$TEST_TMP/new.img" --batch --key-file "$TEST_TMP/pass" --size 20M "${FAST_KDF[@]}" --no-progress
nvk=$(volume_key new.img pass)
[ "${#nvk}" = 128 ] || fail "format: cannot read the new volume key back (got '${nvk}')"
printf '%s' "$nvk" | /usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' >new.vk
check_exit format --key new.vk --secret pass

check_problems
exit 0
