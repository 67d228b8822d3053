#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key updates never lose each other.  Six add-key at once on one volume
# (LUKS1, which libcryptsetup does not lock, and LUKS2): every one that
# reports success has a key slot that opens the volume, every other one
# exits 9 (busy) with one line, and at least one succeeds.  And blockcrypt
# and cryptsetup serialise on LUKS2 through libcryptsetup's lock on the
# image: while that lock is held, blockcrypt's add-key waits; while
# blockcrypt is writing the header, cryptsetup's luksAddKey waits; both
# keys work afterwards.
. "$(dirname "$0")/functions.bash"
requires cryptsetup flock strace

parallel_add_keys() { # TYPE SIZE
	local type=$1 i rc ok=0 busy=0
	rm -f vol.img
	VOLUME_SIZE=$2 new_volume vol.img key --type "$type"
	for i in 1 2 3 4 5 6; do
		printf 'key number %s' "$i" >"k$i"
		bc add-key vol.img --key-file key --new-key-file "k$i" "${FAST_KDF[@]}" >"o$i" 2>"e$i" &
		echo $! >"p$i"
	done
	for i in 1 2 3 4 5 6; do
		rc=0; wait "$(cat "p$i")" || rc=$?
		case $rc in
		0)
			cryptsetup open --test-passphrase --key-file "k$i" vol.img ||
				fail "$type: add-key $i reported success, but its key does not open the volume"
			ok=$((ok + 1)) ;;
		9)
			[ "$(wc -l <"e$i")" = 1 ] || fail "$type: add-key $i: not one line: $(cat "e$i")"
			! cryptsetup open --test-passphrase --key-file "k$i" vol.img 2>/dev/null ||
				fail "$type: add-key $i said busy, yet its key was added"
			busy=$((busy + 1)) ;;
		*) fail "$type: add-key $i exited $rc: $(cat "e$i")" ;;
		esac
	done
	[ "$ok" -ge 1 ] || fail "$type: no add-key succeeded"
	cryptsetup open --test-passphrase --key-file key vol.img || fail "$type: the first key no longer opens it"
	note "$type: 6 parallel add-key: $ok succeeded, $busy busy: $(cat e* | sort -u | head -1)"
}
parallel_add_keys luks1 3M
parallel_add_keys luks2 17M

# --- with cryptsetup (LUKS2) ---------------------------------------------------
rm -f vol.img
VOLUME_SIZE=17M new_volume vol.img key
printf 'blockcrypt key' >bckey
printf 'cryptsetup key' >cskey
# 1. A held libcryptsetup lock (as cryptsetup holds it while it writes)
# makes blockcrypt's add-key wait.
flock -x vol.img sleep 3 &
HOLDER=$!
sleep 0.5
bc add-key vol.img --key-file key --new-key-file bckey "${FAST_KDF[@]}" 2>add.err &
ADD=$!
sleep 1.5
kill -0 "$ADD" 2>/dev/null || fail "blockcrypt add-key finished while the image's lock was held"
wait "$HOLDER"
wait "$ADD" || fail "blockcrypt add-key failed after the lock was released: $(cat add.err)"
cryptsetup open --test-passphrase --key-file bckey vol.img || fail "blockcrypt's key does not open the volume"

# 2. blockcrypt held up inside its header write (2 s on each write to the
# image): meanwhile the lock is held, and cryptsetup's luksAddKey waits.
printf 'blockcrypt key 2' >bckey2
"${UNDER_STRACE[@]}" strace -f -qq -o /dev/null -P "$TEST_TMP/vol.img" -e trace=pwrite64,write -e inject=pwrite64,write:delay_enter=2000000 \
	"$BLOCKCRYPT" add-key vol.img --key-file key --new-key-file bckey2 "${FAST_KDF[@]}" 2>add2.err &
ADD=$!
locked=no
for _ in $(seq 100); do
	# (-s: only an exclusive lock -- the header write -- blocks a shared
	# one; libcryptsetup's shared lock while it reads must not count, or
	# cryptsetup would update the header in between and blockcrypt abort
	# with "concurrent LUKS2 metadata update", as libcryptsetup does)
	if ! flock -s -n vol.img true; then locked=yes; break; fi
	kill -0 "$ADD" 2>/dev/null || break
	sleep 0.05
done
[ "$locked" = yes ] || fail "blockcrypt never held the image's lock while writing the header"
cryptsetup luksAddKey --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file key vol.img cskey &
CS=$!
sleep 0.5
kill -0 "$ADD" 2>/dev/null || fail "blockcrypt finished too early for the check (strace delay not applied?)"
wait "$ADD" || fail "blockcrypt add-key under strace failed: $(cat add2.err)"
wait "$CS" || fail "cryptsetup luksAddKey failed"
for k in key bckey bckey2 cskey; do
	cryptsetup open --test-passphrase --key-file "$k" vol.img || fail "key '$k' does not open the volume: an update was lost"
done
exit 0
