#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A passphrase prompt ended by Ctrl-C (SIGINT through the terminal),
# SIGTERM or SIGHUP puts the terminal back as it was: echo on.  The
# command dies of that signal (as a shell expects), changes nothing, and
# leaves no daemon.  Driven on a pseudo-terminal that becomes the
# command's controlling terminal.  Under nohup (SIGHUP ignored on entry)
# SIGHUP stays ignored at the prompt, as the user asked.
. "$(dirname "$0")/functions.bash"
new_volume vol.img key
BEFORE=$(sha vol.img)
for how in ctrl-c SIGTERM SIGHUP nohup; do
	for cmd in "cat vol.img" "attach vol.img" "add-key vol.img"; do
		/usr/bin/python3 - "$how" "$BLOCKCRYPT" $cmd >pty.out 2>pty.err <<'PY' || fail "$how, $cmd: $(cat pty.err)"
import fcntl, os, signal, subprocess, sys, termios, time
how, argv = sys.argv[1], sys.argv[2:]
master, slave = os.openpty()
def ctty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # What the command finds on entry does not depend on who runs the
    # test (a CI job under nohup ignores SIGHUP): default, except the
    # nohup case's SIGHUP.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    if how == "nohup":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
p = subprocess.Popen(argv, stdin=slave, stdout=subprocess.DEVNULL, stderr=slave,
                     preexec_fn=ctty, close_fds=True)
seen = b""
deadline = time.time() + 20
while b"assphrase" not in seen:
    if time.time() > deadline or p.poll() is not None:
        sys.exit("no passphrase prompt (exit %s): %r" % (p.poll(), seen))
    try:
        seen += os.read(master, 1024)
    except OSError:
        time.sleep(0.05)
time.sleep(0.2)
if termios.tcgetattr(slave)[3] & termios.ECHO:
    sys.exit("echo was not off at the prompt: the check below would prove nothing")
if how == "ctrl-c":
    os.write(master, b"\x03")        # the line discipline sends SIGINT
elif how == "nohup":
    p.send_signal(signal.SIGHUP)     # ignored: the prompt must go on
    time.sleep(1)
    if p.poll() is not None:
        sys.exit("SIGHUP ignored on entry ended the prompt (exit %s)" % p.poll())
    if termios.tcgetattr(slave)[3] & termios.ECHO:
        sys.exit("echo came back on after an ignored SIGHUP")
    how = "SIGTERM"
    p.send_signal(signal.SIGTERM)
else:
    p.send_signal(getattr(signal, how))
try:
    rc = p.wait(timeout=20)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("still running 20 s after %s" % how)
want = -(signal.SIGINT if how == "ctrl-c" else getattr(signal, how))
if rc != want:
    sys.exit("exit status %d, expected death by signal %d" % (rc, -want))
if not termios.tcgetattr(slave)[3] & termios.ECHO:
    sys.exit("the terminal was left with echo off")
print("ok")
PY
		grep -qx ok pty.out || fail "$how, $cmd: the check did not run to its end"
	done
done
[ "$(sha vol.img)" = "$BEFORE" ] || fail "an interrupted command changed the volume"
[ -z "$(bc list)" ] || fail "an interrupted attach left a volume attached"
exit 0
