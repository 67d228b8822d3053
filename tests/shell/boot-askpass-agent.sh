#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The passphrase at boot: a unit made by blockcrypt-generator for a LUKS
# volume with no key file (KEY none) runs its ExecStart with no terminal
# (setsid, stdin /dev/null), and asks systemd's password agents
# (systemd.io/PASSWORD_AGENTS).  Run in a private mount namespace whose
# /run/systemd is a tmpfs holding system/ and ask-password/ (what systemd
# makes), with a fake agent (python, below) in that namespace:
#   - the question: ask.* file, mode 0644, [Ask] with PID= the ExecStart
#     process, Socket= a 0600 datagram socket in the directory (nobody may
#     send to it), AcceptCached=0, Echo=0, NotAfter=0, Message= naming the
#     volume, Id=blockcrypt:NAME, Icon=drive-harddisk;
#   - the right answer attaches the volume: the data written before reads
#     back through NBD; ExecStop detaches it;
#   - wrong answers: asked again, tries= times, then exit 3 (wrong key),
#     nothing attached; a wrong then a right answer attaches;
#   - "-" (cancelled): exit 10;
#   - timeout=2 and no answer: NotAfter= is 2 s ahead on CLOCK_MONOTONIC,
#     and the command gives up (non-zero) within a few seconds;
#   - SIGTERM while waiting: the command dies of it;
#   - every time, the question file and the socket are gone afterwards;
#   - without systemd (no /run/systemd/system) and no terminal, no agent is
#     asked: the old "no terminal" error, at once; the same for a command
#     that systemd did not start (no $INVOCATION_ID: a script, cron).
. "$(dirname "$0")/functions.bash"
requires unshare nsenter setsid nbdcopy python3
requires_root "a mount namespace"

GEN=$(dirname "$BLOCKCRYPT")/generator/blockcrypt-generator
[ -x "$GEN" ] || fail "$GEN not built"

# ---- the volume and its unit ----------------------------------------------------
VOLUME_SIZE=20M new_volume pw.img pw.key
random_file data 1048576
bc write pw.img --key-file pw.key <data 2>write.err || fail "write: $(cat write.err)"
TAB=$TEST_TMP/blockcrypttab
cat >"$TAB" <<EOF
pw     $TEST_TMP/pw.img  none  tries=2
once   $TEST_TMP/pw.img  none  tries=1,timeout=2
EOF
mkdir units
"$GEN" --tab "$TAB" "$TEST_TMP/units" 2>gen.err || fail "generator: $(cat gen.err)"
# unit_cmd KEY NAME: the unit's KEY command line as an array in CMD, our binary in it.
unit_cmd() {
	local line
	line=$(sed -n "s/^$1=//p" "units/blockcrypt-attach@$2.service")
	[ -n "$line" ] || fail "no $1= in the unit of $2"
	read -r -a CMD <<<"$line"
	CMD[0]=$BLOCKCRYPT
}

# ---- the namespace: /run/systemd as systemd makes it, and the fake agent ---------------
. "$TESTS_DIR/shell/askpass-lib.bash"
askpass_ns

# run_unit NAME OUT ANSWER...: the agent with ANSWERs, then NAME's ExecStart
# in the namespace, no terminal; MAINPID is its pid.
run_unit() {
	local name=$1 out=$2
	shift 2
	rm -f "$out" "$out.ready" "$out.asked"
	# (nsenter itself, not the function ns: $! must be the process)
	nsenter -t "$NS_PID" -m python3 "$ASK_AGENT" "$ASK" "$out" "$@" 2>"$out.agent.err" &
	AGENT=$!
	wait_for 10 test -e "$out.ready" || fail "the agent did not start: $(cat "$out.agent.err")"
	unit_cmd ExecStart "$name"
	nsenter -t "$NS_PID" -m setsid "${INVOCATION[@]}" "${CMD[@]}" \
		</dev/null >"$out.cmd.out" 2>"$out.cmd.err" &
	MAINPID=$!
	cleanup_fn "kill -9 $MAINPID $AGENT 2>/dev/null"
}
# wait_main SECS: the ExecStart process ends within SECS; its status in $st.
wait_main() {
	gone "$MAINPID" "$1" || fail "the ExecStart process $MAINPID still runs ${1}s later: $(cat "$OUT.cmd.err")"
	st=0
	wait "$MAINPID" || st=$?
}
# agent_done: the agent's records, in $OUT.
agent_done() {
	wait "$AGENT" || problem "the fake agent failed: $(cat "$OUT.agent.err")"
	[ -s "$OUT" ] || fail "no agent records in $OUT: $(cat "$OUT.agent.err")"
}
rec() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$OUT" "$1"; }
ask_dir_empty() { # WHEN
	local left
	left=$(ns find $ASK -mindepth 1)
	[ -z "$left" ] || problem "$1: left in $ASK: $left"
}
PASS="+$(cat pw.key)"

