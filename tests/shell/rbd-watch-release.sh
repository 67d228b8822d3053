#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A one-shot command on an RBD image (dump, cat, add-key) closes the image
# before it exits, so it leaves no watch on it.  A watch left behind by a
# client that is gone stays until the OSD times it out (30 s), and every
# lock request and header notification of the next client waits 5 s for
# the dead watcher's answer: a second attach is then refused after ~6 s,
# not at once, and back-to-back key operations take ~12 s instead of ~2 s.
. "$(dirname "$0")/functions.bash"
requires timeout
requires_ceph
. "$TESTS_DIR/shell/rbd-lib.bash"

# watchers IMAGE: the Ceph addresses watching IMAGE, sorted, one a line.
watchers() {
	timeout 60 rbd status --format json "$CEPH_POOL/$1" |
		/usr/bin/python3 -c 'import json,sys; print("\n".join(sorted(w["address"] for w in json.load(sys.stdin)["watchers"])))'
}

printf 'watch passphrase' >key
printf 'second passphrase' >key2
img=$(ceph_image_name watch)
spec=$(rbd_spec "$img")
rbd_new_volume "$img" key
for cmd in "dump $spec" "cat $spec --key-file key" "add-key $spec --key-file key --new-key-file key2 --batch ${FAST_KDF[*]}"; do
	watchers "$img" >before
	# shellcheck disable=SC2086 # the command's words
	timeout 120 "$BLOCKCRYPT" $cmd >/dev/null 2>cmd.err || fail "${cmd%% *} failed: $(cat cmd.err)"
	watchers "$img" >after
	left=$(comm -13 before after | tr '\n' ' ')
	[ -z "$left" ] || problem "${cmd%% *} exited and left a watch on the image: $left"
done
check_problems
