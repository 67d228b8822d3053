#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest half of tests/shell/vm-nbd-kernel.sh (busybox sh, run by
# tests/vm/vm.sh): the Linux kernel's NBD client against blockcrypt
# attach --listen on the host (10.0.2.2 from here).  /vm/params sets PORT,
# NAME (the export), HOST_SHA (of the first 4 MiB the host wrote),
# DATA_MIB (the device's size), and TLS_PORT and TVOL (an export that
# requires TLS; its CA is /vm/ca-cert.pem).  Every check prints "ok: ..." or
# "FAIL: ..."; the script exits 1 if any failed.  "READY-DETACH" tells the
# host to detach the volume now; the guest then waits for the kernel to
# see it gone.
. /vm/params
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
NBD=/dev/nbd0
modprobe nbd nbds_max=2 || { echo "FAIL: modprobe nbd"; exit 1; }
connect() { # extra /hostbin/nbd-client options...
	/hostbin/nbd-client 10.0.2.2 "$PORT" "$NBD" -N "$NAME" "$@" >/tmp/nbd.out 2>&1 ||
		{ bad "/hostbin/nbd-client $*: $(tail -n 2 /tmp/nbd.out | tr '\n' ' ')"; return 1; }
}
disconnect() { /hostbin/nbd-client -d "$NBD" >/dev/null 2>&1 || bad "/hostbin/nbd-client -d failed"; sleep 0.5; }
sum() { sha256sum | cut -d' ' -f1; }

# 1. What the host wrote, read with O_DIRECT through the kernel client.
connect || exit 1
size=$(blockdev --getsize64 "$NBD")
[ "$size" = $((DATA_MIB << 20)) ] && ok "the kernel sees $DATA_MIB MiB" || bad "the kernel sees $size bytes, want $((DATA_MIB << 20))"
got=$(/hostbin/dd if="$NBD" bs=1M count=4 iflag=direct 2>/dev/null | sum)
[ "$got" = "$HOST_SHA" ] && ok "O_DIRECT read of what the host wrote" || bad "read $got, the host wrote $HOST_SHA"

# 2. TRIM (blkdiscard) of the host's 4 MiB at 0: the old data is gone.
/hostbin/blkdiscard -o 0 -l $((4 << 20)) "$NBD" && ok "blkdiscard of 4 MiB" || bad "blkdiscard failed"
got=$(/hostbin/dd if="$NBD" bs=1M count=4 iflag=direct 2>/dev/null | sum)
[ "$got" != "$HOST_SHA" ] && ok "the discarded range no longer reads as the host's data" ||
	bad "the discarded range still reads as the host's data (TRIM did not reach the backing)"

# recheck WHAT: unmount, e2fsck -f -n, reconnect on one connection,
# mount read-only, and every file in /tmp/files.sha256 must read back.
recheck() {
	umount /mnt/v || bad "umount ($1) failed"
	/hostbin/e2fsck -f -n "$NBD" >/tmp/fsck.out 2>&1 && ok "e2fsck -f -n $1" ||
		bad "e2fsck $1: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"
	disconnect
	connect || exit 1
	mount -t ext4 -o ro "$NBD" /mnt/v || bad "mount after reconnecting ($1) failed"
	(cd /mnt/v && sha256sum -c /tmp/files.sha256) >/tmp/sum.out 2>&1 &&
		ok "$(wc -l </tmp/files.sha256) files read back after reconnecting ($1)" ||
		bad "files differ after reconnecting ($1): $(grep -v ': OK' /tmp/sum.out | head -n 2 | tr '\n' ' ')"
	umount /mnt/v
	disconnect
}

