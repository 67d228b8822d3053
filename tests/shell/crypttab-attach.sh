#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A crypttab(5) as a Debian system has it attaches unchanged with
# `attach --all --tab`, and every volume reads what cryptsetup's (and
# systemd-cryptsetup's) reading of its line gives:
#  - LUKS2 with a key file and discard,nofail; LUKS2 with none, whose
#    passphrase comes from systemd's password agent (a fake one, as at
#    boot: no terminal, a private /run/systemd); LUKS with keyfile-offset=,
#    keyfile-size= (the passphrase is that part of the file), and
#    systemd-only options (x-systemd.device-timeout=10s, _netdev, ...):
#    each noted and ignored; an unknown option: a warning, still attached;
#    what they serve is what the python dm-crypt oracle decrypts with the
#    volume key cryptsetup gives for the line's passphrase;
#  - plain with cipher=aes-cbc-essiv:sha256,size=256,hash=sha256 and a key
#    file (systemd hashes it when hash= is given), and size=128 (crypttab's
#    size= is the key size in bits): judged against python's hashlib and
#    the dm-crypt oracle;
#  - a plain line without the word plain (systemd: not LUKS, so plain);
#  - lines it cannot honour are refused with their line number (bitlk,
#    swap, an unknown option on a plain line, size=64M: the data size
#    blockcrypt's tab file once meant), a missing backing is
#    reported, and the other lines still attach; a nofail line that fails
#    does not make the run fail, any other does (exit code).
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3 nbdcopy cryptsetup sha256sum unshare nsenter setsid
requires_root "a mount namespace for the password agent"
requires_python_cryptography

sha_hex() { /usr/bin/python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest()[:int(sys.argv[2])])' "$@"; }
MiB=$((1024 * 1024))

# LUKS2, key file.
new_volume luks.img luks.key
random_file luks.data $MiB
bc write luks.img --key-file luks.key <luks.data 2>err || fail "write luks.img: $(cat err)"
# LUKS1 whose passphrase is 20 bytes at offset 16 of a longer file.
random_file long.key 100
tail -c +17 long.key | head -c 20 >part.key
new_volume luks1.img part.key --type luks1
random_file luks1.data $MiB
bc write luks1.img --key-file part.key <luks1.data 2>err || fail "write luks1.img: $(cat err)"
cp luks.img luks-t.img
# LUKS2 with no key file: the passphrase comes from the agent.
VOLUME_SIZE=20M new_volume agent.img agent.key
random_file agent.data $MiB
bc write agent.img --key-file agent.key <agent.data 2>err || fail "write agent.img: $(cat err)"
# Plain, hash=sha256 over the key file (systemd-cryptsetup's reading).
printf 'plain passphrase in a key file' >plain.key
for n in 256 128 infer; do
	random_file "plain-$n.data" $((2 * MiB))
	bits=$n
	[ "$n" = infer ] && bits=256
	$ORACLE encrypt --cipher aes-cbc-essiv:sha256 --key-hex "$(sha_hex plain.key $((bits / 4)))" \
		"plain-$n.data" "plain-$n.img"
done
# The plain volume with an unknown option must come out unchanged.
cp plain-256.img plain-bad.img
before_bad=$(sha plain-bad.img)

cat >crypttab <<TAB
# <target name> <source device> <key file> <options>
luks     $TEST_TMP/luks.img     $TEST_TMP/luks.key  luks,discard,nofail
luks1    $TEST_TMP/luks1.img    $TEST_TMP/long.key  luks,keyfile-offset=16,keyfile-size=20,x-systemd.device-timeout=10s,_netdev,same-cpu-crypt
luks-t   $TEST_TMP/luks-t.img   $TEST_TMP/luks.key  tries=3,timeout=90s,frobnicate
p256     $TEST_TMP/plain-256.img $TEST_TMP/plain.key plain,cipher=aes-cbc-essiv:sha256,size=256,hash=sha256
p128     $TEST_TMP/plain-128.img $TEST_TMP/plain.key plain,cipher=aes-cbc-essiv:sha256,size=128,hash=sha256
pinfer   $TEST_TMP/plain-infer.img $TEST_TMP/plain.key cipher=aes-cbc-essiv:sha256,size=256,hash=sha256,x-systemd.automount
gone     $TEST_TMP/absent.img   $TEST_TMP/luks.key  luks,nofail
gone2    UUID=00000000-0000-4000-8000-000000000000 $TEST_TMP/luks.key luks
bl       $TEST_TMP/luks.img     none                bitlk
sw       /dev/null              /dev/urandom        swap
pbad     $TEST_TMP/plain-bad.img $TEST_TMP/plain.key plain,cipher=aes-cbc-essiv:sha256,size=256,hash=sha256,ofset=8
old      $TEST_TMP/plain-bad.img $TEST_TMP/plain.key plain,size=64M
agent    $TEST_TMP/agent.img    none
TAB
chmod 0644 crypttab
# As at boot: no terminal, systemd's agents, one question (for agent).
. "$TESTS_DIR/shell/askpass-lib.bash"
askpass_ns
nsenter -t "$NS_PID" -m python3 "$ASK_AGENT" "$ASK" "$TEST_TMP/asked.json" "+$(cat agent.key)" 2>agent.err &
AGENT=$!
wait_for 10 test -e asked.json.ready || fail "the fake agent did not start: $(cat agent.err)"
rc=0
ns setsid "${INVOCATION[@]}" "$BLOCKCRYPT" attach --all --tab "$TEST_TMP/crypttab" </dev/null >out 2>err || rc=$?
cleanup_fn "bc detach --all 2>/dev/null"
wait "$AGENT" || fail "the fake agent failed: $(cat agent.err)"
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if len(r) == 1 and "agent" in r[0]["ask"]["Message"] else 1)' asked.json ||
	fail "the agent was not asked exactly once, for agent: $(cat asked.json)"
