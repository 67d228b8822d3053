#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# No key is left in the attach daemon once it has detached (issue #7): the
# daemon is stopped with gdb at its very end (the exit_group system call,
# after the volume is closed and every atexit handler ran), a core is forced
# there with gcore -- every mapping, MADV_DONTDUMP ones included -- and
# searched for the known volume key (whole, each 16-byte piece, each XTS
# half, in hex, every AES round key of its schedules; for ESSIV also the
# salt SHA-256(key) and its schedule) and for the passphrase.  Cases:
#  A. LUKS2 aes-xts-plain64 (512-bit key set with cryptsetup
#     --volume-key-file), NBD + FUSE, I/O over 3 NBD connections and the
#     FUSE file, `blockcrypt detach`;
#  B. plain aes-cbc-essiv:sha256 (raw key file), NBD, I/O, `detach`;
#  C. LUKS1 aes-xts-plain64 256-bit, `attach --foreground`, SIGTERM;
#  D. the `blockcrypt attach` command itself (which unlocks, forks the
#     daemon and closes its own copy), at its exit;
#  E. LUKS2 with the FUSE file held open, `detach --force`.
# Each daemon must exit with status 0.  The search has teeth: a core taken
# the same way while the volume is open (A-C, E: attached; D: at the fork)
# must contain the key.
. "$(dirname "$0")/functions.bash"
requires gdb cryptsetup nbdcopy od cmp mountpoint /usr/bin/python3
. "$TESTS_DIR/shell/hygiene-lib.bash"

mkdir mnt
fg_pid=
cleanup_fn '[ -z "$fg_pid" ] || kill -9 "$fg_pid" 2>/dev/null; exec 7<&-; _detach_all; ! mountpoint -q "$TEST_TMP/mnt" || umount -l "$TEST_TMP/mnt"'


# scan_core CASE WHAT WANT CORE SCAN_ARGS...: search CORE (then delete it);
# WANT=none: no hit allowed; WANT=key: the key must be there (teeth).
scan_core() {
	local case=$1 what=$2 want=$3 core=$4 rc=0; shift 4
	"${SCAN[@]}" --summary --maps "$core.smaps" "$@" "$core" >"$core.hits" 2>scan.err || rc=$?
	rm -f "$core"
	[ "$rc" -lt 2 ] || fail "$case: hygiene_scan.py: $(cat scan.err)"
	if [ "$want" = none ]; then
		[ "$rc" = 0 ] || problem "$case: $what: key material in the core: $(wc -l <"$core.hits") kinds, e.g.
$(sed 's/^[^:]*: /    /' "$core.hits" | head -4)"
	else
		grep -q ': key ' "$core.hits" ||
			problem "$case: $what: the key is not in a core taken while it is in use: the search has no teeth"
	fi
}

# live_core CASE PID CORE: a core of a running process, all mappings.
live_core() {
	cp "/proc/$2/smaps" "$3.smaps"
	timeout 120 gdb -p "$2" -batch -nx -ex 'set dump-excluded-mappings on' -ex "gcore $3" >gdb-live.out 2>&1 || true
	[ -s "$3" ] || fail "$1: gcore of the running daemon failed: $(tail -n 3 gdb-live.out)"
}

