#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves that volumes made by `blockcrypt format` are real LUKS volumes to
# cryptsetup and dm-crypt: luksDump accepts them and shows the requested
# type, cipher, key size, sector size, KDF and label; cryptsetup accepts the
# passphrase and refuses a wrong one; the data `blockcrypt write` stores
# decrypts with the independent oracle and cryptsetup's dumped volume key
# to exactly the bytes written.  Also: format wipes the data area (old
# backing contents gone, the new device reads as zeros), --no-wipe leaves
# it untouched: a fresh sparse file stays all zeros on disk, so blockcrypt
# reads zeros (its zero-ciphertext rule, the oracle's --zero-rule) where
# dm-crypt (the oracle without it) reads pseudo-random bytes.
. "$(dirname "$0")/functions.bash"
requires cryptsetup /usr/bin/python3
requires_python_cryptography

SIZE=$((24 * 1024 * 1024))
printf 'format interop passphrase' >pass
printf 'format interop passphrasE' >wrong

# dump_has NAME REGEX: the saved luksDump output has a line matching REGEX.
dump_has() {
	grep -Eq "$2" dump.txt || fail "$1: cryptsetup luksDump has no line matching '$2'"
}

run_case() { # NAME TYPE CIPHER KEY_BITS SECTOR_SIZE KDF FORMAT-ARGS...
	local name=$1 type=$2 cipher=$3 bits=$4 ssize=$5 kdf=$6 img=$1.img key off n
	shift 6
	note "$name: blockcrypt format $*"
	# Old contents the wipe must destroy.
	random_file "$img" "$SIZE"
	bc format "$img" --batch --key-file pass "$@" 2>bc.err ||
		fail "$name: blockcrypt format failed: $(cat bc.err)"

	# cryptsetup reads the header as what was asked for.
	cryptsetup luksDump "$img" >dump.txt || fail "$name: cryptsetup luksDump failed"
	if [ "$type" = luks1 ]; then
		dump_has "$name" '^Version:[[:space:]]+1$'
		dump_has "$name" "^Cipher name:[[:space:]]+${cipher%%-*}\$"
		dump_has "$name" "^Cipher mode:[[:space:]]+${cipher#*-}\$"
		dump_has "$name" "^MK bits:[[:space:]]+$bits\$"
	else
		dump_has "$name" '^Version:[[:space:]]+2$'
		dump_has "$name" "^[[:space:]]+cipher:[[:space:]]+$cipher\$"
		dump_has "$name" "^[[:space:]]+sector:[[:space:]]+$ssize \\[bytes\\]\$"
		dump_has "$name" "^[[:space:]]+Key:[[:space:]]+$bits bits\$"
		dump_has "$name" "^[[:space:]]+PBKDF:[[:space:]]+$kdf\$"
	fi

	# cryptsetup takes the passphrase, and refuses a wrong one (exit 2).
	cryptsetup open --test-passphrase --key-file pass "$img" ||
		fail "$name: cryptsetup does not accept the passphrase"
	local rc=0
	cryptsetup open --test-passphrase --key-file wrong "$img" 2>/dev/null || rc=$?
	[ "$rc" = 2 ] || fail "$name: cryptsetup open --test-passphrase with a wrong passphrase exited $rc, not 2"

	key=$(volume_key "$img" pass)
	[ "${#key}" = $((bits / 4)) ] || fail "$name: no $bits-bit volume key from cryptsetup (got '$key')"
	off=$(data_offset "$img")
	n=$((SIZE - off))

	# The wiped device reads as zeros: the random old contents are gone.
	bc cat "$img" --key-file pass >cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat failed: $(cat bc.err)"
	head -c "$n" /dev/zero >zero.raw
	cmp cat.raw zero.raw || fail "$name: the freshly formatted device does not read as $n zero bytes"

	# blockcrypt writes, the oracle decrypts with cryptsetup's volume key.
	random_file data.raw "$n"
	bc write "$img" --key-file pass <data.raw 2>bc.err ||
		fail "$name: blockcrypt write failed: $(cat bc.err)"
	$ORACLE decrypt --cipher "$cipher" --key-hex "$key" --sector-size "$ssize" \
		--offset "$off" "$img" oracle.raw
	cmp oracle.raw data.raw || fail "$name: oracle decryption differs from what blockcrypt wrote"
	cryptsetup open --test-passphrase --key-file pass "$img" ||
		fail "$name: cryptsetup no longer accepts the passphrase after blockcrypt write"
}

