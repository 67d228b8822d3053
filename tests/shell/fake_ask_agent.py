# SPDX-License-Identifier: GPL-2.0-or-later
# fake_ask_agent.py DIR OUT ANSWER...: a fake systemd password agent.  Each new DIR/ask.*
# question is parsed, and gets the next ANSWER ("+TEXT", "-", or "none":
# no answer) from root, after a try from nobody (uid 65534).  The record
# of each question goes to OUT (JSON) at the end; OUT.asked is made at the
# first question.  After each question, waits up to 15 s for its file and
# socket to go.  Gives up 60 s after the start.
import configparser, json, os, socket, stat, sys, time
d, out, answers = sys.argv[1], sys.argv[2], sys.argv[3:]
seen, records = set(), []
open(out + ".ready", "w").close()
deadline = time.time() + 60
while answers and time.time() < deadline:
    for f in sorted(os.listdir(d)):
        if not f.startswith("ask.") or f in seen or not answers:
            continue
        seen.add(f)
        p = os.path.join(d, f)
        cp = configparser.ConfigParser(interpolation=None)
        cp.optionxform = str
        try:
            with open(p) as fh:
                cp.read_string(fh.read())
            mode = stat.S_IMODE(os.stat(p).st_mode)
        except FileNotFoundError:
            continue
        rec = {"file": f, "ask": dict(cp["Ask"]) if "Ask" in cp else {}, "mode": oct(mode),
               "mono": time.monotonic(), "others": sorted(x for x in os.listdir(d) if x != f)}
        sock = rec["ask"].get("Socket", "")
        try:
            st = os.stat(sock)
            rec["sock_mode"], rec["sock_is_socket"] = oct(stat.S_IMODE(st.st_mode)), stat.S_ISSOCK(st.st_mode)
        except OSError as e:
            rec["sock_error"] = repr(e)
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(65534)
                os.setuid(65534)
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"+from nobody", sock)
                os._exit(0)
            except PermissionError:
                os._exit(13)
            except BaseException:
                os._exit(1)
        rec["nobody_send"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        a = answers.pop(0)
        rec["answer"] = a
        open(out + ".asked", "w").close()
        if a != "none":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.sendto(a.encode(), sock)
            s.close()
        end = time.time() + 15
        while (os.path.exists(p) or os.path.exists(sock)) and time.time() < end:
            time.sleep(0.02)
        rec["gone"] = not os.path.exists(p) and not os.path.exists(sock)
        rec["left"] = sorted(os.listdir(d))
        records.append(rec)
    time.sleep(0.02)
with open(out, "w") as fh:
    json.dump(records, fh)
