#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key derivation costs no honest header has, in headers cryptsetup accepts
# (LUKS2: both copies rewritten by luks2_forge.py with correct checksums;
# LUKS1: binary fields edited): Argon2 memory above the LUKS2 maximum
# (8 GiB), 4 GiB under an address-space or data-size limit of 1 GiB,
# time cost 2^31, time x memory above 256 GiB, 17 threads; PBKDF2 with
# 2^32 iterations in a key slot or in the volume key digest (LUKS2 and
# LUKS1); a bad slot next to a good one.  Each time cat, write, attach
# and add-key exit 11 with one line naming the key slot (or digest) and
# the cost, before any key derivation: no Argon2 memory is ever allocated
# (peak RSS stays small) and nothing runs for long (a generous timeout is
# only a hang guard).  The backing stays byte-identical, no daemon is left
# behind, and dump still works (dump --json says "supported": false).
# The limits themselves are admitted: exactly 2^28 PBKDF2 iterations, or
# Argon2 time 16384 x 16 MiB, start deriving (still busy after 3 s, where
# anything refused returns at once); one more is refused.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum timeout prlimit /usr/bin/python3

. "$TESTS_DIR/shell/forge-lib.bash"

# maxrss FILE CMD...: run CMD; its peak RSS (KiB) goes to FILE; CMD's exit status.
maxrss() {
	local out=$1; shift
	/usr/bin/python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc if rc >= 0 else 128 - rc)' "$out" "$@"
}

# refused LABEL FILE REGEX: every command that would derive a key exits 11
# with one line matching REGEX, fast and small; FILE is left unchanged.
RSS_LIMIT=$((256 * 1024))   # KiB; the hostile costs are 4 GiB and more
refused() {
	local label=$1 f=$2 re=$3 before cmd got rss
	before=$(sha "$f")
	for cmd in cat write attach add-key; do
		local args=("$cmd" "$f" --key-file key)
		case $cmd in
		add-key) args+=(--new-key-file newkey "${FAST_KDF[@]}") ;;
		esac
		got=0
		maxrss rss timeout 60 "$BLOCKCRYPT" "${args[@]}" <data >out 2>err || got=$?
		rss=$(cat rss)
		note "$label: $cmd: exit $got, peak RSS $rss KiB: $(cat err)"
		refusal_checked "$label: $cmd" 11 "$got" "$re"
		[ "$rss" -lt "$RSS_LIMIT" ] || problem "$label: $cmd: peak RSS $rss KiB (derivation memory allocated?)"
		[ "$cmd" != cat ] || [ ! -s out ] || problem "$label: cat printed data"
	done
	nothing_attached "$label"
	bc dump "$f" >/dev/null 2>err || problem "$label: dump failed: $(cat err)"
	dump_says_unsupported "$label" "$f"
	[ "$(sha "$f")" = "$before" ] || problem "$label: the backing was modified"
}

# admitted LABEL FILE: cat is still deriving after 3 s (not refused).
admitted() {
	local got=0
	timeout 3 "$BLOCKCRYPT" cat "$2" --key-file key >/dev/null 2>err || got=$?
	note "$1: cat: exit $got (124: still deriving when stopped)"
	[ "$got" = 124 ] || problem "$1: a cost at the limit was not admitted: exit $got: $(cat err)"
}

printf 'kdf cost' >key
printf 'new key' >newkey
head -c 4096 /dev/urandom >data
bc format l2 --batch --key-file key --size 20M --no-wipe --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 ||
	fail "format LUKS2 failed"
bc format l1 --type luks1 --batch --key-file key --size 20M --no-wipe --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 ||
	fail "format LUKS1 failed"
# A second key slot, so that one can be hostile next to a good one.
bc add-key l2 --key-file key --new-key-file newkey "${FAST_KDF[@]}" 2>/dev/null || fail "add-key failed"
bc cat l2 --key-file key >/dev/null || fail "the unforged LUKS2 volume does not open"
SALT=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["keyslots"]["0"]["kdf"]["salt"])' < <($FORGE show l2))
argon() { echo "{\"type\":\"argon2id\",\"time\":$1,\"memory\":$2,\"cpus\":$3,\"salt\":\"$SALT\"}"; }

# ---- Argon2 -----------------------------------------------------------------
forge l2 mem8g keyslots.0.kdf="$(argon 4 8388608 4)"
refused "argon2 8 GiB" mem8g 'key slot 0: argon2id memory cost 8388608 KiB .*LUKS2 maximum'

