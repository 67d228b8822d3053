#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The mutation catalog (tests/mutation/mutations.toml) plants its bugs by
# exact text edits.  A refactor that moves or rewrites guarded code makes
# an entry stale, and a renamed test leaves an entry guarded by nothing;
# `mutate.py --check` finds both without building.  Prove it passes on the
# tree and fails on a stale find text and on a missing test.
. "$(dirname "$0")/functions.bash"
requires python3

MUTATE="$TESTS_DIR/mutation/mutate.py"

python3 "$MUTATE" --check >out 2>&1 || { cat out >&2; fail "the catalog does not match the tree"; }
grep -q 'catalog entries match the tree' out || fail "no summary from --check: $(cat out)"

# A stale entry: its find text no longer occurs.
cat >stale.toml <<'TOML'
[[mutation]]
name = "stale-entry"
why = "checker self-test"
file = "lib/core/error.c"
find = "this text is in no source file"
replace = "x"
tests = ["unit-secret"]
TOML
if python3 "$MUTATE" --check --catalog stale.toml >out 2>&1; then
	fail "--check accepted a stale find text"
fi
grep -q "stale-entry: 'find' occurs 0 times" out || fail "unexpected message: $(cat out)"

# An entry guarded by a test that does not exist (its find text is the
# first line of a real source file, so only the test name is wrong).
file=lib/core/error.c
first=$(head -1 "$TESTS_DIR/../$file")
[ -n "$first" ] || fail "cannot read $file"
cat >missing.toml <<TOML
[[mutation]]
name = "missing-test"
why = "checker self-test"
file = "$file"
find = '''$first'''
replace = "x"
tests = ["no-such-test.sh"]
TOML
if python3 "$MUTATE" --check --catalog missing.toml >out 2>&1; then
	fail "--check accepted a test that does not exist"
fi
grep -q "missing-test: names test no-such-test.sh, which does not exist" out ||
	fail "unexpected message: $(cat out)"
