#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# blockcrypt-generator (docs/blockcrypt-generator.8.md), run by hand into
# a temporary directory on a tab file with: a LUKS volume with a key file
# and discard,nofail; a LUKS volume with key none; a plain volume; a
# /dev/loopN backing with x-systemd.device-timeout=10s (and a name with a
# '-', which systemd escapes); a UUID= backing (crypttab's spelling); an rbd: backing (network-online); a noauto line; a line the parser refuses (a '/' in the name);
# a line it takes but whose unit cannot be made (a device path that is not
# normalized).  Checked: one blockcrypt-attach@NAME.service per good line,
# named as systemd-escape names it, DefaultDependencies=no, Type=notify,
# the ExecStart/ExecStop command lines (with --tab, quoted for systemd,
# when the tab is not the default), the backing's dependencies (BindsTo= +
# After= the .device unit that `systemd-escape --path` names, else
# RequiresMountsFor=), the key file's RequiresMountsFor=, Before=
# blockcrypt.target except for nofail, the limits of blockcrypt@.service;
# the blockcrypt.target.requires/ and .wants/ (nofail) symlinks, none for
# noauto, multi-user.target.wants/blockcrypt.target; the device drop-in
# with JobRunningTimeoutSec=10s; the bad lines reported as FILE:LINE and
# skipped; `systemd-analyze verify` clean on every unit (and able to
# complain: a broken copy is reported).  No tab file: nothing, exit 0;
# only noauto lines: the target is not pulled in.
. "$(dirname "$0")/functions.bash"
requires systemd-analyze systemd-escape
requires_root "the tab file is checked to be root's"

GEN=$(dirname "$BLOCKCRYPT")/generator/blockcrypt-generator
[ -x "$GEN" ] || fail "$GEN not built"
UNIT_DIR=${BLOCKCRYPT_UNIT_DIR:-$(cd "$(dirname "$BLOCKCRYPT")/.." && pwd)}
ONE=$UNIT_DIR/blockcrypt@.service
[ -f "$ONE" ] || fail "built unit $ONE not found (set BLOCKCRYPT_UNIT_DIR)"
TARGET_SRC=$TESTS_DIR/../data/systemd/blockcrypt.target
[ -f "$TARGET_SRC" ] || fail "$TARGET_SRC not found"

LOOP=/dev/loop7   # a name only: the generator does not open backings
TAB=$TEST_TMP/blockcrypttab
cat >"$TAB" <<EOF
# a comment, then the entries
luks   $TEST_TMP/luks.img   $TEST_TMP/keys/luks.key   discard,nofail
pass   $TEST_TMP/pass.img   none
plain  $TEST_TMP/plain.img  none      plain,cipher=aes-xts-plain64,key-size=512,hash=sha256
lo-op  $LOOP                -         x-systemd.device-timeout=10s
manual $TEST_TMP/manual.img none      noauto
bad/nm $TEST_TMP/x.img     none
odd    /dev//loop6          none
byuuid UUID=0123-ABCD       none
ceph   rbd:pool/image       none
EOF
mkdir out early late
"$GEN" --tab "$TAB" "$TEST_TMP/out" "$TEST_TMP/early" "$TEST_TMP/late" >gen.out 2>gen.err && st=0 || st=$?
note "generator: exit $st, stderr: $(cat gen.err)"
[ "$st" = 1 ] || problem "generator exit $st with a line whose unit cannot be made, expected 1"
[ ! -s gen.out ] || problem "generator wrote to stdout: $(cat gen.out)"
grep -q "$TAB:7: " gen.err || problem "the unparsable line 7 is not reported as $TAB:7: $(cat gen.err)"
grep -q "blockcrypt-generator: $TAB:8: odd: /dev//loop6: " gen.err ||
	problem "the unit-less line 8 is not reported as 'blockcrypt-generator: $TAB:8: odd: /dev//loop6: ...': $(cat gen.err)"
[ -z "$(find early late -mindepth 1)" ] || problem "files in the early/late directories: $(find early late -mindepth 1)"

unit_of() { echo "blockcrypt-attach@$(systemd-escape "$1").service"; }
[ "$(unit_of lo-op)" = 'blockcrypt-attach@lo\x2dop.service' ] || fail "systemd-escape lo-op gave $(unit_of lo-op)"
expected=$(for n in luks pass plain lo-op manual byuuid ceph; do unit_of "$n"; done | sort)
got=$(find out -maxdepth 1 -type f -printf '%f\n' | sort)
[ "$got" = "$expected" ] || problem "units made: $(echo "$got" | tr '\n' ' '), expected $(echo "$expected" | tr '\n' ' ')"

