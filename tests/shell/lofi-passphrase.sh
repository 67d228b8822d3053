#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A lofi image keyed by a passphrase (lofiadm -c without -k: PBKDF2-HMAC-
# SHA1, the passphrase as salt, 1000 rounds, a 256-bit key; made here by
# the oracle) reads with `blockcrypt cat --type lofi` and the passphrase
# typed at the prompt, whatever lofi cipher name is given; a wrong
# passphrase gives other bytes; one under 8 characters is refused.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 script cmp
requires_python_cryptography
LOFI="/usr/bin/python3 $TESTS_DIR/oracle/lofi.py"

# typed PASSPHRASE OUT ARGS...: run blockcrypt ARGS at a terminal, type
# PASSPHRASE at its prompt, standard output to OUT.  Returns its status.
typed() {
	local pass=$1 out=$2 cmd; shift 2
	printf -v cmd '%q ' "$BLOCKCRYPT" "$@"
	{ sleep 1; printf '%s\n' "$pass"; } | script -qec "$cmd >$out 2>typed.err" /dev/null >/dev/null
}

random_file plain.raw $((512 * 1024))
$LOFI create --passphrase 'correct horse' plain.raw img
$LOFI decrypt --passphrase 'correct horse' img want.raw
before=$(sha img)

typed 'correct horse' got.raw cat --type lofi img || fail "cat failed: $(cat typed.err)"
cmp got.raw want.raw || problem "passphrase image: blockcrypt and the oracle differ"
tail -c +513 got.raw | cmp - plain.raw || problem "passphrase image: not the plaintext"

typed 'correct horse' got128.raw cat --type lofi --cipher aes-128-cbc img ||
	problem "--cipher aes-128-cbc with a passphrase was refused: $(cat typed.err)"
cmp got128.raw want.raw || problem "a passphrase must give AES-256 whatever the lofi name"

typed 'wrong horse' wrong.raw cat --type lofi img || problem "a wrong passphrase failed to read"
if cmp -s wrong.raw want.raw; then problem "a wrong passphrase decrypted the image"; fi

if typed 'short' short.raw cat --type lofi img; then problem "a 5-character passphrase was accepted"; fi
grep -q 'at least 8' typed.err || problem "short passphrase: unexpected message: $(cat typed.err)"
[ "$(sha img)" = "$before" ] || problem "reading changed the image"

check_problems
