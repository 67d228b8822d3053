#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# --listen on a non-loopback address requires TLS unless --insecure is
# given.  Everything runs in a private network namespace whose only
# interface is lo carrying 192.0.2.1 (TEST-NET-1): no traffic leaves it.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/tls-lib.bash"
requires ip nbdinfo nbdcopy psktool cmp

NS=bc-tls-$$
ip netns add "$NS" || fail "cannot create a network namespace"
cleanup_fn "ip netns delete $NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip addr add 192.0.2.1/32 dev lo || fail "cannot add 192.0.2.1 in the namespace"

new_volume vol.img key
psktool -u alice -p keys.psk >/dev/null 2>&1

# No TLS, no --insecure: refused, nothing attached.
expect_exit 2 in_ns "$BLOCKCRYPT" attach vol.img --key-file key --listen 192.0.2.1:10809
echo "$ERR" | grep -q -- "--tls" || fail "the refusal does not say how to enable TLS: $ERR"
[ -z "$(bc list)" ] || fail "refused attach left an entry: $(bc list)"

# With a PSK: served over TLS only.
out=$(in_ns "$BLOCKCRYPT" attach vol.img --key-file key --listen 192.0.2.1:10809 --tls-psk keys.psk) ||
	fail "attach on 192.0.2.1 with --tls-psk failed"
[ "$out" = "nbds://192.0.2.1:10809/vol" ] || fail "unexpected URI $out"
uri="nbds://alice@192.0.2.1:10809/vol?tls-psk-file=keys.psk"
random_file data.bin $((4 << 20))
in_ns nbdcopy data.bin "$uri" || fail "nbdcopy over TLS in the namespace failed"
in_ns nbdcopy "$uri" back.bin || fail "read over TLS failed"
cmp data.bin <(head -c $((4 << 20)) back.bin) || fail "data read back over TLS differs"
expect_refused "plain client" in_ns nbdinfo "nbd://192.0.2.1:10809/vol"
bc detach vol >/dev/null || fail "detach failed"

# --insecure: the operator explicitly accepts a plaintext export.
in_ns "$BLOCKCRYPT" attach vol.img --key-file key --listen 192.0.2.1:10809 --insecure >/dev/null ||
	fail "attach --insecure failed"
in_ns nbdinfo --size "nbd://192.0.2.1:10809/vol" >/dev/null || fail "plain client refused with --insecure"
bc detach vol >/dev/null || fail "detach failed"
