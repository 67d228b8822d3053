#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# genkey makes exactly the key asked for, and nothing when it fails:
# lofi's 'bctest:::' spelling and an explicit --module work; --key-len 128,
# 192 and 256 give AES keys of 16, 24 and 32 bytes; every key is private
# (invisible without login, where a public object is visible), sensitive and never extractable; a second key
# under an existing label is refused (one line, non-zero exit); a bad
# --key-len (2), a wrong PIN (3), a missing token (12), --batch without a
# PIN file (2) and a missing --label (2) create no object.  Labels that
# need percent-encoding in a URI (space, ';') work, are usable through
# lofi's ':::LABEL' spelling, and are protected from duplicates too.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
p11_setup

expect_keys() {
	local got; got=$(secret_keys | tr '\n' ' ' | sed 's/ $//')
	[ "$got" = "$1" ] || fail "token secret keys: '$got', expected '$1' ($2)"
}

bc genkey --token 'bctest:::' --label a256 --pin-file pin 2>err || fail "genkey --token bctest::: failed: $(cat err)"
bc genkey --token "$TOKEN_URI" --label a128 --key-len 128 --pin-file pin --module "$SOFTHSM_MODULE" 2>err ||
	fail "genkey --key-len 128 --module failed: $(cat err)"
bc genkey --token "$TOKEN_URI" --label a192 --key-len 192 --pin-file pin 2>err || fail "genkey --key-len 192 failed: $(cat err)"
expect_keys "a128:AES length 16 a192:AES length 24 a256:AES length 32" "after three genkeys"
for k in a128 a192 a256; do
	access=$(secret_key_access "$k")
	case ", $access," in *", sensitive,"*", never extractable,"*) ;; *) fail "$k: access '$access'" ;; esac
	case ", $access," in *", extractable,"*) fail "$k is extractable: '$access'" ;; esac
done
# Without login only public objects are listed.  A public data object is
# the control: it must show up, so an empty answer means "private", not
# "the listing did not work" (and pkcs11-tool itself must succeed).
printf 'public control object' >pubctl.bin
ptool --write-object pubctl.bin --type data --label pubctl >/dev/null 2>err ||
	fail "pkcs11-tool cannot write a public data object: $(cat err)"
pkcs11-tool --module "$SOFTHSM_MODULE" --list-objects >public.txt 2>err ||
	fail "pkcs11-tool --list-objects without login failed: $(cat err)"
grep -q "label: *'pubctl'" public.txt ||
	fail "the listing without login does not show the public control object: $(cat public.txt) $(cat err)"
! grep -q 'Secret Key Object' public.txt || fail "genkey's keys are visible without login (not CKA_PRIVATE): $(cat public.txt)"

# Duplicate label: refused, still one key of that name.
got=0; bc genkey --token "$TOKEN_URI" --label a256 --pin-file pin 2>err || got=$?
[ "$got" != 0 ] || fail "genkey made a second key labelled a256"
[ "$(wc -l <err)" = 1 ] || fail "duplicate label: expected one error line, got: $(cat err)"
note "duplicate label: exit $got: $(cat err)"
expect_keys "a128:AES length 16 a192:AES length 24 a256:AES length 32" "after a duplicate genkey"

expect_exit 2 bc genkey --token "$TOKEN_URI" --label bad --key-len 100 --pin-file pin
note "--key-len 100: $ERR"
expect_exit 3 bc genkey --token "$TOKEN_URI" --label bad --pin-file badpin
note "wrong PIN: $ERR"
expect_exit 12 bc genkey --token 'pkcs11:token=nosuch' --label bad --pin-file pin
note "token=nosuch: $ERR"
expect_exit 2 bc genkey --token "$TOKEN_URI" --label bad --batch
note "--batch without --pin-file: $ERR"
expect_exit 2 bc genkey --token "$TOKEN_URI" --pin-file pin
note "no --label: $ERR"
expect_keys "a128:AES length 16 a192:AES length 24 a256:AES length 32" "after failed genkeys"

# Labels with a space and a ';' (percent-encoded in URIs).
bc genkey --token "$TOKEN_URI" --label 'my key;1' --pin-file pin 2>err || fail "genkey --label 'my key;1' failed: $(cat err)"
expect_keys "a128:AES length 16 a192:AES length 24 a256:AES length 32 my key;1:AES length 32" "after genkey 'my key;1'"
truncate -s 1M plain.img
bc cat plain.img --type plain --pkcs11 ':::my key;1' --pin-file pin </dev/null >/dev/null 2>err ||
	fail "the key 'my key;1' is not usable as ':::my key;1': $(cat err)"
got=0; bc genkey --token "$TOKEN_URI" --label 'my key;1' --pin-file pin 2>err || got=$?
[ "$got" != 0 ] || fail "genkey made a second key labelled 'my key;1' (duplicate check misses labels that need URI encoding)"
expect_keys "a128:AES length 16 a192:AES length 24 a256:AES length 32 my key;1:AES length 32" "after a duplicate genkey 'my key;1'"
exit 0
