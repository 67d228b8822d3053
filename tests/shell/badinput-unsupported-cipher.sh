#!/usr/bin/env bash
# Valid LUKS headers whose data cipher blockcrypt's sector engine cannot do
# (it does AES only): a LUKS2 volume whose data segment says
# serpent-xts-plain64 (key slots still AES, both header copies rewritten
# with correct checksums, so cryptsetup accepts the header and the key) and
# a LUKS1 header saying twofish.  cat and write must exit 11 (unsupported)
# with one line and leave the backing byte-identical -- never decrypt with
# the wrong cipher, never blame the disk (7) -- and dump --json must say
# "supported": false (blockcrypt(8): whether blockcrypt can read the data).
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum dd /usr/bin/python3

printf 'unsupported' >key
random_file data 4096

# set_luks2_cipher FILE SPEC: rewrite segment 0's cipher in both LUKS2
# header copies, recomputing their sha256 checksums.
cat >set_cipher.py <<'EOF'
import hashlib, json, struct, sys
path, spec = sys.argv[1], sys.argv[2]
with open(path, "r+b") as f:
    hdr_size = struct.unpack(">Q", f.read(16)[8:16])[0]
    for off in (0, hdr_size):
        f.seek(off)
        bin_hdr = bytearray(f.read(4096))
        assert bin_hdr[:6] in (b"LUKS\xba\xbe", b"SKUL\xba\xbe"), "no LUKS2 header at %d" % off
        area = f.read(hdr_size - 4096)
        meta = json.loads(area.split(b"\0", 1)[0])
        meta["segments"]["0"]["encryption"] = spec
        new = json.dumps(meta, separators=(",", ":")).encode()
        new += b"\0" * (len(area) - len(new))
        bin_hdr[448:512] = bytes(64)
        bin_hdr[448:480] = hashlib.sha256(bytes(bin_hdr) + new).digest()
        f.seek(off)
        f.write(bytes(bin_hdr) + new)
EOF

# refused LABEL FILE: cat and write exit 11, FILE unchanged, dump --json
# says unsupported.
refused() {
	local label=$1 f=$2 before cmd got supported
	before=$(sha "$f")
	for cmd in cat write; do
		got=0; bc $cmd "$f" --key-file key <data >out 2>err || got=$?
		note "$label: $cmd: exit $got: $(cat err)"
		[ "$got" = 11 ] || problem "$label: $cmd: expected exit 11, got $got: $(cat err)"
		[ "$(wc -l <err)" = 1 ] || problem "$label: $cmd: expected one error line, got: $(cat err)"
		[ "$cmd" = write ] || [ ! -s out ] || problem "$label: cat wrote $(wc -c <out) bytes of data"
	done
	bc dump --json "$f" >dump.json 2>err || problem "$label: dump --json failed: $(cat err)"
	supported=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["supported"])' dump.json) ||
		problem "$label: dump --json is not valid JSON with a 'supported' field"
	[ "$supported" = False ] || problem "$label: dump --json says \"supported\": $supported"
	[ "$(sha "$f")" = "$before" ] || problem "$label: the backing was modified"
}

# LUKS2: data segment serpent, key slots AES.
bc format l2 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" >/dev/null 2>&1
/usr/bin/python3 set_cipher.py l2 serpent-xts-plain64
cryptsetup luksDump l2 | grep -q 'cipher: serpent-xts-plain64' || fail "could not rewrite the LUKS2 segment cipher"
cryptsetup open --test-passphrase --key-file key l2 || fail "cryptsetup no longer accepts the patched LUKS2 header"
refused "LUKS2 serpent data segment" l2

# LUKS1: cipher-name field (offset 8, 32 bytes) says twofish.
bc format l1 --type luks1 --batch --key-file key --size 20M --no-wipe "${FAST_KDF[@]}" >/dev/null 2>&1
{ printf twofish; head -c 25 /dev/zero; } | dd of=l1 bs=1 seek=8 conv=notrunc status=none
cryptsetup luksDump l1 | grep -q '^Cipher name:[[:space:]]*twofish$' || fail "could not rewrite the LUKS1 cipher name"
refused "LUKS1 twofish" l1

check_problems
exit 0