# core_at_exit CASE PID CORE TRIGGER...: gdb stops PID at exit_group and
# writes CORE (and CORE.smaps); TRIGGER (run once gdb is in place) makes
# the daemon go.  The daemon must then exit with status 0.
core_at_exit() {
	local case=$1 pid=$2 core=$3 gdbpid rc=0; shift 3
	rm -f gdb.ready
	cat >gdb.cmds <<EOF
set pagination off
set confirm off
set dump-excluded-mappings on
handle SIGPIPE SIGTERM SIGINT SIGHUP nostop noprint pass
catch syscall exit_group
shell touch $TEST_TMP/gdb.ready
continue
shell cp /proc/$pid/smaps $core.smaps
gcore $core
continue
EOF
	timeout 120 gdb -p "$pid" -batch -nx -x gdb.cmds >"$core.gdb" 2>&1 &
	gdbpid=$!
	for _ in $(seq 600); do
		[ -e gdb.ready ] || ! kill -0 "$gdbpid" 2>/dev/null && break
		sleep 0.1
	done
	[ -e gdb.ready ] || fail "$case: gdb did not get hold of the daemon: $(tail -n 3 "$core.gdb")"
	"$@" >trigger.out 2>&1 || problem "$case: '$*' failed: $(cat trigger.out)"
	wait "$gdbpid" || rc=$?
	[ "$rc" = 0 ] || fail "$case: gdb exited with $rc: $(tail -n 3 "$core.gdb")"
	# gdb attached to a thread that sits in a system call (poll) may count
	# its entry/return stops off by one and call the exit_group entry a
	# "return" (seen with gdb 13 on a 6.18 kernel); both are the stop at
	# exit_group, which never returns.
	grep -Eq 'Catchpoint 1 \((call to|returned from) syscall exit_group\)' "$core.gdb" ||
		fail "$case: the daemon did not stop at exit_group: $(grep -v '^\[' "$core.gdb" | tail -n 3)"
	[ -s "$core" ] || fail "$case: no core written at exit: $(tail -n 3 "$core.gdb")"
	grep -q 'exited normally' "$core.gdb" ||
		problem "$case: the daemon did not exit with status 0: $(grep -E 'exited|signal' "$core.gdb" | tail -n 2)"
}

PASS_TEXT="hygiene-passphrase-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$PASS_TEXT" >pass
random_file data $((1048576))

# luks_volume IMG VK_FILE KEY_BYTES TYPE: a volume keyed with VK_FILE
# (random), passphrase "pass", holding "data".
luks_volume() {
	head -c "$3" /dev/urandom >"$2"
	truncate -s 24M "$1"
	cryptsetup luksFormat --batch-mode --type "$4" --cipher aes-xts-plain64 --key-size $(($3 * 8)) \
		--volume-key-file "$2" --key-file pass --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$1" ||
		fail "cryptsetup luksFormat $1 failed"
	[ "$(volume_key "$1" pass)" = "$(hexof "$2")" ] || fail "$1: cryptsetup did not use the given volume key"
	bc write "$1" --key-file pass <data 2>/dev/null || fail "write to $1 failed"
}

# nbd_io NAME: 3 concurrent NBD readers, each must read back "data".
nbd_io() {
	local i pids=()
	for i in 1 2 3; do
		timeout 60 nbdcopy "$(nbd_uri "$1")" "$1-$i.raw" &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	for i in 1 2 3; do
		head -c 1048576 "$1-$i.raw" 2>/dev/null | cmp -s - data || fail "$1: NBD reader $i got wrong data"
		rm -f "$1-$i.raw"
	done
}

# ---- A. LUKS2, NBD + FUSE, detach --------------------------------------------
luks_volume a.img a.vk 64 luks2
bc attach a.img --key-file pass --fuse mnt >/dev/null || fail "A: attach failed"
nbd_io a
head -c 1048576 mnt/a | cmp -s - data || fail "A: the FUSE file reads wrong data"
printf 'fuse write' | dd of=mnt/a bs=4096 seek=50 conv=notrunc status=none || fail "A: FUSE write failed"
# The kernel releases a closed FUSE file asynchronously: until it has, a
# plain detach would say "busy".
a_closed() { bc status a --json 2>/dev/null | grep -q '"fuse_open": *0'; }
wait_for 20 a_closed ||
	fail "A: the FUSE file still counts as open 20 s after it was closed"
pid=$(daemon_pid a)
live_core A "$pid" a-live.core
scan_core A "while attached" key a-live.core --key a.vk --secret pass
core_at_exit A "$pid" a-exit.core bc detach a
scan_core A "at exit after detach" none a-exit.core --key a.vk --secret pass
! mountpoint -q mnt || problem "A: FUSE mount left behind after detach"

# ---- B. plain ESSIV, NBD, detach ----------------------------------------------
head -c 32 /dev/urandom >b.key
random_file b.img $((8 * 1048576))
PLAIN=(--type plain --cipher aes-cbc-essiv:sha256 --key-size 256 --key-file b.key)
bc write b.img "${PLAIN[@]}" <data 2>/dev/null || fail "B: write failed"
bc attach b.img "${PLAIN[@]}" >/dev/null || fail "B: attach failed"
nbd_io b
pid=$(daemon_pid b)
live_core B "$pid" b-live.core
scan_core B "while attached" key b-live.core --essiv-key b.key
core_at_exit B "$pid" b-exit.core bc detach b
scan_core B "at exit after detach" none b-exit.core --essiv-key b.key

