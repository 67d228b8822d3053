#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# NBD over TLS with X.509 certificates (certtool-made CA, server and client
# certificates): a client trusting our CA works over TCP on 127.0.0.1;
# one trusting another CA refuses the server.  With --tls-verify-peer a
# client certificate from our CA is required: none, or one from another
# CA, is refused, also when the client really sends that foreign
# certificate (nbd_tls_client.py; libnbd's GnuTLS would not).  No
# plaintext client gets in.
. "$(dirname "$0")/functions.bash"
. "$TESTS_DIR/shell/tls-lib.bash"
requires nbdinfo nbdcopy certtool cmp python3

make_ca ca "blockcrypt test CA"
make_ca evil "another CA"
make_cert ca server server
make_cert ca client client          # trusted client (ca-cert.pem + client cert)
make_cert evil evilclient client    # client certificate from another CA
mkdir -p anon && cp ca/ca-cert.pem anon/           # trusts us, no certificate
mkdir -p wrongca && cp evil/ca-cert.pem wrongca/   # trusts another CA only

new_volume vol.img key
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# attach_tcp ARGS...: attach on 127.0.0.1:$P with a free port P, trying a
# new port if another process took the one picked in the meantime; the
# output goes to attach.out.
attach_tcp() {
	for _ in 1 2 3 4 5; do
		P=$(port)
		bc attach vol.img --key-file key --listen "127.0.0.1:$P" "$@" >attach.out 2>attach.err && return 0
		grep -qi 'in use' attach.err || break
	done
	fail "attach $* failed: $(cat attach.err)"
}

# 1. Server authentication only.
attach_tcp --tls-certificates server
out=$(cat attach.out)
[ "$out" = "nbds://127.0.0.1:$P/vol" ] || fail "attach printed '$out', expected nbds://127.0.0.1:$P/vol"
nbdinfo "nbds://127.0.0.1:$P/vol?tls-certificates=anon" >info.txt 2>&1 ||
	fail "client trusting our CA could not connect: $(cat info.txt)"
grep -q "with TLS" info.txt || fail "nbdinfo does not report TLS"
random_file data.bin $((8 << 20))
nbdcopy data.bin "nbds://127.0.0.1:$P/vol?tls-certificates=anon" || fail "nbdcopy over X.509 TLS failed"
expect_refused "client trusting another CA" nbdinfo "nbds://127.0.0.1:$P/vol?tls-certificates=wrongca"
expect_refused "plain client" nbdinfo "nbd://127.0.0.1:$P/vol"
bc detach vol >/dev/null || fail "detach failed"

# 2. Client certificates required.
attach_tcp --tls-certificates server --tls-verify-peer
nbdcopy "nbds://127.0.0.1:$P/vol?tls-certificates=client" back.bin ||
	fail "client with a certificate from our CA was refused"
cmp data.bin <(head -c $((8 << 20)) back.bin) || fail "data read back over TLS differs"
expect_refused "client without a certificate" nbdinfo "nbds://127.0.0.1:$P/vol?tls-certificates=anon"
cp ca/ca-cert.pem evilclient/ca-cert.pem   # trusts our server, but its own cert is foreign
expect_refused "client certificate from another CA" nbdinfo "nbds://127.0.0.1:$P/vol?tls-certificates=evilclient"
expect_refused "plain client" nbdinfo "nbd://127.0.0.1:$P/vol"
# nbdinfo (GnuTLS) sends no certificate from a CA that the server's
# certificate request does not name, so the refusal above only shows that
# a certificate is required, not that it is verified.  python's ssl module
# (OpenSSL) sends the foreign certificate anyway: the server must check its
# chain and refuse it.  The same client with our CA's certificate must get
# in and read the data (proof that the client itself works), and one with
# no certificate must be refused too; over TLS 1.2 and 1.3, whose client
# certificate messages differ.
TLS_CLIENT="/usr/bin/python3 $TESTS_DIR/shell/nbd_tls_client.py"
for v in 1.2 1.3; do
	$TLS_CLIENT accepted "127.0.0.1:$P" vol $v ca/ca-cert.pem client/client-cert.pem client/client-key.pem data.bin ||
		fail "python ssl client (TLS $v) with a certificate from our CA did not get in"
	$TLS_CLIENT refused "127.0.0.1:$P" vol $v ca/ca-cert.pem evilclient/client-cert.pem evilclient/client-key.pem ||
		fail "python ssl client (TLS $v) sending a certificate from another CA was not refused"
	$TLS_CLIENT refused "127.0.0.1:$P" vol $v ca/ca-cert.pem - - ||
		fail "python ssl client (TLS $v) without a certificate was not refused"
done
nbdinfo --size "nbds://127.0.0.1:$P/vol?tls-certificates=client" >/dev/null ||
	fail "server unusable after refused clients"
bc detach vol >/dev/null || fail "detach failed"

# A certificate directory without the server key is refused at attach.
mkdir -p nokey && cp server/server-cert.pem nokey/
expect_exit 8 bc attach vol.img --key-file key --tls-certificates nokey
expect_exit 8 bc attach vol.img --key-file key --tls-certificates anon --tls-verify-peer
[ -z "$(bc list)" ] || fail "a refused attach left something attached"