# ---- 1. the right answer ---------------------------------------------------------
OUT=$TEST_TMP/q1.json
run_unit pw "$OUT" "$PASS"
agent_done
wait_for 30 test -S "$BLOCKCRYPT_RUN_DIR/pw.sock" || fail "pw is not served after the right answer: $(cat "$OUT.cmd.err")"
running "$MAINPID" || fail "the ExecStart process ended after attaching (Type=notify needs it to stay): $(cat "$OUT.cmd.err")"
[ "$(rec 'len(r)')" = 1 ] || problem "the right answer: $(rec 'len(r)') questions, expected 1: $(cat "$OUT")"
[ "$(rec 'r[0]["ask"].get("PID")')" = "$MAINPID" ] || problem "PID=$(rec 'r[0]["ask"].get("PID")'), the ExecStart process is $MAINPID"
for kv in AcceptCached=0 Echo=0 NotAfter=0 Id=blockcrypt:pw Icon=drive-harddisk; do
	[ "$(rec "r[0]['ask'].get('${kv%%=*}')")" = "${kv#*=}" ] || problem "question: ${kv%%=*}=$(rec "r[0]['ask'].get('${kv%%=*}')"), expected ${kv#*=}"
done
rec 'r[0]["ask"].get("Message", "")' | grep -qw pw || problem "the question's Message does not name pw: $(rec 'r[0]["ask"].get("Message")')"
rec 'r[0]["ask"].get("Message", "")' | grep -qi passphrase || problem "the Message does not ask for a passphrase: $(rec 'r[0]["ask"].get("Message")')"
case $(rec 'r[0]["ask"].get("Socket", "")') in "$ASK"/*) ;; *) problem "Socket=$(rec 'r[0]["ask"].get("Socket")') is not in $ASK" ;; esac
[ "$(rec 'r[0].get("sock_is_socket")')" = True ] || problem "Socket= is no socket: $(cat "$OUT")"
[ "$(rec 'r[0].get("sock_mode")')" = 0o600 ] || problem "the socket has mode $(rec 'r[0].get("sock_mode")'), expected 0600 (root's agents only)"
[ "$(rec 'r[0]["nobody_send"]')" = 13 ] || problem "nobody could send to the socket (status $(rec 'r[0]["nobody_send"]'), 13 = refused)"
[ "$(rec 'r[0]["mode"]')" = 0o644 ] || problem "the question file has mode $(rec 'r[0]["mode"]'), expected 0644"
[ "$(rec 'r[0]["others"]')" = "['$(basename "$(rec 'r[0]["ask"].get("Socket", "")')")']" ] ||
	problem "besides the question, the directory held $(rec 'r[0]["others"]') (a tmp.* file left?)"
[ "$(rec 'r[0]["gone"]')" = True ] || problem "the question or its socket stayed after the answer: $(rec 'r[0]["left"]')"
ask_dir_empty "after the right answer"
nbdcopy "$(nbd_uri pw)" served.img || problem "nbdcopy from the attached volume failed"
cmp -n 1048576 data served.img || problem "the attached volume does not read back what was written"
unit_cmd ExecStop pw
timeout 60 "${CMD[@]}" >stop.out 2>&1 || problem "ExecStop failed: $(cat stop.out)"
wait_main 30
[ "$st" = 0 ] || problem "after ExecStop the ExecStart process exited $st: $(cat "$OUT.cmd.err")"

# ---- 2. wrong answers: tries=2 questions, then exit 3 ---------------------------------------------------
OUT=$TEST_TMP/q2.json
run_unit pw "$OUT" +wrong1 +wrong2
agent_done
wait_main 60
[ "$st" = 3 ] || problem "wrong answers: exit $st, expected 3 (wrong key): $(cat "$OUT.cmd.err")"
grep -qF "$TAB:1: pw: " "$OUT.cmd.err" || problem "the failure does not name $TAB:1: pw: $(cat "$OUT.cmd.err")"
[ "$(rec 'len(r)')" = 2 ] || problem "wrong answers with tries=2: $(rec 'len(r)') questions"
[ "$(rec 'all(x["gone"] for x in r)')" = True ] || problem "a question stayed after its wrong answer: $(cat "$OUT")"
[ -e "$BLOCKCRYPT_RUN_DIR/pw.sock" ] && problem "something is served after wrong answers"
ask_dir_empty "after wrong answers"

# Wrong, then right: asked again, attached.
OUT=$TEST_TMP/q3.json
run_unit pw "$OUT" +wrong "$PASS"
agent_done
wait_for 30 test -S "$BLOCKCRYPT_RUN_DIR/pw.sock" || problem "not attached after a wrong then a right answer: $(cat "$OUT.cmd.err")"
[ "$(rec 'len(r)')" = 2 ] || problem "wrong then right: $(rec 'len(r)') questions, expected 2"
[ "$(rec 'all(x["gone"] for x in r)')" = True ] || problem "a question stayed after its answer: $(cat "$OUT")"
[ "$(rec 'r[0]["file"] != r[1]["file"]')" = True ] || problem "the second question reused the first's file name"
ask_dir_empty "after wrong then right"
unit_cmd ExecStop pw
timeout 60 "${CMD[@]}" >stop.out 2>&1 || problem "ExecStop failed: $(cat stop.out)"
wait_main 30

# ---- 3. cancelled ---------------------------------------------------------------------
OUT=$TEST_TMP/q4.json
run_unit pw "$OUT" -
agent_done
wait_main 30
[ "$st" = 10 ] || problem "a cancelled question: exit $st, expected 10: $(cat "$OUT.cmd.err")"
grep -qi cancel "$OUT.cmd.err" || problem "a cancelled question does not say so: $(cat "$OUT.cmd.err")"
[ "$(rec 'len(r)')" = 1 ] || problem "cancelled: $(rec 'len(r)') questions, expected 1 (no retry after a cancel)"
ask_dir_empty "after a cancel"

# ---- 4. timeout=2, no answer -------------------------------------------------------------
OUT=$TEST_TMP/q5.json
t0=$(date +%s)
run_unit once "$OUT" none
agent_done
wait_main 20
t1=$(date +%s)
[ "$st" != 0 ] || problem "no answer within timeout=2, yet exit 0"
[ $((t1 - t0)) -le 15 ] || problem "timeout=2 took $((t1 - t0)) s to give up"
grep -qi 'time' "$OUT.cmd.err" || problem "the timeout is not reported as such: $(cat "$OUT.cmd.err")"
ahead=$(rec 'int(r[0]["ask"].get("NotAfter", "0")) / 1e6 - r[0]["mono"]')
python3 -c "import sys; sys.exit(0 if 0 < $ahead <= 2.5 else 1)" ||
	problem "NotAfter= is $ahead s ahead of CLOCK_MONOTONIC, expected (0, 2]"
[ "$(rec 'r[0]["gone"]')" = True ] || problem "the question stayed after the timeout: $(rec 'r[0]["left"]')"
ask_dir_empty "after a timeout"

# ---- 5. SIGTERM while waiting ------------------------------------------------------------
OUT=$TEST_TMP/q6.json
run_unit pw "$OUT" none
wait_for 20 test -e "$OUT.asked" || fail "no question for the SIGTERM case: $(cat "$OUT.cmd.err")"
kill -TERM "$MAINPID"
wait_main 20
[ "$st" = 143 ] || problem "SIGTERM at the question: exit $st, expected 143 (died of SIGTERM)"
agent_done
[ "$(rec 'r[0]["gone"]')" = True ] || problem "the question stayed after SIGTERM: $(rec 'r[0]["left"]')"
ask_dir_empty "after SIGTERM"

# ---- 6. no systemd: no agent, the old error at once ----------------------------------------
unit_cmd ExecStart pw
t0=$(date +%s)
timeout 30 unshare -m sh -c 'mount -t tmpfs bc-test-nosd /run/systemd && mkdir /run/systemd/ask-password &&
	exec setsid "$@" </dev/null' sh "${CMD[@]}" >nosd.out 2>nosd.err && st=0 || st=$?
[ "$st" != 0 ] && [ "$st" != 124 ] || problem "without systemd and a terminal: exit $st, expected a failure at once: $(cat nosd.err)"
[ $(($(date +%s) - t0)) -le 10 ] || problem "without systemd the command waited $(($(date +%s) - t0)) s"
grep -q 'no terminal' nosd.err || problem "without systemd: not the 'no terminal' error: $(cat nosd.err)"

# ---- 7. systemd runs the machine, but systemd did not start us: no agent ------------------
t0=$(date +%s)
timeout 30 nsenter -t "$NS_PID" -m setsid env -u INVOCATION_ID "${CMD[@]}" </dev/null >noinv.out 2>noinv.err && st=0 || st=$?
[ "$st" != 0 ] && [ "$st" != 124 ] || problem "not a systemd service, no terminal: exit $st, expected a failure at once: $(cat noinv.err)"
[ $(($(date +%s) - t0)) -le 10 ] || problem "not a systemd service: the command waited $(($(date +%s) - t0)) s"
grep -q 'no terminal' noinv.err || problem "not a systemd service: not the 'no terminal' error: $(cat noinv.err)"
ask_dir_empty "after a command systemd did not start"

check_problems
note "password agents: asked with the protocol's keys, answered, retried, cancelled, timed out, SIGTERMed; no question left behind"
exit 0