# 3. ext4 (on all but the last 32 MiB, which step 5 writes raw): make,
# fill, sync, unmount, e2fsck, reconnect, compare.
/hostbin/mke2fs -q -t ext4 -b 4096 "$NBD" $(((DATA_MIB - 32) * 256)) || bad "mke2fs on $NBD failed"
mkdir -p /mnt/v
mount -t ext4 "$NBD" /mnt/v || { bad "mount $NBD failed"; exit 1; }
mkdir /mnt/v/d
for f in a d/b c; do dd if=/dev/urandom of="/mnt/v/$f" bs=64k count=$((${#f} * 20 + 7)) 2>/dev/null; done
(cd /mnt/v && sha256sum a d/b c) >/tmp/files.sha256
sync
recheck "after the first life"

# 4. Four connections (-C 4), four writers with fsync at once.
connect -C 4 || exit 1
mount -t ext4 "$NBD" /mnt/v || bad "mount with 4 connections failed"
for i in 1 2 3 4; do
	/hostbin/dd if=/dev/urandom of="/mnt/v/w$i" bs=64k count=$((40 + i * 9)) conv=fsync 2>/dev/null &
done
wait
(cd /mnt/v && sha256sum w1 w2 w3 w4) >>/tmp/files.sha256
recheck "after 4 writers on 4 connections"
connect || exit 1

# 5. The client disconnects in the middle of a big write: the server lives
# on, and the file system written before is intact.
/hostbin/dd if=/dev/urandom of="$NBD" bs=1M count=24 seek=$((DATA_MIB - 28)) oflag=direct 2>/dev/null &
w=$!
sleep 1
/hostbin/nbd-client -d "$NBD" >/dev/null 2>&1
wait $w
echo "the mid-write dd ended with $?"
sleep 0.5
connect || exit 1
/hostbin/e2fsck -f -n "$NBD" >/tmp/fsck.out 2>&1 && ok "e2fsck -f -n after a disconnect in mid-write" ||
	bad "e2fsck after a mid-write disconnect: $(tail -n 3 /tmp/fsck.out | tr '\n' ' ')"

# 6. TLS (X.509; nbd-client -x with the host's CA): a second volume,
# TVOL on TLS_PORT, that refuses a client without TLS.  The host reads back
# what this printed the hash of.
if /hostbin/nbd-client 10.0.2.2 "$TLS_PORT" /dev/nbd1 -N "$TVOL" >/tmp/notls.out 2>&1; then
	bad "a client without TLS got in to the TLS-only export"
	/hostbin/nbd-client -d /dev/nbd1 >/dev/null 2>&1
else
	ok "a client without TLS is refused: $(tail -n 1 /tmp/notls.out)"
fi
if /hostbin/nbd-client 10.0.2.2 "$TLS_PORT" /dev/nbd1 -N "$TVOL" -x -A /vm/ca-cert.pem -H localhost >/tmp/tls.out 2>&1; then
	dd if=/dev/urandom of=/tmp/tls.data bs=1M count=4 2>/dev/null
	/hostbin/dd if=/tmp/tls.data of=/dev/nbd1 bs=1M oflag=direct conv=fsync 2>/dev/null || bad "writing over TLS failed"
	got=$(/hostbin/dd if=/dev/nbd1 bs=1M count=4 iflag=direct 2>/dev/null | sum)
	want=$(sum </tmp/tls.data)
	[ "$got" = "$want" ] && ok "TLS: 4 MiB written and read back with O_DIRECT" || bad "TLS: read $got, wrote $want"
	echo "TLS-DATA $want"
	/hostbin/nbd-client -d /dev/nbd1 >/dev/null 2>&1 || bad "nbd-client -d (TLS) failed"
else
	bad "nbd-client over TLS: $(tail -n 2 /tmp/tls.out | tr '\n' ' ')"
fi

# 7. The host detaches while the kernel is connected: reads and writes
# must fail with an I/O error, never succeed with stale data.
echo "READY-DETACH"
n=0 rerr=0
while [ $n -lt 120 ]; do
	if ! /hostbin/dd if="$NBD" of=/dev/null bs=4k count=1 skip=$((n * 7)) iflag=direct 2>/tmp/dd.err; then rerr=1; break; fi
	sleep 0.5; n=$((n + 1))
done
[ $rerr = 1 ] && ok "a read after the detach fails: $(head -n 1 /tmp/dd.err)" || bad "reads still succeed 60 s after READY-DETACH"
if /hostbin/dd if=/dev/zero of="$NBD" bs=4k count=1 oflag=direct,sync 2>/tmp/dd.err; then
	bad "a write after the detach succeeded"
else
	ok "a write after the detach fails: $(head -n 1 /tmp/dd.err)"
fi
/hostbin/nbd-client -d "$NBD" >/dev/null 2>&1
exit $failed
