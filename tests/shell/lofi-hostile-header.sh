#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Damaged, truncated and hostile CFLOFI headers (and key/cipher mismatches)
# are refused by `cat` and `write --type lofi` with a one-line error and
# the documented exit code (blockcrypt-lofi(7), README "Exit codes"), and
# the image is byte-identical afterwards.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 dd
requires_python_cryptography
LOFI="/usr/bin/python3 $TESTS_DIR/oracle/lofi.py"

random_file key.bin 32
random_file plain.raw $((256 * 1024))
$LOFI create --key-file key.bin plain.raw good.img
bc cat --type lofi --key-file key.bin good.img >/dev/null || fail "the good image does not open"

# poke IMG OFFSET HEX: overwrite bytes of the header (OFFSET from byte 8192).
poke() {
	printf '%b' "$(printf '%s' "$3" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek=$((8192 + $2)) conv=notrunc status=none
}

refused() { # CODE NAME [extra blockcrypt options]: IMG=NAME.img must be refused
	local code=$1 img=$2.img before; shift 2
	before=$(sha "$img")
	expect_exit "$code" bc cat --type lofi --key-file key.bin "$@" "$img"
	case "$ERR" in *lofi*) ;; *) problem "$img: error does not say lofi: $ERR" ;; esac
	note "$img: $ERR"
	expect_exit "$code" bc write --type lofi --key-file key.bin "$@" "$img" <plain.raw
	[ "$(sha "$img")" = "$before" ] || problem "$img: refused, but the image changed"
}

cp good.img nomagic.img; poke nomagic.img 0 000000000000
refused 4 nomagic
cp good.img zeroed.img; dd if=/dev/zero of=zeroed.img bs=512 seek=16 count=1 conv=notrunc status=none
refused 4 zeroed
cp good.img magic-case.img; poke magic-case.img 0 63666c6f6669   # "cflofi"
refused 4 magic-case
cp good.img version1.img; poke version1.img 6 0001
refused 11 version1
cp good.img version256.img; poke version256.img 6 0100
refused 11 version256
cp good.img reserved.img; poke reserved.img 50 01
refused 11 reserved
cp good.img pad.img; poke pad.img 511 ff
refused 11 pad
cp good.img sector0.img; poke sector0.img 104 00000000
refused 4 sector0
cp good.img sector15.img; poke sector15.img 104 0000000f
refused 4 sector15
cp good.img sectormax.img; poke sectormax.img 104 ffffffff
refused 5 sectormax
size=$(stat -c %s good.img)
cp good.img sectorend.img; poke sectorend.img 104 "$(printf '%08x' $((size / 512)))"
refused 5 sectorend
head -c 8600 good.img >truncated.img
refused 5 truncated
head -c 8192 good.img >noheader.img
refused 5 noheader
cp good.img oddsize.img; printf 'x' >>oddsize.img
refused 4 oddsize
# Key and cipher mismatches: refused before the image is read.
cp good.img keysize.img
refused 2 keysize --cipher aes-128-cbc
refused 2 keysize --key-size 192
refused 2 keysize --cipher aes-xts-plain64
head -c 20 key.bin >key20.bin
before=$(sha keysize.img)
expect_exit 2 bc cat --type lofi --key-file key20.bin keysize.img
[ "$(sha keysize.img)" = "$before" ] || problem "keysize.img changed"
expect_exit 2 bc cat --type lofi --key-file key.bin --sector-size 4096 keysize.img
expect_exit 2 bc cat --type lofi --key-file key.bin --offset 16 keysize.img
expect_exit 2 bc cat --type plain --cipher aes-256-cbc --key-size 128 --key-file key.bin keysize.img
expect_exit 11 bc format --type lofi --batch --key-file key.bin keysize.img
[ "$(sha keysize.img)" = "$before" ] || problem "keysize.img changed"

check_problems
