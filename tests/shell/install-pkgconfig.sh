#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The library as a user gets it.  The build under test is installed into a
# DESTDIR; tests/install/read_volume.c is compiled with nothing but
# `pkg-config --cflags --libs blockcrypt` (PKG_CONFIG_PATH and
# PKG_CONFIG_SYSROOT_DIR pointing into the DESTDIR), needs
# libblockcrypt.so.0 (readelf -d: NEEDED, no RPATH), and, run with the
# installed library (LD_LIBRARY_PATH), reads a LUKS2 volume that
# cryptsetup made and the python oracle filled: the bytes must be what the
# oracle encrypted.  BC_VERSION_* of the installed header and bc_version()
# say meson's project version; a wrong key exits 3 with a one-line message.
. "$(dirname "$0")/functions.bash"
requires meson ninja python3 pkg-config cc readelf ldd cryptsetup
requires_python_cryptography
. "$TESTS_DIR/shell/install-lib.bash"

DEST=$TEST_TMP/dest
install_build_under_test "$DEST"
version=$(meson introspect "$BUILD" --projectinfo | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')

# ---- build a program against the installed .pc ----------------------------------
find "$DEST" -name blockcrypt.pc >pc.list
[ "$(wc -l <pc.list)" = 1 ] || fail "expected one blockcrypt.pc under the DESTDIR, found: $(cat pc.list)"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$(cat pc.list)")
export PKG_CONFIG_SYSROOT_DIR=$DEST
[ "$(pkg-config --modversion blockcrypt)" = "$version" ] ||
	problem "pkg-config --modversion blockcrypt is '$(pkg-config --modversion blockcrypt)', not $version"
flags=$(pkg-config --cflags --libs blockcrypt) || fail "pkg-config --cflags --libs blockcrypt failed"
case $flags in *"-I$DEST/"*"-L$DEST/"*) ;; *) fail "pkg-config does not point into the DESTDIR: $flags" ;; esac
libdir=$(pkg-config --variable=libdir blockcrypt) # the sysroot prepended
[ -e "$libdir/libblockcrypt.so.0" ] || fail "no libblockcrypt.so.0 in $libdir"
# shellcheck disable=SC2086 # the flags are words
cc -std=c99 -Wall -Wextra -Werror -o read_volume "$TESTS_DIR/install/read_volume.c" $flags >cc.out 2>&1 ||
	fail "the program does not build against the installed library: $(cat cc.out)"
readelf -d read_volume >dynamic.out
grep -q 'NEEDED.*\[libblockcrypt\.so\.0\]' dynamic.out ||
	problem "read_volume does not need libblockcrypt.so.0: $(grep NEEDED dynamic.out)"
grep -Eq 'RPATH|RUNPATH' dynamic.out && problem "read_volume has a search path of its own: $(grep -E 'RPATH|RUNPATH' dynamic.out)"

export LD_LIBRARY_PATH=$libdir
ldd read_volume >ldd.out
grep -q "libblockcrypt\.so\.0 => $libdir/libblockcrypt\.so\.0 " ldd.out ||
	fail "read_volume does not load the installed library: $(grep blockcrypt ldd.out)"
got=$(./read_volume --version) || fail "read_volume --version failed"
[ "$got" = "$version $version $version" ] ||
	problem "BC_VERSION_MAJOR.MINOR.MICRO, BC_VERSION_STRING, bc_version() are '$got', not $version each"

# ---- a volume made and filled without blockcrypt ---------------------------------
truncate -s 24M vol.img
random_file key 64
cryptsetup luksFormat --type luks2 --batch-mode --key-file key "${FAST_KDF[@]}" \
	--cipher aes-xts-plain64 --key-size 512 --sector-size 4096 vol.img >fmt.out 2>&1 ||
	fail "cryptsetup luksFormat failed: $(cat fmt.out)"
off=$(data_offset vol.img)
random_file plain.bin $((1 << 20))
$ORACLE encrypt --cipher aes-xts-plain64 --key-hex "$(volume_key vol.img key)" --sector-size 4096 plain.bin enc.bin ||
	fail "the oracle could not encrypt"
dd if=enc.bin of=vol.img bs=4096 seek=$((off / 4096)) conv=notrunc status=none
before=$(sha vol.img)

./read_volume vol.img key 0 $((1 << 20)) >out.bin 2>read.err || fail "read_volume failed ($?): $(cat read.err)"
cmp -s out.bin plain.bin || problem "read_volume's data differs from what the oracle encrypted"
./read_volume vol.img key 1000 5000 >part.bin 2>read.err || fail "read_volume of 1000+5000 failed: $(cat read.err)"
head -c 6000 plain.bin | tail -c 5000 | cmp -s - part.bin || problem "bytes 1000..5999 differ"

random_file wrong 64
rc=0
./read_volume vol.img wrong 0 512 >/dev/null 2>wrong.err || rc=$?
[ "$rc" = 3 ] || problem "a wrong key exits $rc, not 3 (BC_EXIT_WRONG_KEY)"
[ "$(wc -l <wrong.err)" = 1 ] && grep -Eq '^read_volume: .+' wrong.err ||
	problem "a wrong key: not one message line: $(cat wrong.err)"
[ "$(sha vol.img)" = "$before" ] || problem "reading changed the backing"
check_problems
