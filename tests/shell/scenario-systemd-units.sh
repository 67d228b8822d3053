#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The built systemd units, statically and by hand.
#   static: blockcrypt@.service is Type=notify, ExecStart=BIN attach
#     --from-tab %i --foreground ..., ExecStop=BIN detach %i;
#     blockcrypt-all.service is a oneshot (RemainAfterExit=yes) running BIN
#     attach --all / BIN detach --all; no unsubstituted @VAR@ is left; with
#     BIN replaced by $BLOCKCRYPT (systemd-analyze wants it to exist),
#     `systemd-analyze verify` prints nothing but complaints about the
#     Documentation= files, which are not installed here (and a broken copy
#     proves that verify does complain);
#   live: the unit's ExecStart command line (plus --tab) is run with
#     NOTIFY_SOCKET pointing at our datagram socket: exactly one READY=1
#     arrives, from the main pid itself (NotifyAccess=main), at a moment
#     when the FUSE file exists and the NBD socket answers; the process
#     stays in the foreground as the daemon; ExecStop (detach %i) ends it
#     with status 0; SIGTERM does the same; an entry with a wrong key makes
#     ExecStart exit 3 without sending READY=1.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/scenario-lib.bash"
requires systemd-analyze nbdinfo
need_root_fuse
scn_teardown_register

UNIT_DIR=${BLOCKCRYPT_UNIT_DIR:-$(cd "$(dirname "$BLOCKCRYPT")/.." && pwd)}
TARGET_SRC=$TESTS_DIR/../data/systemd/blockcrypt.target
for u in blockcrypt@.service blockcrypt-all.service; do
	[ -f "$UNIT_DIR/$u" ] || fail "built unit $UNIT_DIR/$u not found (set BLOCKCRYPT_UNIT_DIR)"
done
[ -f "$TARGET_SRC" ] || fail "$TARGET_SRC not found"
ONE=$UNIT_DIR/blockcrypt@.service
ALL=$UNIT_DIR/blockcrypt-all.service

