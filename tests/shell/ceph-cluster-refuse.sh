#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/ceph/cluster.sh refuses what would start a wrong cluster, with one
# line and exit 1, starting nothing and leaving DIR as it was:
# - a DIR that is not empty (ceph-mon --mkfs does nothing, silently, on a
#   mon directory that is not empty, so a reused DIR would run old state
#   with a new config);
# - a bad --osd-size or --client-timeout.
# And `stop` of a DIR with nothing running is a harmless no-op.
. "$(dirname "$0")/functions.bash"
requires ceph-mon ceph-mgr ceph-osd ceph rbd

mkdir old
# (A start that went ahead anyway must not outlive the test.)
cleanup_fn "$(printf '%q stop %q' "$CEPH_CLUSTER" "$TEST_TMP/old")"
echo "an old cluster" >old/leftover
expect_exit 1 "$CEPH_CLUSTER" start old
[[ $ERR == *"is not empty"* ]] || problem "non-empty DIR: message does not say so: $ERR"
[ "$(files_except old '^leftover$')" = "" ] || problem "start in a non-empty DIR wrote into it: $(ls -A old)"
[ "$(cat old/leftover)" = "an old cluster" ] || problem "start in a non-empty DIR changed its file"

expect_exit 1 "$CEPH_CLUSTER" start new --osd-size 12X
[[ $ERR == *"--osd-size 12X"* ]] || problem "bad --osd-size: $ERR"
expect_exit 1 "$CEPH_CLUSTER" start new --osd-size 100M
[[ $ERR == *"at least 1G"* ]] || problem "too small --osd-size: $ERR"
expect_exit 1 "$CEPH_CLUSTER" start new --client-timeout 0
[[ $ERR == *"--client-timeout 0"* ]] || problem "bad --client-timeout: $ERR"
[ ! -e new ] || problem "a refused start left $TEST_TMP/new behind"
expect_exit 1 "$CEPH_CLUSTER" frobnicate
[[ $ERR == *usage* ]] || problem "unknown subcommand: $ERR"

left=$(pgrep -af -- "$TEST_TMP/" | grep ceph || true)
[ -z "$left" ] || problem "a refused start left processes: $left"

"$CEPH_CLUSTER" stop "$TEST_TMP/none" || problem "stop of a missing DIR failed"
"$CEPH_CLUSTER" stop old || problem "stop of a DIR with nothing running failed"
check_problems
