#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The libcryptsetup token plugin (libcryptsetup-token-blockcrypt-pkcs11.so)
# lets cryptsetup itself use a `blockcrypt enroll` token: without the plugin
# cryptsetup cannot open the volume by token; with it, `cryptsetup open
# --test-passphrase --token-only` unlocks the token's key slot with the PIN
# read from stdin; a wrong PIN fails and is reported as a wrong PIN (the
# libcryptsetup token API's -ENOANO, as systemd's plugins do: "No token could
# be unlocked with this PIN."); luksDump shows the token's URI; the plugin's
# validate hook refuses a malformed token; the header is never modified.
#
# The plugin is copied into cryptsetup's token directory for the test only
# (a file already there under that name is put back afterwards).
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/pkcs11-lib.bash"
requires cryptsetup install

PLUGIN_NAME=libcryptsetup-token-blockcrypt-pkcs11.so
PLUGIN=${BLOCKCRYPT_PLUGIN:-$(cd "$(dirname "$BLOCKCRYPT")/.." && pwd)/$PLUGIN_NAME}
[ -f "$PLUGIN" ] || fail "the token plugin was not built: $PLUGIN (set BLOCKCRYPT_PLUGIN)"
PLUGIN_DIR=$(cryptsetup --help | sed -n 's/.*token plugin path: \(.*\)\.$/\1/p')
[ -n "$PLUGIN_DIR" ] || fail "cryptsetup does not say where its token plugins live (external tokens disabled?)"
[ -d "$PLUGIN_DIR" ] || mkdir -p "$PLUGIN_DIR"

# An ASan/UBSan-instrumented plugin needs its runtimes loaded first into
# cryptsetup (which is not instrumented).
CS_ENV=()
preload=$(ldd "$PLUGIN" | awk '$1 ~ /^lib(asan|ubsan)\.so/ { print $3 }' | paste -sd: -)
if [ -n "$preload" ]; then
	CS_ENV=(env "LD_PRELOAD=$preload" "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
	note "instrumented plugin: cryptsetup runs with LD_PRELOAD=$preload"
fi
cs() { "${CS_ENV[@]}" cryptsetup "$@"; }

installed=$PLUGIN_DIR/$PLUGIN_NAME
restore_plugin() {
	rm -f "$installed" "$installed.tmp.$$"
	if [ -e "$TEST_TMP/plugin.orig" ]; then mv -f "$TEST_TMP/plugin.orig" "$installed"; fi
}
# Keep an installed plugin, except a sanitizer build left by a run that was
# killed before its cleanup: uninstrumented cryptsetup aborts loading it.
if [ -e "$installed" ] && ! [[ $(ldd "$installed" 2>/dev/null) =~ lib(asan|ubsan)\.so ]]; then
	cp -a "$installed" "$TEST_TMP/plugin.orig" || fail "cannot back up the installed $installed"
fi
cleanup_fn restore_plugin
rm -f "$installed"

p11_setup
genkey ckey
new_volume vol.img pass
bc enroll vol.img --pkcs11 "$TOKEN_URI;object=ckey" --key-file pass --pin-file pin 2>err ||
	fail "enroll failed: $(cat err)"
expect_tokens vol.img "0:blockcrypt-pkcs11" "after enroll"
expect_keyslots vol.img "0 1" "after enroll"
before=$(sha vol.img)

# Without the plugin, cryptsetup has no way to use the token.
if printf '1234\n' | cs open --test-passphrase --token-only vol.img >cs.out 2>&1; then
	fail "cryptsetup opened the token without the plugin installed: $(cat cs.out)"
fi

# Install it (atomically: the build may be rewriting the file).
install -m 0644 "$PLUGIN" "$installed.tmp.$$" || fail "cannot copy the plugin into $PLUGIN_DIR"
mv -f "$installed.tmp.$$" "$installed" || fail "cannot install the plugin into $PLUGIN_DIR"

# Right PIN (stdin is not a terminal: cryptsetup reads the PIN from it).
printf '1234\n' | cs -v open --test-passphrase --token-only vol.img >cs.out 2>&1 ||
	fail "cryptsetup open --token-only with the right PIN failed: $(cat cs.out)"
grep -q '^Key slot 1 unlocked' cs.out || fail "cryptsetup did not unlock the token's slot 1: $(cat cs.out)"
printf '1234\n' | cs -v open --test-passphrase --token-only --token-type blockcrypt-pkcs11 vol.img >cs.out 2>&1 ||
	fail "cryptsetup open --token-type blockcrypt-pkcs11 failed: $(cat cs.out)"
printf '1234\n' | cs -v open --test-passphrase --token-only --token-id 0 vol.img >cs.out 2>&1 ||
	fail "cryptsetup open --token-id 0 failed: $(cat cs.out)"
grep -q '^Key slot 1 unlocked' cs.out || fail "cryptsetup --token-id 0 did not unlock slot 1: $(cat cs.out)"

# Wrong PIN, and no PIN at all.
if printf '4321\n' | cs -v open --test-passphrase --token-only vol.img >cs.out 2>&1; then
	fail "cryptsetup opened the volume with a wrong PIN"
fi
note "wrong PIN: $(tr '\n' ' ' <cs.out)"
if cs open --test-passphrase --token-only vol.img </dev/null >cs.out2 2>&1; then
	fail "cryptsetup opened the volume with no PIN"
fi
[ "$(sha vol.img)" = "$before" ] || fail "cryptsetup token unlocking modified the volume"

# luksDump, through the plugin's dump hook.
cs luksDump vol.img >dump.txt || fail "cryptsetup luksDump failed"
sed -n '/^Tokens:/,/^Digests:/p' dump.txt >tokens.txt
grep -q '^  0: blockcrypt-pkcs11$' tokens.txt || fail "luksDump shows no blockcrypt-pkcs11 token 0: $(cat tokens.txt)"
grep -q 'PKCS#11 URI: pkcs11:token=bctest;object=ckey$' tokens.txt ||
	fail "luksDump does not show the token URI: $(cat tokens.txt)"
grep -q 'Keyslot: *1$' tokens.txt || fail "luksDump does not bind the token to slot 1: $(cat tokens.txt)"

# The validate hook: a blockcrypt-pkcs11 token without its secret is refused.
cp vol.img copy.img
if echo '{"type":"blockcrypt-pkcs11","keyslots":["0"],"blockcrypt-pkcs11-uri":"pkcs11:token=x;object=y"}' |
	cs token import copy.img >/dev/null 2>&1; then
	fail "cryptsetup imported a malformed blockcrypt-pkcs11 token (plugin validate hook not used?)"
fi
expect_tokens copy.img "0:blockcrypt-pkcs11" "after a refused token import"

# The wrong-PIN report.  The token code fails a wrong PIN with -EPERM; were
# the plugin to pass that on, libcryptsetup would turn it into -ENOENT and
# cryptsetup would say "No usable token is available." (and never ask a
# terminal user for the PIN again), so the plugin returns -ENOANO, the
# token API's "PIN missing or wrong".  The open must fail, and say that.
got=0; printf '4321\n' | cs -v open --test-passphrase --token-only vol.img >cs.out 2>&1 || got=$?
[ "$got" != 0 ] || fail "cryptsetup open --token-only with a wrong PIN succeeded: $(tr '\n' ' ' <cs.out)"
grep -q 'No token could be unlocked with this PIN' cs.out ||
	fail "cryptsetup does not report a wrong PIN as such (plugin should return -ENOANO); it said: $(tr '\n' ' ' <cs.out)"
exit 0