# ---- C. LUKS1, attach --foreground, SIGTERM -------------------------------------
luks_volume c.img c.vk 32 luks1
"$BLOCKCRYPT" attach c.img --key-file pass --foreground >c.out 2>c.log &
fg_pid=$!
for _ in $(seq 200); do
	[ -S "$BLOCKCRYPT_RUN_DIR/c.sock" ] || ! kill -0 "$fg_pid" 2>/dev/null && break
	sleep 0.1
done
[ -S "$BLOCKCRYPT_RUN_DIR/c.sock" ] || fail "C: attach --foreground did not come up: $(cat c.log)"
nbd_io c
live_core C "$fg_pid" c-live.core
scan_core C "while attached" key c-live.core --key c.vk --secret pass
core_at_exit C "$fg_pid" c-exit.core kill -TERM "$fg_pid"
rc=0
wait "$fg_pid" || rc=$?
fg_pid=
[ "$rc" = 0 ] || problem "C: attach --foreground exited with $rc after SIGTERM: $(tail -n 2 c.log)"
scan_core C "at exit after SIGTERM" none c-exit.core --key c.vk --secret pass

# ---- D. the attach command itself ----------------------------------------------
luks_volume d.img d.vk 64 luks2
cat >gdb-d.cmds <<EOF
set pagination off
set confirm off
set dump-excluded-mappings on
set follow-fork-mode parent
set detach-on-fork on
catch fork
catch syscall exit_group
run
python gdb.execute("shell cp /proc/%d/smaps $TEST_TMP/d-fork.core.smaps" % gdb.selected_inferior().pid)
gcore $TEST_TMP/d-fork.core
continue
python gdb.execute("shell cp /proc/%d/smaps $TEST_TMP/d-exit.core.smaps" % gdb.selected_inferior().pid)
gcore $TEST_TMP/d-exit.core
continue
EOF
timeout 120 gdb -batch -nx -ex "set args attach $TEST_TMP/d.img --key-file $TEST_TMP/pass >$TEST_TMP/d.out 2>&1" \
	-x gdb-d.cmds "$BLOCKCRYPT" >d.gdb 2>&1 || fail "D: gdb failed: $(tail -n 3 d.gdb)"
grep -q 'Catchpoint 1 (forked process' d.gdb || fail "D: attach did not stop at its fork: $(grep -v '^\[' d.gdb | tail -n 3)"
grep -Eq 'Catchpoint 2 \((call to|returned from) syscall exit_group\)' d.gdb || fail "D: attach did not stop at exit_group: $(grep -v '^\[' d.gdb | tail -n 3)"
grep -q 'exited normally' d.gdb || problem "D: attach did not exit with status 0: $(cat d.out)"
[ -s d-fork.core ] && [ -s d-exit.core ] || fail "D: gcore failed: $(tail -n 3 d.gdb)"
scan_core D "at the fork" key d-fork.core --key d.vk --secret pass
scan_core D "at exit of the attach command" none d-exit.core --key d.vk --secret pass
nbd_io d
bc detach d >/dev/null 2>&1 || problem "D: detach failed"

# ---- E. detach --force while the FUSE file is open --------------------------------
luks_volume e.img e.vk 64 luks2
bc attach e.img --key-file pass --fuse mnt >/dev/null || fail "E: attach failed"
head -c 1048576 mnt/e | cmp -s - data || fail "E: the FUSE file reads wrong data"
pid=$(daemon_pid e)
live_core E "$pid" e-live.core
scan_core E "while attached" key e-live.core --key e.vk --secret pass
exec 7<mnt/e
core_at_exit E "$pid" e-exit.core bc detach --force e
exec 7<&-
scan_core E "at exit after detach --force with the FUSE file open" none e-exit.core --key e.vk --secret pass
! mountpoint -q mnt || umount -l mnt

check_problems
exit 0
