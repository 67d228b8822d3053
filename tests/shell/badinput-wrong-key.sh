#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A wrong passphrase (a different one, the right one plus a newline, a
# prefix of it) makes cat, write, add-key, change-key and remove-key fail
# with exit 3 and a one-line message, and leaves the backing byte-identical,
# on LUKS2 and LUKS1.  The right key still works afterwards.
. "$(dirname "$0")/functions.bash"
requires sha256sum

printf 'correct horse' >good
printf 'battery staple' >wrong1
printf 'correct horse\n' >wrong2   # key files are byte-exact
printf 'correct hors' >wrong3
printf 'brand new key' >new
random_file data 65536

# unchanged_after VOLUME CMD...: CMD must fail with exit 3 and leave VOLUME as it was.
unchanged_after() {
	local vol=$1 before; shift
	before=$(sha "$vol")
	expect_exit 3 "$@"
	[ "$(sha "$vol")" = "$before" ] || fail "backing $vol modified by failing: $*"
	case $ERR in blockcrypt:*) ;; *) fail "error does not start with 'blockcrypt:': $ERR" ;; esac
}

bc format l2 --batch --key-file good --size 20M "${FAST_ARGON[@]}" 2>/dev/null
bc format l1 --type luks1 --batch --key-file good --size 20M "${FAST_KDF[@]}" 2>/dev/null
bc add-key l2 --key-file good --new-key-file new --key-slot 3 "${FAST_ARGON[@]}" 2>/dev/null
bc remove-key l2 --key-slot 3 --batch 2>/dev/null   # a volume with a used-then-freed slot

for vol in l2 l1; do
	case $vol in l2) kdf=("${FAST_ARGON[@]}") ;; l1) kdf=("${FAST_KDF[@]}") ;; esac
	bc cat "$vol" --key-file good >ref
	for w in wrong1 wrong2 wrong3; do
		unchanged_after "$vol" bc cat "$vol" --key-file "$w"
	done
	w=wrong2
	unchanged_after "$vol" bc cat "$vol" --key-file - <"$w"
	unchanged_after "$vol" bc write "$vol" --key-file "$w" <data
	unchanged_after "$vol" bc add-key "$vol" --key-file "$w" --new-key-file new "${kdf[@]}"
	unchanged_after "$vol" bc add-key "$vol" --key-file "$w" --new-key-file new --key-slot 2 "${kdf[@]}"
	unchanged_after "$vol" bc change-key "$vol" --key-file "$w" --new-key-file new "${kdf[@]}"
	unchanged_after "$vol" bc remove-key "$vol" --key-file "$w"
	unchanged_after "$vol" bc remove-key "$vol" --key-file "$w" --batch
	note "$vol: wrong key message: $ERR"
	# An empty key file is an invalid argument, not a key to try.
	: >empty
	before=$(sha "$vol")
	expect_exit 2 bc cat "$vol" --key-file empty
	[ "$(sha "$vol")" = "$before" ] || fail "$vol modified by cat with an empty key file"
	# The new key never got in; the right one still opens the same data.
	expect_exit 3 bc cat "$vol" --key-file new
	bc cat "$vol" --key-file good >out
	cmp -s out ref || fail "$vol: data changed after the failed attempts"
done
exit 0