note "attach --all: exit $rc; stderr:"
sed 's/^/#   /' err >&2
[ "$rc" != 0 ] || fail "attach --all exited 0 though lines were refused and gone2 (not nofail) is missing"

# What was said, line by line.
grep -q "note: 'x-systemd.device-timeout" err &&
	fail "x-systemd.device-timeout= is blockcrypt's (for the generator): it must not be noted as ignored"
grep -q "crypttab:3: note: '_netdev' is for systemd" err || fail "no note for _netdev on line 3"
grep -q "crypttab:3: note: 'same-cpu-crypt'" err || fail "no note for same-cpu-crypt"
grep -q "crypttab:4: warning: unknown option 'frobnicate' ignored" err || fail "no warning for frobnicate"
grep -q "crypttab:7: note: 'x-systemd.automount'" err || fail "no note for x-systemd.automount"
grep -q "crypttab:10: bitlk: BitLocker volumes are not supported" err || fail "bitlk line not refused with its reason"
grep -q "crypttab:11: swap: " err || fail "swap line not refused"
grep -q "crypttab:12: unknown option on a plain volume's line" err || fail "unknown option on a plain line not refused"
grep -q "crypttab:13: size= is crypttab's key size in bits" err || fail "size=64M (a data size) not refused"
grep -q "crypttab:8: gone: .*absent.img.*nofail" err || fail "the missing nofail backing is not reported as such"
grep -q "crypttab:9: gone2: .*by-uuid/00000000-0000-4000-8000-000000000000" err ||
	fail "UUID= is not looked up as /dev/disk/by-uuid/"

# What was attached reads what it must.
attached=$(bc list | awk 'NR > 1 {print $1}' | sort | tr '\n' ' ')
[ "$attached" = "agent luks luks-t luks1 p128 p256 pinfer " ] || fail "attached: '$attached'"
check() { # NAME DATA
	nbdcopy "$(nbd_uri "$1")" "$1.nbd" || fail "$1: nbdcopy failed"
	head -c "$(stat -c %s "$2")" "$1.nbd" | cmp -s - "$2" || fail "$1: reads other data than its line gives"
}
check luks luks.data
check agent agent.data
check luks1 luks1.data
# The LUKS volumes hold that data as cryptsetup defines it: decrypted
# independently with the volume key cryptsetup gives for the passphrase
# each line names (luks1's: bytes 16..35 of long.key).
for v in luks:luks.key agent:agent.key luks1:part.key; do
	name=${v%%:*} key=${v#*:}
	$ORACLE decrypt --cipher aes-xts-plain64 --key-hex "$(volume_key "$name.img" "$key")" \
		--sector-size "$(sector_size "$name.img")" --offset "$(data_offset "$name.img")" --length $MiB \
		"$name.img" "$name.oracle" || fail "$name: the oracle failed"
	cmp -s "$name.oracle" "$name.data" || fail "$name: cryptsetup's volume key decrypts other data"
done
check p256 plain-256.data
check p128 plain-128.data
check pinfer plain-infer.data
# discard: the LUKS2 volume with `discard` takes TRIM (the export says so).
nbdinfo --json "$(nbd_uri luks)" | grep -q '"can_trim": true' || fail "luks: discard not honoured"
nbdinfo --json "$(nbd_uri luks-t)" | grep -q '"can_trim": false' || fail "luks-t: TRIM allowed without discard"
bc detach --all 2>err || fail "detach --all: $(cat err)"
[ "$(sha plain-bad.img)" = "$before_bad" ] || fail "the refused plain volume changed"

# A tab whose only failures are nofail lines: exit 0.
grep -E '^(luks|gone) ' crypttab >tab2
chmod 0644 tab2
bc attach --all --tab tab2 >/dev/null 2>err || fail "a failing nofail line made attach --all fail: $(cat err)"
grep -q "gone: .*nofail" err || fail "the nofail failure was not reported"
bc detach --all 2>/dev/null
exit 0
