# SPDX-License-Identifier: GPL-2.0-or-later
# Shared setup for the PKCS#11 shell tests.  Source it after functions.bash:
#   . "$(dirname "$0")/functions.bash"
#   . "$TESTS_DIR/shell/pkcs11-lib.bash"    (functions.bash has cd-ed away)
# (Not a test itself: meson runs tests/shell/*.sh only.)
#
# Every test gets its own SoftHSM v2 token "bctest" (user PIN 1234) in its
# temporary directory; SOFTHSM2_CONF points SoftHSM there, and p11-kit's
# default module list (which includes softhsm2) finds it, so blockcrypt needs
# no --module.  Files made in $TEST_TMP (the working directory):
#   pin        the right PIN, "1234\n"
#   badpin     a wrong PIN
#   empty.conf a SoftHSM configuration with no token at all

requires softhsm2-util pkcs11-tool python3

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -e "$SOFTHSM_MODULE" ] || skip "needs the SoftHSM module $SOFTHSM_MODULE (package softhsm2)"
TOKEN_URI='pkcs11:token=bctest'

# p11_setup: initialise this test's token and the PIN files.
p11_setup() {
	mkdir -p "$TEST_TMP/tokens" "$TEST_TMP/no-tokens"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$TEST_TMP" >"$TEST_TMP/softhsm2.conf"
	printf 'directories.tokendir = %s/no-tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$TEST_TMP" >"$TEST_TMP/empty.conf"
	export SOFTHSM2_CONF="$TEST_TMP/softhsm2.conf"
	softhsm2-util --init-token --free --label bctest --pin 1234 --so-pin 5678 >"$TEST_TMP/.init" 2>&1 ||
		fail "softhsm2-util --init-token failed: $(cat "$TEST_TMP/.init")"
	printf '1234\n' >"$TEST_TMP/pin"
	printf '4321\n' >"$TEST_TMP/badpin"
}

# ptool ARGS...: pkcs11-tool on this test's token, logged in as the user.
ptool() { pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin 1234 "$@"; }

# genkey LABEL [ARGS...]: a token AES key through blockcrypt; must succeed.
genkey() {
	local label=$1; shift
	bc genkey --token "$TOKEN_URI" --label "$label" --pin-file "$TEST_TMP/pin" "$@" \
		>/dev/null 2>"$TEST_TMP/.genkey" || fail "genkey $label failed: $(cat "$TEST_TMP/.genkey")"
}

# secret_keys: "LABEL:AES length N" for every secret key on the token, one a line, sorted.
secret_keys() {
	ptool --list-objects --type secrkey 2>/dev/null | awk '
		/^Secret Key Object;/ { sub(/^Secret Key Object; */, ""); kind = $0; next }
		/^  label:/ { sub(/^  label: */, ""); print $0 ":" kind }' | sort
}

# secret_key_access LABEL: pkcs11-tool's "Access:" line of that secret key.
secret_key_access() {
	ptool --list-objects --type secrkey 2>/dev/null | awk -v want="$1" '
		/^Secret Key Object;/ { label = "" }
		/^  label:/ { sub(/^  label: */, ""); label = $0 }
		/^  Access:/ && label == want { sub(/^  Access: */, ""); print; exit }'
}

# hdr_sha IMG: SHA-256 of the first 16 MiB (the whole LUKS2 header area).
hdr_sha() { head -c 16M "$1" | sha256sum | cut -d' ' -f1; }

# luks_meta IMG WHAT: from cryptsetup's own JSON metadata dump;
#   keyslots  "0 1"                 (slot numbers, sorted)
#   tokens    "0:blockcrypt-pkcs11" (id:type, sorted by id)
#   token N   that token's JSON
luks_meta() {
	cryptsetup luksDump --dump-json-metadata "$1" 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)
what = sys.argv[1]
if what == "keyslots":
    print(" ".join(sorted(m["keyslots"], key=int)))
elif what == "tokens":
    print(" ".join("%s:%s" % (k, m["tokens"][k]["type"]) for k in sorted(m["tokens"], key=int)))
else:
    print(json.dumps(m["tokens"][sys.argv[2]], sort_keys=True))' "${@:2}" ||
		fail "cannot read the LUKS2 metadata of $1 with cryptsetup"
}
expect_keyslots() {
	local got; got=$(luks_meta "$1" keyslots)
	[ "$got" = "$2" ] || fail "$1: key slots '$got', expected '$2' ($3)"
}
expect_tokens() {
	local got; got=$(luks_meta "$1" tokens)
	[ "$got" = "$2" ] || fail "$1: tokens '$got', expected '$2' ($3)"
}
