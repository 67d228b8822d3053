#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Damaged headers.  LUKS2 (16 KiB metadata copies at 0 and 16384): with the
# primary's JSON area or binary checksum garbled, blockcrypt still opens the
# volume from the secondary copy and decrypts the right data; if that open
# rewrites anything (libcryptsetup's automatic recovery) it is only the
# primary copy, never the secondary, the key slots or the data.  `repair`
# restores a primary that is valid on its own (it opens with the secondary
# destroyed), cryptsetup luksDump agrees, and a second repair changes
# nothing.  With both copies garbled every command exits 4 and nothing is
# written.  LUKS1 (a single header) with a garbled magic exits 4, with a
# garbled cipher name exits 4 or 11; never modified.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum dd cmp

printf 'header damage' >key
random_file data $((2 * 1048576))

# garble FILE OFFSET BYTES: overwrite with random bytes, in place.
garble() { head -c "$3" /dev/urandom | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# diff_range A B: the 0-based offsets of the first and the last differing
# byte ("" if identical).
diff_range() { { cmp -l "$1" "$2" || true; } | awk 'NR == 1 { f = $1 - 1 } { l = $1 - 1 } END { if (NR) print f, l }'; }

bc format orig --batch --key-file key --size 20M "${FAST_ARGON[@]}" 2>/dev/null
bc write orig --key-file key <data 2>/dev/null
bc cat orig --key-file key >out
REF=$(sha out)
[ "$(data_offset orig)" = 16777216 ] || fail "unexpected data offset"
[ "$(cryptsetup luksDump orig | awk '/^Metadata area:/ {print $3}')" = 16384 ] ||
	fail "unexpected LUKS2 metadata size"

# ---- primary copy damaged: opens from the secondary -------------------------
for what in json csum; do
	cp orig p
	case $what in
	json) garble p 4200 200 ;;   # inside the primary JSON area (4096..16383)
	csum) garble p 448 64 ;;     # the primary binary header's checksum
	esac
	cp p p.before
	bc cat p --key-file key >out 2>err || fail "primary $what damaged: cat failed: $(cat err)"
	[ "$(sha out)" = "$REF" ] || fail "primary $what damaged: cat gives the wrong data"
	range=$(diff_range p p.before)
	if [ -z "$range" ]; then
		note "primary $what damaged: opening did not modify the backing"
	else
		read -r first last <<<"$range"
		note "primary $what damaged: opening rewrote bytes $first..$last (automatic recovery)"
		[ "$last" -lt 16384 ] || problem "primary $what damaged: opening modified bytes up to $last, beyond the primary header copy"
		cmp -s <(tail -c +16777217 p) <(tail -c +16777217 orig) ||
			problem "primary $what damaged: opening modified the data area"
		cmp -s <(tail -c +16385 p) <(tail -c +16385 orig) ||
			problem "primary $what damaged: opening modified the secondary header or key slots"
	fi
	# A read-only command, too.
	cp p.before p
	bc dump p >/dev/null 2>err || fail "primary $what damaged: dump failed: $(cat err)"
	range=$(diff_range p p.before)
	[ -z "$range" ] || note "primary $what damaged: dump rewrote bytes ${range/ /..}"
	[ -z "$range" ] || [ "${range#* }" -lt 16384 ] || problem "dump modified bytes beyond the primary copy: $range"
done

# ---- repair -----------------------------------------------------------------
cp orig r
garble r 4200 200
# Proof that the primary is really broken: with the secondary destroyed too
# nothing opens.
cp r r.nosec
garble r.nosec 16384 16384
expect_exit 4 bc cat r.nosec --key-file key

bc repair r 2>err || fail "repair failed: $(cat err)"
cmp -s <(head -c 16384 r | tail -c +4097) <(head -c 16384 orig | tail -c +4097) ||
	problem "repair: the primary JSON area differs from the original"
cmp -s <(tail -c +16385 r) <(tail -c +16385 orig) ||
	problem "repair modified something after the primary header copy"
# The repaired primary alone is enough (checked before anything else,
# cryptsetup included, gets a chance to recover it).
cp r r.nosec
garble r.nosec 16384 16384
bc cat r.nosec --key-file key >out 2>err || problem "repaired primary does not open on its own: $(cat err)"
[ "$(sha out)" = "$REF" ] || problem "repaired primary alone gives the wrong data"
# A second repair is a no-op.
cp r r.once
bc repair r 2>err || problem "second repair failed: $(cat err)"
[ -z "$(diff_range r r.once)" ] || problem "second repair changed bytes $(diff_range r r.once)"
# cryptsetup is happy with it, and has nothing to recover either.
cryptsetup luksDump r >/dev/null || problem "cryptsetup luksDump fails after repair"
cryptsetup open --test-passphrase --key-file key r || problem "cryptsetup rejects the key after repair"
[ -z "$(diff_range r r.once)" ] || problem "cryptsetup still rewrote bytes $(diff_range r r.once) after repair"
bc cat r --key-file key >out
[ "$(sha out)" = "$REF" ] || problem "repaired volume gives the wrong data"

# ---- both copies damaged: exit 4, nothing written -----------------------------
for what in json csum; do
	cp orig b
	case $what in
	json) garble b 4200 200; garble b $((16384 + 4200)) 200 ;;
	csum) garble b 448 64; garble b $((16384 + 448)) 64 ;;
	esac
	before=$(sha b)
	expect_exit 4 bc cat b --key-file key
	expect_exit 4 bc write b --key-file key <data
	expect_exit 4 bc dump b
	expect_exit 4 bc add-key b --key-file key --new-key-file data "${FAST_KDF[@]}"
	expect_exit 4 bc erase b --batch
	expect_exit 4 bc repair b
	note "both copies ($what) damaged: $ERR"
	[ "$(sha b)" = "$before" ] || problem "both copies ($what) damaged: the backing was modified"
done

# ---- LUKS1 --------------------------------------------------------------------
bc format l1 --type luks1 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" 2>/dev/null
cp l1 m
printf 'XXXX' | dd of=m bs=1 seek=0 conv=notrunc status=none   # magic "LUKS\xba\xbe"
before=$(sha m)
expect_exit 4 bc cat m --key-file key
expect_exit 4 bc dump m
expect_exit 4 bc repair m
expect_exit 4 bc write m --key-file key <data
[ "$(sha m)" = "$before" ] || problem "LUKS1 with a garbled magic was modified"

cp l1 c
# The 32-byte cipher-name field (offset 8) becomes fixed garbage (random
# garbage takes different paths in libcryptsetup from run to run).
{ printf '\xff\xfe\xfd\xfc'; head -c 28 /dev/zero; } | dd of=c bs=1 seek=8 conv=notrunc status=none
before=$(sha c)
for cmd in "cat c --key-file key" "write c --key-file key"; do
	got=0; bc $cmd <data >/dev/null 2>err || got=$?
	note "LUKS1 with a garbled cipher name: $cmd: exit $got: $(cat err)"
	case $got in 4|11) ;; *) problem "LUKS1 garbled cipher name: $cmd: expected exit 4 (damaged) or 11 (unsupported), got $got: $(cat err)" ;; esac
	[ "$(wc -l <err)" = 1 ] || problem "$cmd: expected one error line, got: $(cat err)"
done
[ "$(sha c)" = "$before" ] || problem "LUKS1 with a garbled cipher name was modified"

check_problems
exit 0