# ---- static checks ------------------------------------------------------------
key_of() { sed -n "s/^$2=//p" "$1"; } # UNIT KEY: every value of KEY
grep -n '@[A-Z_]*@' "$ONE" "$ALL" && fail "unsubstituted @VARIABLE@ left in the built units (above)"
[ "$(key_of "$ONE" Type)" = notify ] || fail "blockcrypt@.service: Type='$(key_of "$ONE" Type)', expected notify"
na=$(key_of "$ONE" NotifyAccess)
case $na in main | exec | all) ;; *) fail "blockcrypt@.service: NotifyAccess='$na' would drop READY=1" ;; esac
start=$(key_of "$ONE" ExecStart)
[ "$(echo "$start" | wc -l)" = 1 ] || fail "blockcrypt@.service has $(echo "$start" | wc -l) ExecStart lines"
BIN=${start%% *}
case $BIN in /*/blockcrypt) ;; *) fail "blockcrypt@.service ExecStart binary '$BIN' is not an absolute path to blockcrypt" ;; esac
echo "$start" | grep -Eq "^$BIN attach --from-tab %i --foreground( |\$)" ||
	fail "blockcrypt@.service ExecStart is '$start', expected '$BIN attach --from-tab %i --foreground ...'"
[ "$(key_of "$ONE" ExecStop)" = "$BIN detach %i" ] || fail "blockcrypt@.service ExecStop is '$(key_of "$ONE" ExecStop)', expected '$BIN detach %i'"
[ "$(key_of "$ALL" Type)" = oneshot ] || fail "blockcrypt-all.service: Type='$(key_of "$ALL" Type)', expected oneshot"
[ "$(key_of "$ALL" RemainAfterExit)" = yes ] || fail "blockcrypt-all.service: RemainAfterExit is not yes (ExecStop would run at once)"
key_of "$ALL" ExecStart | grep -Eq "^$BIN attach --all( |\$)" || fail "blockcrypt-all.service ExecStart is '$(key_of "$ALL" ExecStart)'"
key_of "$ALL" ExecStop | grep -Eq "^$BIN detach --all( |\$)" || fail "blockcrypt-all.service ExecStop is '$(key_of "$ALL" ExecStop)'"

# ---- systemd-analyze verify ---------------------------------------------------
mkdir units
sed "s|$BIN|$BLOCKCRYPT|g" "$ONE" >units/blockcrypt@vol.service
sed "s|$BIN|$BLOCKCRYPT|g" "$ALL" >units/blockcrypt-all.service
cp "$TARGET_SRC" units/blockcrypt.target
grep -q "$BIN" units/*.service && [ "$BIN" != "$BLOCKCRYPT" ] && fail "could not substitute $BIN in the unit copies"
# Documentation= URIs whose file is not installed: the only accepted complaints.
# The man: pages are not installed here either (--man=no): install-man.sh
# checks the built pages.
docs=()
for uri in $(sed -n 's/^Documentation=//p' "$ONE" "$ALL" "$TARGET_SRC" | tr ' ' '\n' | sort -u); do
	case $uri in file:*) [ -e "${uri#file:}" ] || docs+=("${uri#file:}") ;; esac
done
verify() { # FILE...: output of systemd-analyze verify minus the missing-docs lines
	local rc=0 d
	(cd units && timeout 60 systemd-analyze verify --man=no "$@") >verify.raw 2>&1 || rc=$?
	cp verify.raw verify.out
	for d in "${docs[@]}"; do grep -vF "$d" verify.out >verify.tmp || true; mv verify.tmp verify.out; done
	return $rc
}
verify ./blockcrypt@vol.service ./blockcrypt-all.service ./blockcrypt.target ||
	fail "systemd-analyze verify failed (exit $?): $(cat verify.raw)"
[ ! -s verify.out ] || fail "systemd-analyze verify complains: $(cat verify.out)"
[ ! -s verify.raw ] || note "systemd-analyze verify, accepted (Documentation= not installed): $(cat verify.raw)"
# The checker must be able to fail: a broken copy is reported.
sed 's/^Type=notify/Type=notifyy/' units/blockcrypt@vol.service >units/broken@vol.service
verify ./broken@vol.service || true
grep -q notifyy verify.out || fail "systemd-analyze verify did not report a broken Type= (output: $(cat verify.raw))"
rm units/broken@vol.service

# ---- ExecStart by hand, with a notify socket -----------------------------------
new_volume nv.img nv.key
new_volume bad.img right.key
printf 'wrong passphrase' >bad.key
mkdir -p fuse/nv fuse/bad
TAB=$TEST_TMP/blockcrypttab
cat >"$TAB" <<EOF
nv   $TEST_TMP/nv.img   $TEST_TMP/nv.key   fuse=$TEST_TMP/fuse/nv,after-attach=sleep 1; echo done >$TEST_TMP/hook.done
bad  $TEST_TMP/bad.img  $TEST_TMP/bad.key  fuse=$TEST_TMP/fuse/bad
EOF
cat >listen.py <<'EOF'
# listen.py SOCKET FUSE_FILE NBD_SOCKET HOOK_MARK OUT WAIT: collect sd_notify
# datagrams (with the sender's pid) for WAIT seconds, or until 3 s after the
# first READY=1; at READY=1 note whether the volume is served.
import json, os, socket, struct, sys, time
path, fuse_file, nbd_sock, mark, out, wait = sys.argv[1:7]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
open(out + ".listening", "w").close()
events, ready_at, deadline = [], None, time.time() + float(wait)
while True:
    end = min(deadline, ready_at + 3) if ready_at else deadline
    if time.time() >= end:
        break
    s.settimeout(max(0.05, end - time.time()))
    try:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        continue
    ev = {"msg": msg.decode(errors="replace"), "pid": None}
    for lvl, typ, data in anc:
        if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            ev["pid"] = struct.unpack("iII", data[:12])[0]
    if "READY=1" in ev["msg"].split("\n"):
        ev["fuse_file"] = os.path.isfile(fuse_file)
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(5)
            c.connect(nbd_sock)
            got = b""
            while len(got) < 8:
                b = c.recv(8 - len(got))
                if not b:
                    break
                got += b
            c.close()
            ev["nbd"] = got == b"NBDMAGIC"
        except OSError as e:
            ev["nbd"] = repr(e)
        ev["hook_done"] = os.path.exists(mark)
        ready_at = ready_at or time.time()
    events.append(ev)
json.dump(events, open(out, "w"))
EOF

# unit_cmd KEY NAME: the unit's KEY command line for instance NAME, as an array in CMD.
unit_cmd() {
	local line
	line=$(sed -n "s/^$1=//p" units/blockcrypt@vol.service)
	read -r -a CMD <<<"${line//%i/$2}"
}
# start_unit NAME [WAIT]: ExecStart (+ --tab) in the background with a
# notify listener (which gives up after WAIT seconds, default 30).
start_unit() {
	rm -f notify.sock events.json events.json.listening
	python3 listen.py "$TEST_TMP/notify.sock" "$TEST_TMP/fuse/$1/$1" "$BLOCKCRYPT_RUN_DIR/$1.sock" \
		"$TEST_TMP/hook.done" events.json "${2:-30}" &
	LISTENER=$!
	wait_for 10 test -e events.json.listening || fail "notify listener did not start"
	unit_cmd ExecStart "$1"
	NOTIFY_SOCKET=$TEST_TMP/notify.sock "${CMD[@]}" --tab "$TAB" </dev/null >"unit-$1.out" 2>"unit-$1.err" &
	MAINPID=$!
}
# wait_exit PID SECS: PID (our child) must end within SECS; its status in $st.
wait_exit() {
	local pid=$1
	wait_for "$2" eval '! kill -0 "$pid" 2>/dev/null || [ "$(ps -o stat= -p "$pid")" = Z ]' ||
		fail "pid $pid still running ${2}s later"
	st=0
	wait "$pid" || st=$?
}
ev() { python3 -c 'import json,sys; e=json.load(open("events.json")); print(eval(sys.argv[1]))' "$1"; }
check_ready() { # WHEN
	wait "$LISTENER" || fail "$1: notify listener failed"
	[ -s events.json ] || fail "$1: no events file"
	n=$(ev 'sum(1 for x in e if "READY=1" in x["msg"].split("\n"))')
	[ "$n" = 1 ] || fail "$1: $n READY=1 messages, expected exactly 1: $(cat events.json)"
	[ "$(ev '[x for x in e if "READY=1" in x["msg"]][0]["pid"]')" = "$MAINPID" ] ||
		fail "$1: READY=1 came from pid $(ev '[x for x in e if "READY=1" in x["msg"]][0]["pid"]'), not the main pid $MAINPID (NotifyAccess=$na drops it): $(cat events.json)"
	[ "$(ev '[x for x in e if "READY=1" in x["msg"]][0]["fuse_file"]')" = True ] || fail "$1: READY=1 before the FUSE file existed"
	[ "$(ev '[x for x in e if "READY=1" in x["msg"]][0]["nbd"]')" = True ] ||
		fail "$1: READY=1 before the NBD socket answered: $(cat events.json)"
	kill -0 "$MAINPID" 2>/dev/null || fail "$1: ExecStart exited after READY=1 (Type=notify needs it to stay): $(cat unit-nv.err)"
	[ "$(list_field nv pid)" = "$MAINPID" ] || fail "$1: list --json pid is $(list_field nv pid), not the ExecStart process $MAINPID"
	timeout 30 nbdinfo --size "$(nbd_uri nv)" >/dev/null || fail "$1: nbdinfo on the served volume failed"
}

start_unit nv
check_ready "ExecStart"
hook_at_ready=$(ev '[x for x in e if "READY=1" in x["msg"]][0]["hook_done"]')
[ "$hook_at_ready" = True ] ||
	note "READY=1 was sent before the after-attach command (sleep 1; echo) finished: units ordered after blockcrypt@NAME may start before e.g. its pool is imported"
wait_for 10 test -e hook.done || fail "the after-attach command never ran in --foreground mode"
unit_cmd ExecStop nv
timeout -k 5 60 "${CMD[@]}" >stop.out 2>&1 || fail "ExecStop (${CMD[*]}) failed: $(cat stop.out)"
wait_exit "$MAINPID" 30
[ "$st" = 0 ] || fail "after ExecStop the main process exited with status $st: $(cat unit-nv.err)"
[ -z "$(list_names)" ] || fail "still attached after ExecStop: $(list_names)"
! mountpoint -q fuse/nv || fail "FUSE mount still there after ExecStop"

# systemd's own stop, SIGTERM, is a detach too.
rm -f hook.done
start_unit nv
check_ready "ExecStart, second time"
kill -TERM "$MAINPID"
wait_exit "$MAINPID" 30
[ "$st" = 0 ] || fail "after SIGTERM the main process exited with status $st: $(cat unit-nv.err)"
[ -z "$(list_names)" ] || fail "still attached after SIGTERM: $(list_names)"
! mountpoint -q fuse/nv || fail "FUSE mount still there after SIGTERM"

# A wrong key: ExecStart fails with exit 3 and never says READY=1.
start_unit bad 8
wait_exit "$MAINPID" 60
[ "$st" = 3 ] || fail "ExecStart for an entry with a wrong key exited $st, expected 3: $(cat unit-bad.err)"
grep -qF "$TAB:2: bad: " unit-bad.err || fail "the wrong-key failure does not name $TAB:2: bad: $(cat unit-bad.err)"
wait "$LISTENER" || fail "notify listener failed"
[ "$(ev 'sum(1 for x in e if "READY=1" in x["msg"])')" = 0 ] || fail "READY=1 sent for a volume that failed to attach: $(cat events.json)"
[ -z "$(list_names)" ] || fail "something attached after the failed ExecStart: $(list_names)"
! mountpoint -q fuse/bad || fail "the failed ExecStart left a FUSE mount"
note "systemd units: verify clean; ExecStart sends READY=1 once, from the main pid, when served; ExecStop and SIGTERM stop it; a wrong key exits 3"
exit 0