forge l2 time31 keyslots.0.kdf="$(argon 2147483648 65536 1)"
refused "argon2 time 2^31" time31 'key slot 0: argon2id time cost 2147483648 '

forge l2 work keyslots.0.kdf="$(argon 16384 16385 1)"
refused "argon2 time x memory" work 'key slot 0: argon2id cost 16384 passes over 16385 KiB'

forge l2 lanes keyslots.0.kdf="$(argon 4 65536 17)"
refused "argon2 17 threads" lanes 'key slot 0: argon2id wants 17 threads'

# Slot 1 hostile, slot 0 fine: still refused, naming slot 1.
forge l2 slot1 keyslots.1.kdf="$(argon 4 8388608 4)"
refused "argon2 8 GiB in slot 1" slot1 'key slot 1: argon2id memory cost 8388608 KiB'

# 4 GiB is allowed on its own (the LUKS2 maximum) but not with less left
# to the process.  ASan reserves terabytes of address space, so an
# instrumented binary cannot run under these limits at all.
forge l2 mem4g keyslots.0.kdf="$(argon 4 4194304 4)"
if grep -q __asan_init "$BLOCKCRYPT"; then  # (no pipe: pipefail + grep -q)
	note "ASan build: the address-space and data-size limit cases cannot run"
else
	for lim in as data; do
		# Control: an ordinary volume opens under the same limit.
		prlimit --$lim=$((1 << 30)) "$BLOCKCRYPT" cat l2 --key-file key >/dev/null 2>err ||
			problem "prlimit --$lim=1G: the ordinary volume does not open: $(cat err)"
		before=$(sha mem4g)
		got=0
		maxrss rss timeout 60 prlimit --$lim=$((1 << 30)) "$BLOCKCRYPT" cat mem4g --key-file key >/dev/null 2>err || got=$?
		note "argon2 4 GiB, prlimit --$lim=1G: exit $got, peak RSS $(cat rss) KiB: $(cat err)"
		[ "$got" = 11 ] || problem "argon2 4 GiB under prlimit --$lim=1G: expected exit 11, got $got: $(cat err)"
		[ "$(wc -l <err)" = 1 ] || problem "argon2 4 GiB under prlimit --$lim: expected one error line: $(cat err)"
		case $lim in as) re='address-space limit' ;; data) re='data-size limit' ;; esac
		grep -Eq "key slot 0: argon2id memory cost 4194304 KiB is more than [0-9]+ KiB, .*$re" err ||
			problem "argon2 4 GiB under prlimit --$lim: message does not name the slot, cost and limit: $(cat err)"
		[ "$(cat rss)" -lt "$RSS_LIMIT" ] || problem "argon2 4 GiB under prlimit --$lim: peak RSS $(cat rss) KiB"
		[ "$(sha mem4g)" = "$before" ] || problem "argon2 4 GiB under prlimit --$lim: the backing was modified"
	done
fi

# ---- PBKDF2 -----------------------------------------------------------------
forge l2 pb32 keyslots.0.kdf.iterations=4294967296
refused "LUKS2 pbkdf2 2^32" pb32 'key slot 0: pbkdf2 iteration count 4294967296 '

forge l2 dig32 digests.0.iterations=4294967296
refused "LUKS2 digest 2^32" dig32 'volume key digest 0: pbkdf2 iteration count 4294967296 '

cp l1 l1slot
forge_luks1 l1slot slot0.iterations=4294967295
cryptsetup_valid l1slot
refused "LUKS1 pbkdf2 2^32-1" l1slot 'key slot 0: pbkdf2 iteration count 4294967295 '

cp l1 l1dig
forge_luks1 l1dig mk_digest_iterations=4294967295
cryptsetup_valid l1dig
refused "LUKS1 digest 2^32-1" l1dig 'volume key digest: pbkdf2 iteration count 4294967295 '

# ---- the limits themselves ----------------------------------------------------
forge l2 pbmax keyslots.0.kdf.iterations=268435456
admitted "pbkdf2 2^28" pbmax
forge l2 pbover keyslots.0.kdf.iterations=268435457
refused "pbkdf2 2^28 + 1" pbover 'key slot 0: pbkdf2 iteration count 268435457 '
forge l2 a2max keyslots.0.kdf="$(argon 16384 16384 1)"
admitted "argon2 16384 x 16 MiB" a2max
forge l2 a2over keyslots.0.kdf="$(argon 16385 8 1)"
refused "argon2 time 16385" a2over 'key slot 0: argon2id time cost 16385 '

check_problems
exit 0
