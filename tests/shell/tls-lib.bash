# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for the NBD TLS tests: X.509 certificates made with certtool
# (GnuTLS), laid out as nbdkit/qemu-nbd/libnbd expect.

# make_ca DIR NAME: a self-signed CA in DIR/ca-key.pem, DIR/ca-cert.pem.
make_ca() {
	local dir=$1
	mkdir -p "$dir"
	certtool --generate-privkey --outfile "$dir/ca-key.pem" >/dev/null 2>&1
	cat >"$dir/ca.info" <<-EOT
	cn = $2
	ca
	cert_signing_key
	expiration_days = 2
	EOT
	certtool --generate-self-signed --load-privkey "$dir/ca-key.pem" --template "$dir/ca.info" \
		--outfile "$dir/ca-cert.pem" >/dev/null 2>&1 || fail "certtool: cannot make CA $2"
}

# make_cert CADIR OUTDIR ROLE: OUTDIR/ROLE-cert.pem and ROLE-key.pem (ROLE
# server or client) signed by CADIR's CA, plus OUTDIR/ca-cert.pem.
make_cert() {
	local ca=$1 dir=$2 role=$3 usage
	mkdir -p "$dir"
	[ "$role" = server ] && usage=tls_www_server || usage=tls_www_client
	certtool --generate-privkey --outfile "$dir/$role-key.pem" >/dev/null 2>&1
	cat >"$dir/$role.info" <<-EOT
	cn = blockcrypt-test-$role
	dns_name = localhost
	ip_address = 127.0.0.1
	ip_address = 192.0.2.1
	$usage
	encryption_key
	signing_key
	expiration_days = 2
	EOT
	certtool --generate-certificate --load-privkey "$dir/$role-key.pem" \
		--load-ca-certificate "$ca/ca-cert.pem" --load-ca-privkey "$ca/ca-key.pem" \
		--template "$dir/$role.info" --outfile "$dir/$role-cert.pem" >/dev/null 2>&1 ||
		fail "certtool: cannot make the $role certificate"
	cp "$ca/ca-cert.pem" "$dir/ca-cert.pem"
	rm -f "$dir/$role.info"
}

# expect_refused WHAT CMD...: CMD must fail (a client that must not get in).
expect_refused() {
	local what=$1; shift
	if "$@" >refused.out 2>&1; then
		fail "$what: expected the connection to be refused, but it worked: $(head -3 refused.out)"
	fi
}