# key_of UNIT KEY: every value of KEY in out/UNIT, one a line.
key_of() { sed -n "s/^$2=//p" "out/$1"; }
has() { # UNIT KEY VALUE: KEY=VALUE is one of UNIT's lines
	key_of "$1" "$2" | grep -qxF -- "$3" || problem "$1: no $2=$3 (it has: $(key_of "$1" "$2" | tr '\n' '|'))"
}
BIN=
for n in luks pass plain lo-op manual byuuid ceph; do
	u=$(unit_of "$n")
	[ -f "out/$u" ] || continue
	has "$u" DefaultDependencies no
	has "$u" Type notify
	has "$u" NotifyAccess main
	start=$(key_of "$u" ExecStart)
	b=${start%% *}
	case $b in /*/blockcrypt) ;; *) problem "$u: ExecStart binary '$b' is not an absolute path to blockcrypt" ;; esac
	BIN=$b
	[ "$start" = "$b attach --from-tab $n --foreground --tab $TAB" ] ||
		problem "$u: ExecStart=$start, expected '$b attach --from-tab $n --foreground --tab $TAB'"
	[ "$(key_of "$u" ExecStop)" = "$b detach $n" ] || problem "$u: ExecStop=$(key_of "$u" ExecStop), expected '$b detach $n'"
	# The limits of the installed template.
	for k in LimitMEMLOCK LimitNOFILE OOMScoreAdjust TimeoutStopSec; do
		[ "$(key_of "$u" "$k")" = "$(sed -n "s/^$k=//p" "$ONE")" ] ||
			problem "$u: $k=$(key_of "$u" "$k"), blockcrypt@.service has $k=$(sed -n "s/^$k=//p" "$ONE")"
	done
	has "$u" TimeoutStartSec infinity
	has "$u" Conflicts umount.target
	grep -q "$n" <(key_of "$u" Description) || problem "$u: the Description does not name $n"
	[ "$n" = luks ] && continue
	key_of "$u" Before | tr ' ' '\n' | grep -qx blockcrypt.target || problem "$u: not Before=blockcrypt.target"
done
[ -n "$BIN" ] || fail "no unit to check"

# File backings: their mounts; the key file's too.  nofail: not before the target.
for n in luks pass plain manual; do
	has "$(unit_of "$n")" RequiresMountsFor "$TEST_TMP/$n.img"
	key_of "$(unit_of "$n")" BindsTo | grep -q . && problem "$(unit_of "$n"): a file backing with BindsTo="
done
has "$(unit_of luks)" RequiresMountsFor "$TEST_TMP/keys/luks.key"
key_of "$(unit_of luks)" Before | tr ' ' '\n' | grep -qx blockcrypt.target &&
	problem "$(unit_of luks): nofail, yet Before=blockcrypt.target (the boot would wait for it)"
# The device backing.
dev=$(systemd-escape --path --suffix=device "$LOOP")
lo=$(unit_of lo-op)
has "$lo" BindsTo "$dev"
has "$lo" After "$dev"
key_of "$lo" RequiresMountsFor | grep -q . && problem "$lo: a device backing with RequiresMountsFor=$(key_of "$lo" RequiresMountsFor)"
dropin=out/$dev.d/40-device-timeout.conf
if [ -f "$dropin" ]; then
	grep -qx '\[Unit\]' "$dropin" || problem "$dropin has no [Unit] section: $(cat "$dropin")"
	grep -qx 'JobRunningTimeoutSec=10s' "$dropin" || problem "$dropin: no JobRunningTimeoutSec=10s: $(cat "$dropin")"
else
	problem "no device-timeout drop-in $dropin (is x-systemd.device-timeout= parsed by the tab parser?): $(find out | tr '\n' ' ')"
fi
# crypttab's UUID= spelling: the udev link's device unit.
uu=$(systemd-escape --path --suffix=device /dev/disk/by-uuid/0123-ABCD)
has "$(unit_of byuuid)" BindsTo "$uu"
has "$(unit_of byuuid)" After "$uu"
# An RBD backing: the network, no mounts.
has "$(unit_of ceph)" Wants network-online.target
has "$(unit_of ceph)" After network-online.target
key_of "$(unit_of ceph)" RequiresMountsFor | grep -q . && problem "$(unit_of ceph): RequiresMountsFor=$(key_of "$(unit_of ceph)" RequiresMountsFor)"
[ "$(find out -name '*.device.d' | wc -l)" = 1 ] || problem "device drop-ins: $(find out -name '*.device.d' | tr '\n' ' '), expected only $dev.d"

# Who pulls what in.
link_check() { # DIR UNIT: out/DIR/UNIT is a symlink to ../UNIT
	[ -L "out/$1/$2" ] || { problem "no symlink out/$1/$2"; return; }
	[ "$(readlink "out/$1/$2")" = "../$2" ] || problem "out/$1/$2 points at $(readlink "out/$1/$2"), expected ../$2"
}
for n in pass plain lo-op byuuid ceph; do link_check blockcrypt.target.requires "$(unit_of "$n")"; done
link_check blockcrypt.target.wants "$(unit_of luks)"
[ ! -e "out/blockcrypt.target.requires/$(unit_of luks)" ] || problem "nofail entry luks is required by the target"
[ -z "$(find out -name "$(unit_of manual)" -path '*.target.*')" ] || problem "the noauto entry is pulled in: $(find out -path '*.target.*' -name "$(unit_of manual)")"
[ "$(find out/blockcrypt.target.requires -type l | wc -l)" = 5 ] || problem "blockcrypt.target.requires: $(ls out/blockcrypt.target.requires)"
[ -L out/multi-user.target.wants/blockcrypt.target ] || problem "blockcrypt.target is not pulled in by multi-user.target"

# systemd-analyze verify on each unit, the binary replaced by ours (verify
# wants it to exist).  Missing Documentation= files: the only complaint allowed.
mkdir units
cp "$TARGET_SRC" units/blockcrypt.target
for f in out/*.service; do sed "s|$BIN|$BLOCKCRYPT|g" "$f" >"units/$(basename "$f")"; done
docs=()
for uri in $(sed -n 's/^Documentation=//p' out/*.service "$TARGET_SRC" | tr ' ' '\n' | sort -u); do
	case $uri in file:*) [ -e "${uri#file:}" ] || docs+=("${uri#file:}") ;; esac
done
verify() { # FILE: systemd-analyze verify output, minus the missing-docs lines, in verify.out
	local d rc=0
	# (--man=no: the man: pages are not installed here; install-man.sh checks them)
	(cd units && timeout 60 systemd-analyze verify --man=no "./$1") >verify.raw 2>&1 || rc=$?
	cp verify.raw verify.out
	for d in "${docs[@]}"; do grep -vF "$d" verify.out >verify.tmp || true; mv verify.tmp verify.out; done
	return $rc
}
for f in units/*.service; do
	u=$(basename "$f")
	verify "$u" || problem "systemd-analyze verify $u failed: $(cat verify.raw)"
	[ ! -s verify.out ] || problem "systemd-analyze verify $u complains: $(cat verify.out)"
done
sed 's/^Type=notify/Type=notifyy/' "units/$(unit_of pass)" >units/broken@x.service
verify broken@x.service || true
grep -q notifyy verify.out || problem "systemd-analyze verify did not report a broken Type= (output: $(cat verify.raw))"

# A tab path systemd must be told literally: blanks, '%', '$'.
mkdir "odd dir"
TAB2="$TEST_TMP/odd dir/tab%1\$X"
printf 'pass %s none\n' "$TEST_TMP/pass.img" >"$TAB2"
mkdir out2
"$GEN" --tab "$TAB2" out2 2>gen2.err || problem "generator on $TAB2 failed: $(cat gen2.err)"
want="$BIN attach --from-tab pass --foreground --tab \"$TEST_TMP/odd dir/tab%%1\$\$X\""
[ "$(sed -n 's/^ExecStart=//p' "out2/$(unit_of pass)")" = "$want" ] ||
	problem "ExecStart for an odd tab path: $(sed -n 's/^ExecStart=//p' "out2/$(unit_of pass)"), expected $want"

# Only noauto lines: units, but nothing pulls them or the target in.
printf 'manual %s none noauto\n' "$TEST_TMP/manual.img" >tab3
mkdir out3
"$GEN" --tab "$TEST_TMP/tab3" out3 2>gen3.err || problem "generator on a noauto-only tab failed: $(cat gen3.err)"
[ -f "out3/$(unit_of manual)" ] || problem "no unit for the noauto entry"
[ -z "$(find out3 -type l)" ] || problem "symlinks for a noauto-only tab: $(find out3 -type l | tr '\n' ' ')"

# No tab file: nothing to do, no error.
mkdir out4
"$GEN" --tab "$TEST_TMP/no-such-tab" out4 2>gen4.err || problem "generator without a tab file exited non-zero: $(cat gen4.err)"
[ -z "$(ls -A out4)" ] || problem "generator without a tab file made: $(ls -A out4)"
# Wrong arguments: usage, exit 1.
"$GEN" >/dev/null 2>usage.err && problem "generator without a directory exited 0"
grep -q '^usage: blockcrypt-generator' usage.err || problem "no usage line: $(cat usage.err)"

check_problems
note "generator: 7 units, escaped names, dependencies, links, drop-in and verify all as expected"
exit 0
