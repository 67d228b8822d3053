#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The install layout.  `meson install --destdir --no-rebuild` of the build
# under test puts exactly the expected files (below, relative to the
# prefix the build was configured with) and nothing outside the prefix:
# the command, the shared library (libblockcrypt.so.0, its links, its
# pkg-config file) and the public headers, the generator where systemd
# looks for generators, the units in systemd's unit directory, the token
# plugin in LIBDIR/cryptsetup, the man pages made from docs/*.md (man5,
# man7, man8), the Markdown docs, the bash completion.  A second build
# configured with --prefix=/opt/bc puts all of them under /opt/bc (the
# units naming /opt/bc/sbin/blockcrypt, the generator linking
# /opt/bc/lib/systemd/system/blockcrypt.target, blockcrypt.pc saying
# prefix=/opt/bc, the command and the generator linking libblockcrypt.so.0
# with /opt/bc's LIBDIR as their RUNPATH); the directory options override
# the defaults.
# (install-pkgconfig.sh builds a program against the installed library.)
. "$(dirname "$0")/functions.bash"
requires meson ninja python3 strings git readelf

. "$TESTS_DIR/shell/install-lib.bash"
TOP=$(cd "$TESTS_DIR/.." && pwd)

# expected PREFIX BUILD: the files a build installs, relative to PREFIX.
expected() {
	local libdir sbindir datadir mandir includedir version
	libdir=$(opt "$2" libdir) sbindir=$(opt "$2" sbindir) datadir=$(opt "$2" datadir) mandir=$(opt "$2" mandir)
	includedir=$(opt "$2" includedir)
	version=$(meson introspect "$2" --projectinfo | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
	sort <<EOF
$sbindir/blockcrypt
$libdir/libblockcrypt.so
$libdir/libblockcrypt.so.0
$libdir/libblockcrypt.so.$version
$libdir/pkgconfig/blockcrypt.pc
$includedir/blockcrypt.h
$includedir/blockcrypt-version.h
lib/systemd/system-generators/blockcrypt-generator
lib/systemd/system/blockcrypt.target
lib/systemd/system/blockcrypt@.service
lib/systemd/system/blockcrypt-all.service
$libdir/cryptsetup/libcryptsetup-token-blockcrypt-pkcs11.so
$mandir/man5/blockcrypttab.5
$mandir/man7/blockcrypt-lofi.7
$mandir/man7/blockcrypt-rbd.7
$mandir/man8/blockcrypt-generator.8
$mandir/man8/blockcrypt.8
$datadir/doc/blockcrypt/blockcrypt-generator.8.md
$datadir/doc/blockcrypt/blockcrypt-lofi.7.md
$datadir/doc/blockcrypt/blockcrypt-rbd.7.md
$datadir/doc/blockcrypt/blockcrypt.8.md
$datadir/doc/blockcrypt/blockcrypttab.5.md
$datadir/doc/blockcrypt/blockcrypttab.example
$datadir/bash-completion/completions/blockcrypt
EOF
}
# installed DESTDIR PREFIX: every file under DESTDIR, relative to PREFIX;
# a file outside PREFIX is a failure.
installed() {
	local f
	(cd "$1" && find . ! -type d | sed 's|^\.||' | sort) >all.list
	[ -s all.list ] || fail "nothing installed under $1"
	while read -r f; do
		case $f in
		"$2"/*) echo "${f#"$2"/}" ;;
		*) problem "installed outside the prefix $2: $f" ;;
		esac
	done <all.list
	check_problems
}
same_list() { # WHAT EXPECTED ACTUAL
	diff -u "$2" "$3" >list.diff || fail "$1: the installed files differ from the expected list (- expected, + installed):
$(cat list.diff)"
}

# ---- the build under test, as configured --------------------------------------
prefix=$(opt "$BUILD" prefix)
case $prefix in /*) ;; *) fail "cannot read the prefix of $BUILD (got '$prefix')" ;; esac
install_build_under_test "$TEST_TMP/dest"
case $prefix in
/usr)
	# pkg-config's own prefix: systemd's and libcryptsetup's directories as
	# they are, which on Debian 12 are under /lib (merged /usr), not /usr.
	note "prefix /usr: checking the layout of the --prefix=/opt/bc build only"
	;;
*)
	expected "$prefix" "$BUILD" >expected.list
	installed "$TEST_TMP/dest" "$prefix" >installed.list
	same_list "meson install of $BUILD (prefix $prefix)" expected.list installed.list
	;;
esac
# No hand-written path of the default prefix survives anywhere in the tree.
rc=0
(cd "$TOP" && git grep -n '/usr/local' -- meson.build meson_options.txt 'src/*meson.build' data docs) >usrlocal.out 2>&1 || rc=$?
case $rc in
0) fail "/usr/local is hard-coded: $(cat usrlocal.out)" ;;
1) ;;
*) fail "git grep failed (exit $rc): $(cat usrlocal.out)" ;;
esac

# ---- a second build, --prefix=/opt/bc -------------------------------------------
meson setup --prefix=/opt/bc "$TEST_TMP/b2" "$TOP" >setup.out 2>&1 || fail "meson setup --prefix=/opt/bc failed: $(tail -20 setup.out)"
# Build what is installed only (not the tests and benchmarks), one job at a time.
meson introspect "$TEST_TMP/b2" --targets |
	python3 -c 'import json, os, sys; [print(os.path.relpath(f, sys.argv[1])) for t in json.load(sys.stdin) if t["installed"] for f in t["filename"]]' "$TEST_TMP/b2" \
	>targets.list && [ -s targets.list ] || fail "meson introspect --targets listed no installed target"
mapfile -t targets <targets.list
nice ninja -j1 -C "$TEST_TMP/b2" "${targets[@]}" >ninja2.out 2>&1 || fail "building the /opt/bc tree failed: $(tail -20 ninja2.out)"
meson install -C "$TEST_TMP/b2" --destdir "$TEST_TMP/dest2" --no-rebuild >install2.out 2>&1 ||
	fail "meson install of the /opt/bc tree failed: $(tail -20 install2.out)"
expected /opt/bc "$TEST_TMP/b2" >expected2.list
installed "$TEST_TMP/dest2" /opt/bc >installed2.list
same_list "meson install --prefix=/opt/bc" expected2.list installed2.list
D=$TEST_TMP/dest2/opt/bc
for u in blockcrypt@.service blockcrypt-all.service; do
	grep -q '^ExecStart=/opt/bc/sbin/blockcrypt ' "$D/lib/systemd/system/$u" || problem "$u does not run /opt/bc/sbin/blockcrypt: $(grep ^ExecStart "$D/lib/systemd/system/$u")"
done
for u in blockcrypt@.service blockcrypt-all.service blockcrypt.target; do
	[ "$(sed -n 's/^Documentation=//p' "$D/lib/systemd/system/$u")" = 'man:blockcrypt(8) man:blockcrypttab(5)' ] ||
		problem "$u: Documentation= is '$(sed -n 's/^Documentation=//p' "$D/lib/systemd/system/$u")'"
done
strings "$D/lib/systemd/system-generators/blockcrypt-generator" >generator.strings
grep -qx '/opt/bc/lib/systemd/system/blockcrypt.target' generator.strings ||
	problem "the generator does not link /opt/bc/lib/systemd/system/blockcrypt.target"
libdir2=$(opt "$TEST_TMP/b2" libdir)
grep -qx 'prefix=/opt/bc' "$D/$libdir2/pkgconfig/blockcrypt.pc" ||
	problem "blockcrypt.pc of the /opt/bc install does not say prefix=/opt/bc"
# The programs link libblockcrypt.so.0 and find it under the prefix (their
# RUNPATH: /opt/bc is no place the dynamic linker looks by itself).
for p in sbin/blockcrypt lib/systemd/system-generators/blockcrypt-generator; do
	readelf -d "$D/$p" >dyn.out || { problem "readelf -d $p failed"; continue; }
	grep -q 'NEEDED.*\[libblockcrypt\.so\.0\]' dyn.out || problem "$p does not link libblockcrypt.so.0"
	grep -q "RUNPATH.*\[/opt/bc/$libdir2\]" dyn.out ||
		problem "$p: RUNPATH is not /opt/bc/$libdir2: $(grep -E 'RPATH|RUNPATH' dyn.out)"
done
# ... and run with the library installed beside them.
got=$(LD_LIBRARY_PATH=$D/$libdir2 "$D/sbin/blockcrypt" --version 2>&1) ||
	problem "the installed blockcrypt does not run with its installed library: $got"
[[ $got == "blockcrypt "* ]] || problem "the installed blockcrypt --version says '$got'"
grep -rl '/usr/local' "$D" >usrlocal2.out && problem "/usr/local in files of the /opt/bc install: $(cat usrlocal2.out)"
check_problems

# ---- the options name the directories outright (configure only) ----------------
meson setup --prefix=/opt/bc -Dsystemd_unit_dir=/x/units -Dsystemd_generator_dir=/x/gen \
	-Dtoken_plugin_dir=/x/tokens "$TEST_TMP/b3" "$TOP" >setup3.out 2>&1 || fail "meson setup with directory options failed: $(tail -20 setup3.out)"
meson introspect "$TEST_TMP/b3" --installed | python3 -c 'import json, sys; print(*sorted(json.load(sys.stdin).values()), sep="\n")' >b3.list
for f in /x/units/blockcrypt@.service /x/units/blockcrypt-all.service /x/units/blockcrypt.target \
	/x/gen/blockcrypt-generator /x/tokens/libcryptsetup-token-blockcrypt-pkcs11.so; do
	grep -qx "$f" b3.list || problem "with the directory options, $f is not installed: $(cat b3.list)"
done
check_problems
