#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A socket file the daemon publishes (the NBD export and the control
# socket) accepts connections as soon as it exists: clients that wait for
# the file, as scripts and unit files do, must never get "Connection
# refused".  strace stretches the gap between bind(2) and listen(2) to
# 1.5 s; a poller connects the moment each file appears.  Afterwards no
# temporary socket name is left in the runtime directory.
. "$(dirname "$0")/functions.bash"
requires strace python3 nbdinfo

new_volume vol.img key
# (LeakSanitizer cannot run under ptrace: an ASan build checks leaks elsewhere)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o /dev/null -e trace=listen -e inject=listen:delay_enter=1500000 \
	"$BLOCKCRYPT" attach vol.img --key-file key --foreground >fg.out 2>fg.log &
pid=$!
# (strace -o FILE PROG ignores SIGTERM: stop the daemon it traces)
cleanup_fn "pkill -TERM -P $pid 2>/dev/null; timeout 30 tail --pid=$pid -f /dev/null; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null"

python3 - "$BLOCKCRYPT_RUN_DIR/vol.sock" "$BLOCKCRYPT_RUN_DIR/vol.ctl" <<'PY' || fail "a published socket refused a connection: $(cat fg.log)"
import os, socket, sys, time
pending, deadline = list(sys.argv[1:]), time.monotonic() + 30
while pending and time.monotonic() < deadline:
    for path in list(pending):
        if not os.path.exists(path):
            continue
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            print("  %s exists but connect failed: %s" % (path, e), file=sys.stderr)
            sys.exit(1)
        finally:
            s.close()
        pending.remove(path)
    time.sleep(0.0005)
if pending:
    print("  never appeared: %s" % pending, file=sys.stderr)
    sys.exit(1)
PY
nbdinfo --size "$(nbd_uri vol)" >/dev/null || fail "the export does not answer"
left=$(find "$BLOCKCRYPT_RUN_DIR" -name 'vol.*.*' -o -name '*.sock.*' -o -name '*.ctl.*')
[ -z "$left" ] || fail "temporary socket names left behind: $left"
bc detach vol 2>detach.err || fail "detach failed: $(cat detach.err)"
wait "$pid" || fail "attach --foreground exited with $? after detach: $(cat fg.log)"
exit 0
