#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A passphrase prompt on the terminal with --timeout (the tab's timeout=),
# driven on a pseudo-terminal that is the command's controlling terminal:
#   - nothing typed: the command gives up after the timeout (not before,
#     not much later), non-zero, saying so in one line; echo is back on;
#   - the right passphrase typed in time: accepted (cat prints the data);
#     while it was typed, echo was off;
#   - SIGTERM at the prompt: the command dies of SIGTERM, echo back on.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3

VOLUME_SIZE=20M new_volume vol.img key
random_file data 65536
bc write vol.img --key-file key <data 2>write.err || fail "write: $(cat write.err)"

cat >pty.py <<'EOF'
# pty.py HOW INPUT ARGV...: run ARGV on a new pty (its controlling
# terminal); at the passphrase prompt do HOW (wait: nothing; type: type
# INPUT and Enter; term: SIGTERM); print JSON: exit status, seconds from the
# prompt to the exit, echo at the prompt and after, the terminal's output.
import fcntl, json, os, signal, subprocess, sys, termios, time
how, typed, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
master, slave = os.openpty()
def ctty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
out = open("cmd.out", "wb")
p = subprocess.Popen(argv, stdin=slave, stdout=out, stderr=open("cmd.err", "wb"), preexec_fn=ctty, close_fds=True)
os.set_blocking(master, False)
seen, deadline = b"", time.time() + 30
while b"assphrase" not in seen:
    if time.time() > deadline or p.poll() is not None:
        sys.exit("no passphrase prompt (exit %s): %r" % (p.poll(), seen))
    try:
        seen += os.read(master, 1024)
    except BlockingIOError:
        time.sleep(0.02)
prompt_at = time.time()
time.sleep(0.2)
echo_at_prompt = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
if how == "type":
    os.write(master, typed.encode() + b"\n")
elif how == "term":
    p.send_signal(signal.SIGTERM)
try:
    rc = p.wait(60)
except subprocess.TimeoutExpired:
    p.kill()
    rc = "hung"
took = time.time() - prompt_at
try:
    seen += os.read(master, 4096)
except OSError:
    pass
print(json.dumps({"rc": rc, "took": round(took, 2), "echo_at_prompt": echo_at_prompt,
                  "echo_after": bool(termios.tcgetattr(slave)[3] & termios.ECHO),
                  "tty": seen.decode(errors="replace")}))
EOF
field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())[sys.argv[2]])' res.json "$1"; }

# Nothing typed, --timeout 2.
/usr/bin/python3 pty.py wait "" "$BLOCKCRYPT" cat vol.img --timeout 2 >res.json 2>pty.err || fail "pty driver: $(cat pty.err)"
note "no answer: $(cat res.json) stderr: $(cat cmd.err)"
[ "$(field rc)" != 0 ] && [ "$(field rc)" != hung ] || problem "no answer within --timeout 2: exit $(field rc)"
/usr/bin/python3 -c "import sys; sys.exit(0 if 1.5 <= $(field took) <= 8 else 1)" ||
	problem "--timeout 2 gave up after $(field took) s"
[ "$(wc -l <cmd.err)" = 1 ] && grep -qi 'time' cmd.err || problem "the timeout is not one line saying so: $(cat cmd.err)"
[ "$(field echo_at_prompt)" = False ] || problem "echo was on at the prompt"
[ "$(field echo_after)" = True ] || problem "echo is still off after the timeout"
[ ! -s cmd.out ] || problem "cat wrote data without a passphrase"

# The right passphrase, in time.
/usr/bin/python3 pty.py type "$(cat key)" "$BLOCKCRYPT" cat vol.img --timeout 30 >res.json 2>pty.err || fail "pty driver: $(cat pty.err)"
[ "$(field rc)" = 0 ] || problem "the right passphrase with --timeout 30: exit $(field rc): $(cat cmd.err)"
cmp -n 65536 data cmd.out || problem "cat after a typed passphrase did not give the data back"
[ "$(field echo_at_prompt)" = False ] || problem "echo was on while the passphrase was typed"
[ "$(field echo_after)" = True ] || problem "echo is off after the prompt"
! grep -qF "$(cat key)" <<<"$(field tty)" || problem "the passphrase was echoed on the terminal"

# SIGTERM at the prompt.
/usr/bin/python3 pty.py term "" "$BLOCKCRYPT" cat vol.img --timeout 30 >res.json 2>pty.err || fail "pty driver: $(cat pty.err)"
[ "$(field rc)" = -15 ] || problem "SIGTERM at a timed prompt: exit $(field rc), expected death by SIGTERM (-15): $(cat cmd.err)"
[ "$(field echo_after)" = True ] || problem "echo is off after SIGTERM at the prompt"

check_problems
note "terminal prompt with --timeout: gives up in time, takes a typed passphrase, dies of SIGTERM with echo back"
exit 0
