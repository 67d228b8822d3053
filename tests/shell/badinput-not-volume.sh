#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Things that are not volumes: a file of random bytes and a file of zeros
# give exit 4 ("not a volume") for every command that reads a header and are
# left byte-identical; an empty and a tiny file are "not a volume" (4) or
# "too small" (5), never an I/O error; a missing backing gives exit 8 and is
# not created; a missing key file (or new key file, or header backup) gives
# exit 8 and changes nothing.
. "$(dirname "$0")/functions.bash"
requires sha256sum

printf 'some passphrase' >key
printf 'other passphrase' >key2
random_file rnd $((20 * 1048576))
head -c $((20 * 1048576)) /dev/zero >zero
: >empty
head -c 100 /dev/zero >tiny
random_file data 4096
# problem MSG: record a failure but keep checking the rest (reported at the end).

# run_all CODE VOLUME: every command that needs a header on VOLUME exits CODE.
run_all() {
	local want=$1 v=$2 before
	before=$(sha "$v")
	expect_exit "$want" bc cat "$v" --key-file key
	expect_exit "$want" bc dump "$v"
	expect_exit "$want" bc dump --json "$v"
	expect_exit "$want" bc write "$v" --key-file key <data
	expect_exit "$want" bc add-key "$v" --key-file key --new-key-file key2 "${FAST_KDF[@]}"
	expect_exit "$want" bc change-key "$v" --key-file key --new-key-file key2 "${FAST_KDF[@]}"
	expect_exit "$want" bc remove-key "$v" --key-file key --batch
	expect_exit "$want" bc remove-key "$v" --key-slot 0 --batch
	expect_exit "$want" bc erase "$v" --batch
	expect_exit "$want" bc repair "$v"
	expect_exit "$want" bc header-backup "$v" "$v.hdr"
	[ ! -e "$v.hdr" ] || fail "header-backup of non-volume $v created $v.hdr"
	[ "$(sha "$v")" = "$before" ] || fail "$v was modified"
}

run_all 4 rnd
note "random file: $ERR"
run_all 4 zero
note "zero file: $ERR"

# An empty or 100-byte file holds no header: not a volume (4) or too small
# (5).  An I/O error (7) would send the user looking for a failing disk.
for f in empty tiny; do
	before=$(sha $f)
	for cmd in "cat $f --key-file key" "dump $f"; do
		got=0; bc $cmd >/dev/null 2>err || got=$?
		note "blockcrypt $cmd: exit $got: $(cat err)"
		case $got in 4|5) ;; *) problem "blockcrypt $cmd: expected exit 4 or 5, got $got: $(cat err)" ;; esac
		[ "$(wc -l <err)" = 1 ] || problem "blockcrypt $cmd: expected one error line, got: $(cat err)"
	done
	[ "$(sha $f)" = "$before" ] || fail "$f was modified"
done

# A missing backing: exit 8, and nothing gets created.
for cmd in "cat missing --key-file key" "dump missing" "dump --json missing" \
	"write missing --key-file key" \
	"add-key missing --key-file key --new-key-file key2" \
	"change-key missing --key-file key --new-key-file key2" \
	"remove-key missing --key-file key" "remove-key missing --key-slot 0 --batch" \
	"erase missing --batch" "repair missing" "header-backup missing missing.hdr" \
	"header-restore missing rnd --batch" \
	"format missing --batch --key-file key"; do
	expect_exit 8 bc $cmd <data
	[ ! -e missing ] && [ ! -e missing.hdr ] || fail "blockcrypt $cmd created a file"
done
note "missing backing: $ERR"

# A missing key file (or new key file): exit 8, the volume is unchanged.
bc format vol --batch --key-file key --size 20M "${FAST_KDF[@]}" 2>/dev/null
before=$(sha vol)
for cmd in "cat vol --key-file nokey" "write vol --key-file nokey" \
	"add-key vol --key-file nokey --new-key-file key2" \
	"add-key vol --key-file key --new-key-file nokey" \
	"change-key vol --key-file nokey --new-key-file key2" \
	"change-key vol --key-file key --new-key-file nokey" \
	"remove-key vol --key-file nokey" "remove-key vol --key-file nokey --batch" \
	"header-restore vol nohdr --batch"; do
	expect_exit 8 bc $cmd <data
	[ "$(sha vol)" = "$before" ] || fail "blockcrypt $cmd modified the volume"
	[ ! -e nokey ] && [ ! -e nohdr ] || fail "blockcrypt $cmd created a file"
done
note "missing key file: $ERR"
expect_exit 8 bc format newvol --size 20M --batch --key-file nokey
[ ! -e newvol ] || fail "format with a missing key file created the backing"
check_problems
exit 0
