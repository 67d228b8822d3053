#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# --token-only means "only an enrolled token, never a passphrase", for every
# unlocking command and volume type:
#   - write --token-only --pin-file works (data reads back with the passphrase);
#   - LUKS2 with a token, wrong PIN, right --key-file: exit 3, no fallback;
#   - LUKS2 without a token, right --key-file: exit 8 (nothing to unlock with);
#   - LUKS1 (which cannot hold tokens), right --key-file: exit 8 for cat,
#     write and attach -- never opened with the passphrase;
#   - --pkcs11 URI naming a key that does not exist, on a LUKS2 volume with
#     another token enrolled: not silently ignored (the volume must not be
#     unlocked through the other token).
# No failed attempt modifies a volume.  All cases are checked; the test fails
# at the end if any did not hold.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup cmp
p11_setup

# refused CODE WHAT VOLUME CMD...: CMD must exit CODE with one line, write
# nothing to stdout, and leave VOLUME byte-identical.
refused() {
	local want=$1 what=$2 vol=$3 got=0 before; shift 3
	before=$(sha "$vol")
	"$@" </dev/null >out 2>err || got=$?
	if [ "$got" != "$want" ]; then
		problem "$what: expected exit $want, got $got from: $* (stderr: $(head -c 300 err | tr '\n' ' '); stdout: $(stat -c %s out) bytes)"
	elif [ "$(wc -l <err)" != 1 ]; then
		problem "$what: expected one error line, got: $(cat err)"
	else
		note "$what: $(cat err)"
	fi
	[ ! -s out ] || [ "$got" = 0 ] || problem "$what: failed but wrote $(stat -c %s out) bytes to stdout"
	[ "$(sha "$vol")" = "$before" ] || problem "$what: $vol was modified"
	bc detach --all --force >/dev/null 2>&1 || true
}

genkey tkey
new_volume tok.img pass
bc enroll tok.img --pkcs11 "$TOKEN_URI;object=tkey" --key-file pass --pin-file pin 2>err || fail "enroll failed: $(cat err)"
new_volume none.img pass
VOLUME_SIZE=8M new_volume l1.img pass --type luks1

# write with the token only.
random_file data $((2 * 1048576))
bc write tok.img --token-only --pin-file pin <data 2>err || problem "write --token-only --pin-file failed: $(cat err)"
bc cat tok.img --key-file pass --batch 2>/dev/null | head -c $((2 * 1048576)) >back || true
cmp -s back data || problem "data written with the token does not read back with the passphrase"

refused 3 "LUKS2 token, wrong PIN + right key file" tok.img \
	bc cat tok.img --token-only --pin-file badpin --key-file pass
refused 8 "LUKS2 without token, right key file" none.img \
	bc cat none.img --token-only --pin-file pin --key-file pass
refused 8 "LUKS1 cat --token-only, right key file" l1.img \
	bc cat l1.img --token-only --pin-file pin --key-file pass
refused 8 "LUKS1 write --token-only, right key file" l1.img \
	bc write l1.img --token-only --pin-file pin --key-file pass
refused 8 "LUKS1 attach --token-only, right key file" l1.img \
	bc attach l1.img --token-only --pin-file pin --key-file pass

# An explicit --pkcs11 on a LUKS2 volume must not be ignored in favour of
# whatever token is enrolled (either refused as not applicable, exit 2, or
# honoured: the named key does not exist, exit 12).
got=0; bc cat tok.img --token-only --pin-file pin --pkcs11 "$TOKEN_URI;object=nosuchkey" </dev/null >out 2>err || got=$?
case $got in
2|12) note "--pkcs11 naming a missing key on LUKS2: exit $got: $(cat err)" ;;
*) problem "cat tok.img --token-only --pin-file pin --pkcs11 '$TOKEN_URI;object=nosuchkey': exit $got and $(stat -c %s out) bytes of plaintext: the --pkcs11 URI was silently ignored" ;;
esac

check_problems
exit 0