# NAME TYPE CIPHER KEY_BITS SECTOR KDF -- format arguments
run_case luks2-defaults luks2 aes-xts-plain64 512 4096 argon2id \
	"${FAST_ARGON[@]}" --label interop-label
dump_has luks2-defaults '^Label:[[:space:]]+interop-label$'
run_case luks2-pbkdf2-512 luks2 aes-xts-plain64 512 512 pbkdf2 \
	"${FAST_KDF[@]}" --sector-size 512
run_case luks1 luks1 aes-xts-plain64 512 512 pbkdf2 \
	"${FAST_KDF[@]}" --type luks1
run_case luks2-essiv luks2 aes-cbc-essiv:sha256 256 4096 argon2id \
	"${FAST_ARGON[@]}" --cipher aes-cbc-essiv:sha256 --key-size 256

# --no-wipe on a new sparse file: the data area stays all zeros on disk.
# dm-crypt decrypts that to pseudo-random bytes; blockcrypt reads zero
# ciphertext as zeros (the oracle's --zero-rule).
note "no-wipe: blockcrypt format --size $SIZE --no-wipe"
bc format nowipe.img --batch --key-file pass --size "$SIZE" --no-wipe "${FAST_KDF[@]}" 2>bc.err ||
	fail "no-wipe: blockcrypt format failed: $(cat bc.err)"
[ "$(stat -c %s nowipe.img)" = "$SIZE" ] || fail "no-wipe: --size $SIZE made a $(stat -c %s nowipe.img)-byte file"
cryptsetup open --test-passphrase --key-file pass nowipe.img || fail "no-wipe: cryptsetup does not accept the passphrase"
off=$(data_offset nowipe.img)
n=$((SIZE - off))
head -c "$n" /dev/zero >zero.raw
tail -c "$n" nowipe.img | cmp - zero.raw || fail "no-wipe: format --no-wipe wrote into the data area"
bc cat nowipe.img --key-file pass >cat.raw 2>bc.err ||
	fail "no-wipe: blockcrypt cat failed: $(cat bc.err)"
[ "$(stat -c %s cat.raw)" = "$n" ] || fail "no-wipe: cat gave $(stat -c %s cat.raw) bytes, want $n"
cmp -s cat.raw zero.raw || fail "no-wipe: the unwiped sparse device does not read as zeros (zero-ciphertext rule)"
key=$(volume_key nowipe.img pass)
$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size 4096 --offset "$off" nowipe.img dmcrypt.raw
! cmp -s dmcrypt.raw zero.raw || fail "no-wipe: dm-crypt (the oracle) reads the unwiped device as zeros"
# Data written through blockcrypt next to the unwritten rest: dm-crypt (no
# rule) reads exactly it, and the whole device is the oracle with the rule.
random_file part.raw $((1 << 20))
bc write nowipe.img --key-file pass <part.raw >/dev/null 2>bc.err || fail "no-wipe: blockcrypt write failed: $(cat bc.err)"
bc cat nowipe.img --key-file pass >cat.raw 2>bc.err || fail "no-wipe: blockcrypt cat failed: $(cat bc.err)"
$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size 4096 --offset "$off" --length $((1 << 20)) nowipe.img dmcrypt.raw
cmp dmcrypt.raw part.raw || fail "no-wipe: dm-crypt reads other bytes than blockcrypt wrote"
$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$key" --sector-size 4096 --offset "$off" --zero-rule nowipe.img oracle.raw
cmp oracle.raw cat.raw || fail "no-wipe: blockcrypt cat of the partly written device differs from the oracle (--zero-rule)"
