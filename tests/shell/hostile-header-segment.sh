#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Data segments in the wrong place.
#  - Offset 0 (LUKS2 segment offset "0", LUKS1 payload offset 0): valid for
#    cryptsetup (it is the layout of a detached header), but here the
#    header is on the backing, so the "data" would be the header and key
#    slots -- a write would destroy them.  cat, write and attach exit 11
#    with one line saying where the data starts; dump --json says
#    "supported": false.
#  - Offsets inside the key slot area (LUKS2 16 KiB and 64 KiB, LUKS1 8
#    sectors): cryptsetup itself rejects the header; exit 4, one line.
#  - Offset at or past the end of the backing, or a fixed-size segment
#    (size not "dynamic") reaching past it: exit 5 ("too small or
#    truncated"), one line.
#  - A fixed-size segment shorter than the backing: cat returns exactly
#    the segment, as long as cryptsetup says, with the right data.
# Every forged header is checked valid (both LUKS2 copies' checksums) and,
# where stated, accepted by cryptsetup luksDump without it rewriting
# anything; every refusal leaves the backing byte-identical.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum cmp /usr/bin/python3

. "$TESTS_DIR/shell/forge-lib.bash"

# refused LABEL FILE CODE REGEX CMD...: each command exits CODE with one
# line matching REGEX; FILE unchanged; nothing attached.
refused() {
	local label=$1 f=$2 code=$3 re=$4 before cmd got; shift 4
	before=$(sha "$f")
	for cmd in "$@"; do
		local args=("$cmd" "$f")
		[ "$cmd" = dump ] || args+=(--key-file key)
		got=0
		timeout 60 "$BLOCKCRYPT" "${args[@]}" <data >out 2>err || got=$?
		note "$label: $cmd: exit $got: $(cat err)"
		refusal_checked "$label: $cmd" "$code" "$got" "$re"
		[ "$cmd" != cat ] || [ ! -s out ] || problem "$label: cat printed data"
	done
	nothing_attached "$label"
	[ "$(sha "$f")" = "$before" ] || problem "$label: the backing was modified"
}
unsupported_in_dump() { dump_says_unsupported "$1" "$1"; }

printf 'segments' >key
random_file data $((256 * 1024))
bc format l2 --batch --key-file key --size 20M --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 || fail "format LUKS2 failed"
bc write l2 --key-file key <data 2>/dev/null || fail "write failed"
bc format l1 --type luks1 --batch --key-file key --size 20M --no-wipe --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 ||
	fail "format LUKS1 failed"
SIZE=$(stat -c %s l2)
[ "$(data_offset l2)" = 16777216 ] || fail "unexpected LUKS2 data offset $(data_offset l2)"

# ---- offset 0: the header would be data ----------------------------------------
forge l2 zero2 segments.0.offset='"0"'
grep -Eq '^[[:space:]]*offset:[[:space:]]*0 \[bytes\]' zero2.dump || fail "luksDump does not show data offset 0"
refused "LUKS2 offset 0" zero2 11 'data segment starts at byte 0, inside the header and key slot area' cat write attach
unsupported_in_dump zero2

cp l1 zero1
forge_luks1 zero1 payload_offset=0
cryptsetup_valid zero1
grep -q '^Payload offset:[[:space:]]*0$' zero1.dump || fail "could not set the LUKS1 payload offset to 0"
refused "LUKS1 payload offset 0" zero1 11 'data segment starts at byte 0, inside the header and key slot area' cat write attach
unsupported_in_dump zero1

# ---- inside the key slot area: cryptsetup rejects it ------------------------------
for off in 16384 65536; do
	forge_raw l2 "ks$off" segments.0.offset="\"$off\""
	cryptsetup_rejects "ks$off"
	refused "LUKS2 offset $off" "ks$off" 4 'not a LUKS volume, or its headers are damaged' cat write attach dump
done
cp l1 ks1
forge_luks1 ks1 payload_offset=8
cryptsetup_rejects ks1
refused "LUKS1 payload offset 8" ks1 4 'not a LUKS volume, or its headers are damaged' cat write attach dump

# ---- at or past the end of the backing ----------------------------------------------
for off in "$SIZE" $((SIZE + 4096)) 1099511627776; do
	forge l2 "end$off" segments.0.offset="\"$off\""
	refused "LUKS2 offset $off (backing $SIZE)" "end$off" 5 "data starts at byte $off" cat write attach
done
forge l2 fixbig segments.0.size="\"$((SIZE))\""
refused "LUKS2 fixed size $SIZE at offset 16 MiB" fixbig 5 "data segment is $SIZE bytes but the backing holds only" cat write attach

# ---- a fixed-size segment shorter than the backing --------------------------------
forge l2 fixsmall segments.0.size='"131072"'
grep -Eq '^[[:space:]]*length:[[:space:]]*131072 \[bytes\]' fixsmall.dump || fail "luksDump does not show the segment length"
bc cat fixsmall --key-file key >out 2>err || problem "fixed-size segment: cat failed: $(cat err)"
[ "$(stat -c %s out)" = 131072 ] || problem "fixed-size segment: cat gave $(stat -c %s out) bytes, the segment is 131072"
cmp -s out <(head -c 131072 data) || problem "fixed-size segment: cat gives the wrong data"
# Attached, it stays that size even when the backing grows and is resized.
bc attach fixsmall --key-file key --name fixsmall >/dev/null 2>err || problem "fixed-size segment: attach failed: $(cat err)"
# resize succeeds (the device already is as large as the header allows),
# says so, and asking for more than the segment is refused (no space).
truncate -s +8M fixsmall
bc resize fixsmall --json >resize.json 2>err || problem "fixed-size segment: resize failed: $(cat err)"
sz=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["size"])' resize.json 2>&1) || sz="unreadable ($(cat resize.json))"
[ "$sz" = 131072 ] || problem "fixed-size segment: resize reported the size $sz, not 131072"
got=0; bc resize fixsmall --size 262144 >/dev/null 2>err || got=$?
[ "$got" = 5 ] || problem "fixed-size segment: resize --size 262144 (past the segment) exited $got, expected 5: $(cat err)"
sz=$(bc status fixsmall --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
[ "$sz" = 131072 ] || problem "fixed-size segment: after the backing grew and resize, the size is $sz, not 131072"
bc detach fixsmall >/dev/null 2>&1 || problem "fixed-size segment: detach failed"

check_problems
exit 0
