#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Proves that blockcrypt and QEMU's LUKS1 driver are interchangeable, for
# both of QEMU's usual cipher setups (aes-256 xts-plain64 and aes-256
# cbc-essiv:sha256): data qemu-img writes into a LUKS image reads back
# through `blockcrypt cat` byte for byte; data `blockcrypt write` puts there
# (whole device, then a partial overwrite ending mid-sector) reads back
# through qemu-img byte for byte; and `blockcrypt dump --json` describes
# the image as qemu-img info does (type, cipher, key size, offset, UUID).
. "$(dirname "$0")/functions.bash"
requires qemu-img /usr/bin/python3

SIZE=$((32 * 1024 * 1024))
printf 'qemu interop passphrase' >pass
SECRET=(--object "secret,id=sec0,file=pass")

# json_get FILE KEY...: print d[KEY1][KEY2]... of the JSON document in FILE.
json_get() {
	/usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    d = d[k]
print(d)' "$@"
}

# qemu_read IMG OUT: the decrypted image, as QEMU sees it.
qemu_read() {
	qemu-img convert "${SECRET[@]}" --image-opts \
		"driver=luks,key-secret=sec0,file.filename=$1" -O raw "$2"
}

# qemu_create IMG OPTIONS: qemu-img create -f luks.  QEMU 7.2 as patched by
# Debian fails its PBKDF benchmark at random on fast machines with "Unable
# to get accurate CPU usage" (fixed upstream by "crypto: fix bogus error
# benchmarking pbkdf on fast machines"); retry that error only.
qemu_create() {
	local _
	for _ in 1 2 3 4 5 6 7 8; do
		rm -f "$1"
		if qemu-img create -q -f luks "${SECRET[@]}" \
			-o "key-secret=sec0,$2,iter-time=10" "$1" "$SIZE" 2>create.err; then
			return 0
		fi
		grep -q 'Unable to get accurate CPU usage' create.err ||
			fail "qemu-img create -o $2 failed: $(cat create.err)"
	done
	fail "qemu-img create -o $2 kept failing: $(cat create.err)"
}

run_case() { # NAME WANT_CIPHER WANT_KEY_BITS QEMU_CREATE_OPTIONS
	local name=$1 want_cipher=$2 want_bits=$3 opts=$4 img
	img=$name.img
	note "$name: qemu-img create -o $opts"
	qemu_create "$img" "$opts"

	# The header as QEMU and blockcrypt describe it.
	qemu-img info --output=json "$img" >qinfo.json
	bc dump --json "$img" >bcinfo.json 2>bc.err ||
		fail "$name: blockcrypt dump failed: $(cat bc.err)"
	[ "$(json_get bcinfo.json type)" = luks1 ] ||
		fail "$name: dump --json type is '$(json_get bcinfo.json type)', not luks1"
	[ "$(json_get bcinfo.json cipher)" = "$want_cipher" ] ||
		fail "$name: dump --json cipher is '$(json_get bcinfo.json cipher)', not $want_cipher"
	[ "$(json_get bcinfo.json key_bits)" = "$want_bits" ] ||
		fail "$name: dump --json key_bits is $(json_get bcinfo.json key_bits), not $want_bits"
	[ "$(json_get bcinfo.json data_offset)" = "$(json_get qinfo.json format-specific data payload-offset)" ] ||
		fail "$name: data_offset $(json_get bcinfo.json data_offset) != qemu payload-offset $(json_get qinfo.json format-specific data payload-offset)"
	[ "$(json_get bcinfo.json uuid)" = "$(json_get qinfo.json format-specific data uuid)" ] ||
		fail "$name: uuid differs from qemu-img info's"

	# QEMU writes, blockcrypt reads.
	random_file qemu.raw "$SIZE"
	qemu-img convert -n "${SECRET[@]}" --target-image-opts -f raw qemu.raw \
		"driver=luks,key-secret=sec0,file.filename=$img"
	bc cat "$img" --key-file pass >bc-cat.raw 2>bc.err ||
		fail "$name: blockcrypt cat failed: $(cat bc.err)"
	cmp bc-cat.raw qemu.raw || fail "$name: blockcrypt cat differs from what qemu-img wrote"

	# blockcrypt writes the whole device, QEMU reads.
	random_file bc.raw "$SIZE"
	bc write "$img" --key-file pass <bc.raw 2>bc.err ||
		fail "$name: blockcrypt write failed: $(cat bc.err)"
	qemu_read "$img" qemu-out.raw
	cmp qemu-out.raw bc.raw || fail "$name: qemu-img reads back something else than blockcrypt wrote"

	# A partial overwrite ending mid-sector keeps the rest of the device.
	local part=$((5 * 1024 * 1024 + 1000))
	random_file part.raw "$part"
	bc write "$img" --key-file pass <part.raw 2>bc.err ||
		fail "$name: blockcrypt write failed: $(cat bc.err)"
	{ cat part.raw; tail -c +$((part + 1)) bc.raw; } >want.raw
	qemu_read "$img" qemu-out.raw
	cmp qemu-out.raw want.raw || fail "$name: after a partial blockcrypt write qemu-img reads something else"
}

# aes-256 in XTS mode is a 512-bit key (two AES-256 keys).
run_case xts aes-xts-plain64 512 cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64
run_case essiv aes-cbc-essiv:sha256 256 cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256
