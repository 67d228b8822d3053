#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Linux kernel's NBD client against blockcrypt attach --listen, in one
# guest boot (issue #16; the guest's half is tests/vm/guest-nbd.sh):
#  - O_DIRECT reads of what the host wrote before attaching;
#  - blkdiscard with --allow-discards: the range no longer reads as the
#    data that was there (the backing got a hole);
#  - ext4 made, filled, synced, unmounted, e2fsck -f -n, reconnected and
#    compared;
#  - -C 4 (four connections) with four writers that fsync at once;
#  - a client that disconnects in the middle of a write: the daemon serves
#    on and the file system is intact;
#  - TLS (X.509): nbd-client -x with the CA writes and reads back, a
#    client without TLS is refused, the host reads what it wrote;
#  - a detach while the kernel is connected: refused (busy) without
#    --force; with it, the kernel's next read and write fail with an I/O
#    error, never stale success.
# The host checks the daemon and the backing around it.
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum /usr/bin/python3 cmp
. "$TESTS_DIR/shell/vm-lib.bash"

DATA_MIB=96
printf 'vm nbd passphrase' >key
truncate -s $((DATA_MIB + 16))M vol.img
bc format vol.img --batch --key-file key "${FAST_KDF[@]}" --type luks2 2>fmt.err || fail "format failed: $(cat fmt.err)"
off=$(data_offset vol.img)
[ $(($(stat -c %s vol.img) - off)) = $((DATA_MIB << 20)) ] || fail "the data area is not $DATA_MIB MiB (offset $off)"
random_file host.data 4M
bc write vol.img --key-file key <host.data 2>w.err || fail "blockcrypt write failed: $(cat w.err)"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bc attach vol.img --batch --key-file key --name vol --listen "127.0.0.1:$port" --allow-discards >/dev/null 2>att.err ||
	fail "attach --listen failed: $(cat att.err)"
pid=$(daemon_pid vol)
# A second volume that requires TLS (X.509, the certificate names localhost).
requires certtool
. "$TESTS_DIR/shell/tls-lib.bash"
make_ca ca "blockcrypt vm test CA"
make_cert ca server server
truncate -s 32M tvol.img
bc format tvol.img --batch --key-file key "${FAST_KDF[@]}" --type luks2 2>fmt.err || fail "format tvol failed: $(cat fmt.err)"
tls_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bc attach tvol.img --batch --key-file key --name tvol --listen "127.0.0.1:$tls_port" --tls-certificates server >/dev/null 2>att.err ||
	fail "attach --listen with TLS failed: $(cat att.err)"
printf 'PORT=%s\nNAME=vol\nHOST_SHA=%s\nDATA_MIB=%s\nTLS_PORT=%s\nTVOL=tvol\n' \
	"$port" "$(sha host.data)" "$DATA_MIB" "$tls_port" >params

# The guest runs in the background: the host detaches when it says so.
vm_run_bg() { vm_run --timeout 600 --file params --file server/ca-cert.pem "$TESTS_DIR/vm/guest-nbd.sh"; echo "$VM_RC" >vm.rc; }
vm_run_bg &
vm=$!
cleanup_fn "kill $vm 2>/dev/null"
ready() { grep -q '^READY-DETACH' vm-console.log 2>/dev/null || [ -f vm.rc ]; }
wait_for 900 ready || fail "the guest never got to the detach step"
if [ ! -f vm.rc ]; then
	running "$pid" || problem "the daemon died before the detach step (after the mid-write disconnect?)"
	# A plain detach refuses while a client is connected (exit 9, busy);
	# --force disconnects it.
	rc=0
	bc detach vol >det.out 2>&1 || rc=$?
	[ "$rc" = 9 ] || problem "detach with the kernel connected: exit $rc, want 9 (busy): $(cat det.out)"
	bc detach --force vol >det.out 2>&1 || problem "detach --force with the kernel connected failed: $(cat det.out)"
	note "detached with the kernel connected"
fi
wait "$vm" || true
[ -f vm.rc ] || fail "the guest runner ended without a status"
VM_RC=$(cat vm.rc)
note "guest: $(grep -c '^ok: ' vm.out || true) checks ok, exit $VM_RC"
if [ "$VM_RC" != 0 ] || grep -q '^FAIL: ' vm.out; then
	vm_show
	problem "the guest reported failures (exit $VM_RC): $(grep '^FAIL: ' vm.out | tr '\n' ' ')"
fi
for want in "O_DIRECT read" "blkdiscard" "discarded range" "e2fsck -f -n after the first life" \
	"3 files read back after reconnecting (after the first life)" "e2fsck -f -n after 4 writers on 4 connections" \
	"7 files read back after reconnecting (after 4 writers" "mid-write" "without TLS is refused" "TLS: 4 MiB" "a read after the detach fails" "a write after the detach fails"; do
	grep -q "^ok: .*$want" vm.out || problem "the guest did not report: $want"
done
# What the guest wrote over TLS, read by blockcrypt once detached.
want=$(awk '$1 == "TLS-DATA" {print $2}' vm.out)
bc detach tvol >det.out 2>&1 || problem "detach tvol failed: $(cat det.out)"
bc cat tvol.img --key-file key >tvol.out 2>cat.err || problem "blockcrypt cat tvol failed: $(cat cat.err)"
[ -n "$want" ] && [ "$(head -c 4M tvol.out | sha256sum | cut -d' ' -f1)" = "$want" ] ||
	problem "what the kernel wrote over TLS does not read back on the host (guest sha '$want')"

# What the kernel said after the detach: an I/O error, nothing else.
for rw in read write; do
	line=$(grep "^ok: a $rw after the detach fails" vm.out) || continue
	note "guest: $line"
	[[ $line == *"Input/output error"* ]] || problem "the kernel's $rw after the detach failed, but not with EIO: $line"
done
check_problems
