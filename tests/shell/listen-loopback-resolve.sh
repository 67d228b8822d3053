#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# --listen without TLS or --insecure is allowed only where every address
# the host resolves to is loopback: the text of a name proves nothing.  In
# a private network namespace with its own hosts file (ip netns exec
# bind-mounts /etc/netns/NS/hosts over /etc/hosts), 'bcloop.test' and
# '127.bcloop.test' resolve to 10.200.0.1 (on the namespace's lo; no
# traffic is ever sent to it) and 'bcmixed.test' to 127.0.0.1 and
# 10.200.0.1: all refused, exit 2, nothing attached.  'localhost' and
# 'bclocal.test' (127.0.0.2) are served.
. "$(dirname "$0")/functions.bash"
requires ip nbdinfo
requires_root

NS=bc-loop-$$
[ -d /etc/netns ] || cleanup_fn "rmdir /etc/netns 2>/dev/null"
mkdir -p "/etc/netns/$NS" || fail "cannot create /etc/netns/$NS"
cleanup_fn "rm -rf /etc/netns/$NS"
cat >"/etc/netns/$NS/hosts" <<'EOF'
127.0.0.1	localhost
::1	localhost ip6-localhost
10.200.0.1	bcloop.test 127.bcloop.test
127.0.0.1	bcmixed.test
10.200.0.1	bcmixed.test
127.0.0.2	bclocal.test
EOF
ip netns add "$NS" || fail "cannot create a network namespace"
cleanup_fn "ip netns delete $NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip addr add 10.200.0.1/32 dev lo || fail "cannot add 10.200.0.1 in the namespace"
# The setup itself: the names resolve as intended inside the namespace.
[ "$(in_ns getent ahostsv4 bcloop.test | awk 'NR==1{print $1}')" = 10.200.0.1 ] ||
	fail "bcloop.test does not resolve to 10.200.0.1 in the namespace"
in_ns getent ahostsv4 bcmixed.test | awk '{print $1}' | sort -u | tr '\n' ' ' | grep -qx '10.200.0.1 127.0.0.1 ' ||
	fail "bcmixed.test does not resolve to both addresses: $(in_ns getent ahostsv4 bcmixed.test)"

new_volume vol.img key
port=10900
for host in bcloop.test 127.bcloop.test bcmixed.test; do
	port=$((port + 1))
	expect_exit 2 in_ns "$BLOCKCRYPT" attach vol.img --key-file key --listen "$host:$port"
	case $ERR in *"not a loopback address"*--tls*) ;; *) fail "--listen $host: unexpected refusal: $ERR" ;; esac
	[ -z "$(bc list)" ] || fail "--listen $host: refused attach left an entry: $(bc list)"
	note "$host: $ERR"
done

for host in localhost bclocal.test; do
	port=$((port + 1))
	out=$(in_ns "$BLOCKCRYPT" attach vol.img --key-file key --listen "$host:$port" 2>err) ||
		fail "--listen $host:$port refused: $(cat err)"
	[ "$out" = "nbd://$host:$port/vol" ] || fail "--listen $host: unexpected URI $out"
	in_ns nbdinfo --size "$out" >/dev/null || fail "--listen $host: not served"
	bc detach vol 2>/dev/null || fail "detach after --listen $host failed"
done
exit 0
