#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest half of tests/shell/vm-dmcrypt-oracle.sh (busybox sh, run by
# tests/vm/vm.sh): the guest kernel's dm-crypt and dm-integrity as the
# oracle.  /vm/cases lists what to do, one case per line:
#   h2g NAME DEV SHA256 OPEN-ARGS...   blockcrypt made and wrote DEV: open it
#                                      with dm-crypt, the first 8 MiB must
#                                      hash to SHA256
#   g2h NAME DEV luks|plain ARGS...    make (luks: luksFormat ARGS; plain:
#                                      open with ARGS) and write 8 MiB of
#                                      random data; print "G2H NAME SHA256"
#   fsh2g NAME DEV                     blockcrypt's LUKS2 volume holds ext4
#                                      with the files in /vm/NAME.sha256:
#                                      e2fsck, mount, check them
#   fsg2h NAME DEV                     make LUKS2 + ext4 with random files;
#                                      print "FSG2H NAME FILE SHA256" each
#   h2gp, g2hp                         as h2g and g2h, but /vm/key is a
#                                      passphrase given on standard input
#                                      (plain mode hashes it)
#   integ NAME DEV ARGS...             luksFormat ARGS (an integrity
#                                      profile), open, write: the recipe of
#                                      the authenticated volumes
# The key (passphrase, or a plain volume's raw key) is /vm/key.  Every
# check prints "ok: ..." or "FAIL: ..."; the script exits 1 if any failed.
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
KDF="--pbkdf pbkdf2 --pbkdf-force-iterations 1000"
MiB8="bs=1M count=8"

for m in dm_crypt dm_integrity; do modprobe "$m" || bad "modprobe $m"; done

# open_key ARGS...: cryptsetup open ARGS with /vm/key as the key file, or,
# when $stdin_key is 1, as a passphrase on standard input (which plain
# mode hashes, with its default hash unless ARGS say otherwise).
stdin_key=0
open_key() {
	if [ "$stdin_key" = 1 ]; then
		/hostbin/cryptsetup open "$@" --key-file - </vm/key
	else
		/hostbin/cryptsetup open "$@" --key-file /vm/key
	fi
}

h2g() { # NAME DEV SHA OPEN-ARGS...
	name=$1 dev=$2 want=$3; shift 3
	if ! open_key "$@" "$dev" "$name"; then
		bad "h2g $name: /hostbin/cryptsetup open $* failed"; return
	fi
	got=$(dd if="/dev/mapper/$name" $MiB8 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] && ok "h2g $name: dm-crypt reads what blockcrypt wrote" ||
		bad "h2g $name: dm-crypt reads $got, blockcrypt wrote $want"
	/hostbin/cryptsetup close "$name" || bad "h2g $name: close failed"
}

g2h() { # NAME DEV luks|plain ARGS...
	name=$1 dev=$2 kind=$3; shift 3
	if [ "$kind" = luks ]; then
		# shellcheck disable=SC2086 # KDF is a list of words
		/hostbin/cryptsetup luksFormat -q $KDF "$@" --key-file /vm/key "$dev" || { bad "g2h $name: luksFormat $* failed"; return; }
		/hostbin/cryptsetup open --key-file /vm/key "$dev" "$name" || { bad "g2h $name: open failed"; return; }
	else
		open_key "$@" "$dev" "$name" || { bad "g2h $name: open $* failed"; return; }
	fi
	dd if=/dev/urandom of=/tmp/data $MiB8 2>/dev/null
	/hostbin/dd if=/tmp/data of="/dev/mapper/$name" bs=1M oflag=direct conv=fsync 2>/dev/null ||
		bad "g2h $name: writing to dm-crypt failed"
	echo "G2H $name $(sha256sum </tmp/data | cut -d' ' -f1)"
	/hostbin/cryptsetup close "$name" || bad "g2h $name: close failed"
}

fsh2g() { # NAME DEV
	name=$1 dev=$2
	/hostbin/cryptsetup open --key-file /vm/key "$dev" "$name" || { bad "fsh2g $name: open failed"; return; }
	/hostbin/e2fsck -f -n "/dev/mapper/$name" >/tmp/fsck.out 2>&1 && ok "fsh2g $name: /hostbin/e2fsck -f -n is clean" ||
		bad "fsh2g $name: /hostbin/e2fsck -f -n: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"
	mkdir -p "/mnt/$name"
	if mount -t ext4 -o ro "/dev/mapper/$name" "/mnt/$name"; then
		(cd "/mnt/$name" && sha256sum -c "/vm/$name.sha256") >/tmp/sum.out 2>&1 &&
			ok "fsh2g $name: $(wc -l <"/vm/$name.sha256") files written by the host read back" ||
			bad "fsh2g $name: files differ: $(grep -v ': OK' /tmp/sum.out | head -n 3 | tr '\n' ' ')"
		umount "/mnt/$name"
	else
		bad "fsh2g $name: mount failed: $(dmesg | tail -n 2 | tr '\n' ' ')"
	fi
	/hostbin/cryptsetup close "$name" || bad "fsh2g $name: close failed"
}

fsg2h() { # NAME DEV
	name=$1 dev=$2
	# shellcheck disable=SC2086
	/hostbin/cryptsetup luksFormat -q --type luks2 $KDF --key-file /vm/key "$dev" || { bad "fsg2h $name: luksFormat failed"; return; }
	/hostbin/cryptsetup open --key-file /vm/key "$dev" "$name" || { bad "fsg2h $name: open failed"; return; }
	/hostbin/mke2fs -q -t ext4 "/dev/mapper/$name" || { bad "fsg2h $name: mke2fs failed"; return; }
	mkdir -p "/mnt/$name"
	mount -t ext4 "/dev/mapper/$name" "/mnt/$name" || { bad "fsg2h $name: mount failed: $(dmesg | tail -n 2 | tr '\n' ' ')"; return; }
	mkdir "/mnt/$name/dir"
	for f in a dir/b c; do
		dd if=/dev/urandom of="/mnt/$name/$f" bs=64k count=$((${#f} * 7 + 3)) 2>/dev/null
		echo "FSG2H $name $f $(sha256sum <"/mnt/$name/$f" | cut -d' ' -f1)"
	done
	umount "/mnt/$name" || bad "fsg2h $name: umount failed"
	/hostbin/cryptsetup close "$name" || bad "fsg2h $name: close failed"
}

integ() { # NAME DEV ARGS...
	name=$1 dev=$2; shift 2
	# shellcheck disable=SC2086
	/hostbin/cryptsetup luksFormat -q --type luks2 $KDF "$@" --integrity-no-wipe --key-file /vm/key "$dev" ||
		{ bad "integ $name: luksFormat $* failed"; return; }
	/hostbin/cryptsetup open --key-file /vm/key "$dev" "$name" || { bad "integ $name: open failed"; return; }
	/hostbin/dd if=/dev/urandom of="/dev/mapper/$name" bs=1M count=1 oflag=direct 2>/dev/null &&
		ok "integ $name: made and written by the kernel ($*)" || bad "integ $name: write failed"
	/hostbin/cryptsetup close "$name" || bad "integ $name: close failed"
}

while read -r what name dev rest; do
	[ -n "$what" ] || continue
	# shellcheck disable=SC2086 # the rest of the line is a list of arguments
	set -- $rest
	stdin_key=0
	case $what in
	h2g|g2h|fsh2g|fsg2h|integ) "$what" "$name" "$dev" "$@" ;;
	h2gp|g2hp) stdin_key=1; "${what%p}" "$name" "$dev" "$@" ;;
	*) bad "unknown case: $what" ;;
	esac
done </vm/cases
exit $failed
