#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# libblockcrypt.so exports the public API and nothing else: its defined
# dynamic symbols (nm -D) are exactly the functions include/blockcrypt.h
# declares, every one under the version node of lib/libblockcrypt.sym, and
# its soname is libblockcrypt.so.N.  A function added to the header but
# not to the version script, or an internal (bci_*) function leaking out,
# fails here.  The installed header compiles on its own (with only the
# generated blockcrypt-version.h beside it).
. "$(dirname "$0")/functions.bash"
requires nm readelf cc

TOP=$(cd "$TESTS_DIR/.." && pwd)
build=$(dirname "$(readlink -f "$BLOCKCRYPT")")
while [ "$build" != / ] && [ ! -d "$build/meson-private" ]; do build=$(dirname "$build"); done
[ -d "$build/meson-private" ] || fail "no meson build tree above $BLOCKCRYPT"
lib=$build/libblockcrypt.so
[ -e "$lib" ] || fail "no $lib"

# The functions the header declares: every "bc_NAME(" (function pointer
# types and struct members are "(*name)(", so they do not match).
grep -oE '\bbc_[a-z0-9_]+[[:space:]]*\(' "$TOP/include/blockcrypt.h" | tr -d ' \t(' | sort -u >header.list
[ "$(wc -l <header.list)" -ge 50 ] || fail "found only $(wc -l <header.list) functions in include/blockcrypt.h"

# What the library defines for other objects: "ADDR TYPE NAME@@NODE"; the
# version node itself is an absolute (A) symbol.
nm -D --defined-only "$lib" >nm.out || fail "nm -D $lib failed"
awk '$2 != "A" { print $3 }' nm.out >exported.raw
sed 's/@.*//' exported.raw | sort -u >exported.list
diff -u header.list exported.list >diff.out ||
	fail "the exported symbols differ from include/blockcrypt.h's functions (- header only, + exported only; a new function needs its line in lib/libblockcrypt.sym, an internal one must not be exported):
$(cat diff.out)"
grep -v '@@BLOCKCRYPT_' exported.raw >unversioned.out &&
	problem "exported without a BLOCKCRYPT_* version: $(tr '\n' ' ' <unversioned.out)"
awk '$2 != "T" && $2 != "A"' nm.out >nottext.out
[ -s nottext.out ] && problem "exported symbols that are not functions: $(tr '\n' ' ' <nottext.out)"

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname =~ ^libblockcrypt\.so\.[0-9]+$ ]] || problem "soname is '$soname', not libblockcrypt.so.N"
[ "$(readlink "$lib")" = "$soname" ] || problem "libblockcrypt.so links to '$(readlink "$lib")', not the soname $soname"

# The public header stands alone: blockcrypt.h and the generated version
# header copied side by side, as installed.
mkdir inc
cp "$TOP/include/blockcrypt.h" "$build/include/blockcrypt-version.h" inc/
printf '#include <blockcrypt.h>\n#if !BC_VERSION_CHECK(0, 0, 0)\n#error BC_VERSION_CHECK\n#endif\n' >alone.c
cc -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -I inc alone.c >cc.out 2>&1 ||
	problem "blockcrypt.h does not compile on its own: $(cat cc.out)"
check_problems
