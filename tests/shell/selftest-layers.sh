#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The modules depend on each other only downwards, as README.md's layers
# block says: scripts/check-layers.py proves it for #include lines and, on
# the built tree, for the symbols each object file links to.  Prove the
# checker passes here and fails on an injected include cycle, on a call
# through a hand-written prototype (a link edge with no #include), on an
# #include of nothing, and on rules that are themselves a cycle.
. "$(dirname "$0")/functions.bash"
requires python3 git nm cc

TOP=$(cd "$TESTS_DIR/.." && pwd)
CHECK="$TOP/scripts/check-layers.py"

# The build tree of the binary under test (meson: BUILD/src/blockcrypt).
build=$(dirname "$(readlink -f "$BLOCKCRYPT")")
while [ "$build" != / ] && [ ! -d "$build/meson-private" ]; do build=$(dirname "$build"); done
[ -d "$build/meson-private" ] || fail "no meson build tree above $BLOCKCRYPT"

python3 "$CHECK" --root "$TOP" --build "$build" >out 2>&1 || { cat out >&2; fail "the tree breaks its layers"; }
grep -q 'no edge against the rules ([0-9]* object files checked)' out || fail "no summary: $(cat out)"

# A copy of the tracked sources to break.
mkdir tree
(cd "$TOP" && git ls-files -co --exclude-standard -- README.md include lib src tokens |
	while read -r f; do [ -f "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$TEST_TMP/tree")
git -C tree init -q && git -C tree add -A
python3 "$CHECK" --root tree >out 2>&1 || { cat out >&2; fail "the copy does not pass"; }

# 1. An include from the bottom module of a header higher up.
header=$(git -C tree ls-files 'lib/*.h' | grep -v '^lib/core/' | head -1)
[ -n "$header" ] || fail "no header outside lib/core"
low=$(git -C tree ls-files 'lib/core/*.c' | head -1)
cp "tree/$low" low.orig
echo "#include \"${header#lib/}\"" >>"tree/$low"
if python3 "$CHECK" --root tree >out 2>&1; then fail "an include cycle passed"; fi
grep -q "^check-layers: $low:[0-9]*: lib/core -> $(dirname "$header") is not allowed" out ||
	fail "unexpected message for the include: $(cat out)"
cp low.orig "tree/$low"

# 2. An #include that resolves to nothing tracked.
echo '#include "core/no_such_header.h"' >>"tree/$low"
if python3 "$CHECK" --root tree >out 2>&1; then fail "an unknown include passed"; fi
grep -q 'core/no_such_header.h" is no tracked file' out || fail "unexpected message: $(cat out)"
cp low.orig "tree/$low"

# 3. A link edge without an include: an object of lib/core that calls a
#    function an object of lib/volume defines, in a meson-shaped build tree.
vol=$(git -C tree ls-files 'lib/volume/*.c' | head -1)
[ -n "$vol" ] || fail "no source in lib/volume"
mkdir -p fake/lib.a.p
echo 'int bc_layers_probe(void); int bc_layers_caller(void) { return bc_layers_probe(); }' >caller.c
echo 'int bc_layers_probe(void) { return 1; }' >callee.c
cc -c caller.c -o "fake/lib.a.p/$(echo "$low" | tr / _).o"
cc -c callee.c -o "fake/lib.a.p/$(echo "$vol" | tr / _).o"
if python3 "$CHECK" --root tree --build fake >out 2>&1; then fail "a link edge upwards passed"; fi
grep -q "^check-layers: $low: lib/core -> lib/volume is not allowed (links to bc_layers_probe)" out ||
	fail "unexpected message for the link: $(cat out)"

# 4. Rules that are a cycle themselves.
sed -i 's|^lib/core:.*|lib/core: lib/engine|' tree/README.md
if python3 "$CHECK" --root tree >out 2>&1; then fail "cyclic rules passed"; fi
grep -q 'the rules have a cycle: lib/core -> lib/engine -> lib/core' out ||
	fail "unexpected message for the rules: $(cat out)"
