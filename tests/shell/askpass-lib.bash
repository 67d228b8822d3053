# SPDX-License-Identifier: GPL-2.0-or-later
# systemd's password agents, faked (tests/shell/boot-askpass-agent.sh,
# crypttab-attach.sh): askpass_ns starts a private mount namespace whose
# /run/systemd is a tmpfs with system/ and ask-password/ (what systemd
# makes); `ns CMD...` runs CMD in it.  The agent itself is
# fake_ask_agent.py (see its head): run it in the namespace with
#   nsenter -t "$NS_PID" -m python3 "$ASK_AGENT" "$ASK" OUT ANSWER... &
# Commands that should ask it need INVOCATION_ID set (systemd sets it for
# every unit; blockcrypt asks agents only then).
# shellcheck disable=SC2034 # used by the tests that source this file
ASK=/run/systemd/ask-password
# shellcheck disable=SC2034
ASK_AGENT=$TESTS_DIR/shell/fake_ask_agent.py
# shellcheck disable=SC2034 # used by the tests that source this file
INVOCATION=(env INVOCATION_ID=0123456789abcdef0123456789abcdef)

askpass_ns() {
	unshare -m --propagation private sleep 3600 &
	NS_PID=$!
	cleanup_fn "kill $NS_PID 2>/dev/null"
	wait_for 10 eval '[ "$(readlink /proc/$NS_PID/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]' ||
		fail "unshare did not make a mount namespace"
	ns mount -t tmpfs -o mode=0755 bc-test-run /run/systemd || fail "cannot mount a tmpfs on /run/systemd in the namespace"
	ns mkdir /run/systemd/system "$ASK"
	[ -z "$(ns find "$ASK" -mindepth 1)" ] || fail "the namespace's ask directory is not empty"
}
ns() { nsenter -t "$NS_PID" -m "$@"; }
