#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""NBD over TLS with python's ssl module (OpenSSL), for tls-x509.sh.

nbdinfo and the other libnbd clients use GnuTLS, which only sends a client
certificate issued by a CA the server's CertificateRequest names: a client
holding a certificate from another CA sends none, and is refused for that
("certificate required"), so a server that asks for a certificate but never
verifies it passes such a test.  OpenSSL sends whatever certificate it was
given, so this client tells "verifies the chain" from "wants a certificate".

  nbd_tls_client.py accepted HOST:PORT EXPORT TLSVER CAFILE CERT KEY EXPECT
  nbd_tls_client.py refused  HOST:PORT EXPORT TLSVER CAFILE CERT KEY

Both do the fixed-newstyle handshake, NBD_OPT_STARTTLS, then a TLS TLSVER
(1.2 or 1.3) handshake that verifies the server against CAFILE (and its
address as the certificate's IP address) and presents CERT/KEY ('-' '-':
no certificate), then NBD_OPT_GO and a 4096-byte READ at offset 0.
accepted: all of that must work and the READ return the first 4096 bytes
of the file EXPECT.  refused: the server must end the connection (close,
reset or TLS alert) before it answers GO; a client-side failure (the
server's certificate not trusted, a timeout) is a failure, not a refusal.
Both also check, from the TLS messages OpenSSL reports, that the client
really sent a non-empty Certificate message when given one.
Exit 0 when the server behaved, 1 (with "FAIL: ..." on stderr) when not.
"""
import os
import socket
import ssl
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_raw_client as raw  # noqa: E402
from nbd_raw_client import Fail  # noqa: E402

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
HS_CERTIFICATE = 11


def sent_certificate(msg, tls13):
    """Whether the handshake message MSG (type byte, 3-byte length, body) is a
    Certificate with at least one certificate in it (TLS 1.3 puts a
    request context in front of the list)."""
    body = msg[4:]
    if len(msg) < 4 or msg[0] != HS_CERTIFICATE:
        return False
    if tls13:
        if not body:
            return False
        body = body[1 + body[0]:]
    return len(body) >= 3 and int.from_bytes(body[:3], "big") > 0


def tls_context(tlsver, cafile, cert, key, sent):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the server and its name
    ctx.minimum_version = ctx.maximum_version = VERSIONS[tlsver]
    ctx.load_verify_locations(cafile)
    if cert != "-":
        ctx.load_cert_chain(cert, key)
    # The only way to see what OpenSSL sent (a private but long-standing
    # CPython hook); without it we could not tell a refusal of our
    # certificate from a refusal for sending none.
    if not hasattr(ctx, "_msg_callback"):
        raise Fail("this python's ssl module has no _msg_callback: cannot check "
                   "that the client certificate is sent")

    def on_msg(conn, direction, version, content_type, msg_type, data):
        if direction == "write" and content_type == ssl._TLSContentType.HANDSHAKE:
            sent.append(sent_certificate(bytes(data), tlsver == "1.3"))
    ctx._msg_callback = on_msg
    return ctx


def starttls(hostport, name, tlsver, cafile, cert, key):
    """TCP, greeting, STARTTLS, TLS handshake: (TLS socket, list of flags)."""
    host, port = hostport.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=raw.TIMEOUT)
    except OSError as e:
        raise Fail(f"connect to {hostport}: {e}")
    raw.greeting(s)
    raw.send(s, struct.pack(">I", raw.FLAG_FIXED_NEWSTYLE | raw.FLAG_NO_ZEROES), "client flags")
    raw.send_option(s, raw.OPT_STARTTLS)
    raw.expect_option_reply(s, raw.OPT_STARTTLS, raw.REP_ACK, "STARTTLS")
    sent = []
    ctx = tls_context(tlsver, cafile, cert, key, sent)
    ts = ctx.wrap_socket(s, server_hostname=host, do_handshake_on_connect=False)
    return ts, sent


def check_sent(sent, cert):
    if cert != "-" and not any(sent):
        raise Fail("the client certificate was not sent (no non-empty Certificate "
                   "message): this client cannot test the server's verification")
    if cert == "-" and any(sent):
        raise Fail("a certificate was sent although none was given")


def closed_by_server(e):
    """A description if exception E means the server ended the connection
    (EOF, reset, a TLS alert it sent), else None."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return None  # our own check of the server's certificate failed
    if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError,
                      BrokenPipeError)):
        return f"connection closed ({e.__class__.__name__})"
    if isinstance(e, ssl.SSLError) and "ALERT" in (e.reason or ""):
        return f"TLS alert from the server ({e.reason})"
    return None


def sc_accepted(hostport, name, tlsver, cafile, cert, key, expect):
    ts, sent = starttls(hostport, name, tlsver, cafile, cert, key)
    try:
        ts.do_handshake()
    except (ssl.SSLError, OSError) as e:
        raise Fail(f"TLS {tlsver} handshake failed: {e}")
    if ts.version() != {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}[tlsver]:
        raise Fail(f"negotiated {ts.version()}, asked for TLS {tlsver} only")
    try:
        raw.go(ts, name, what="GO over TLS")
        data = raw.read(ts, 0, 4096, 1, "READ over TLS")
    except (ssl.SSLError, OSError) as e:
        raise Fail(f"after the TLS handshake: {e!r}")
    check_sent(sent, cert)
    with open(expect, "rb") as f:
        if data != f.read(4096):
            raise Fail(f"READ over TLS returned other data than the first 4096 bytes of {expect}")
    version = ts.version()
    raw.disconnect(ts)
    print(f"# python ssl client, {version}, certificate {cert}: GO and READ work",
          file=sys.stderr)


def sc_refused(hostport, name, tlsver, cafile, cert, key):
    ts, sent = starttls(hostport, name, tlsver, cafile, cert, key)
    # The server may refuse in the handshake, or (GnuTLS verifies after
    # its handshake completes; in TLS 1.3 the client's handshake ends
    # before the server has even seen the certificate) by hanging up then.
    how = None
    try:
        ts.do_handshake()
    except (ssl.SSLError, OSError) as e:
        how = closed_by_server(e)
        if how is None:
            raise Fail(f"TLS {tlsver} handshake failed on the client's side, not refused "
                       f"by the server: {e!r}")
        how += " in the TLS handshake"
    if how is None:
        try:
            raw.send_option(ts, raw.OPT_GO, raw.go_data(name))
            data = ts.recv(65536)
            how = "connection closed (EOF)" if not data else None
        except Fail as e:  # raw.send's BrokenPipe/reset
            how = f"connection closed ({e})"
        except socket.timeout:
            raise Fail(f"GO over TLS: no answer and no hang-up within {raw.TIMEOUT:g} s")
        except (ssl.SSLError, OSError) as e:
            how = closed_by_server(e)
            if how is None:
                raise Fail(f"GO over TLS failed on the client's side: {e!r}")
        if how is None:
            raise Fail(f"the server accepted the TLS session and answered GO "
                       f"({len(data)} bytes: {data[:20].hex()}...): it did not refuse "
                       f"the client certificate {cert}")
        how += " after the TLS handshake, before a reply to GO"
    check_sent(sent, cert)
    print(f"# python ssl client, TLS {tlsver}, certificate {cert}: refused: {how}",
          file=sys.stderr)


SCENARIOS = {"accepted": (sc_accepted, 7), "refused": (sc_refused, 6)}


def main(argv):
    if len(argv) < 2 or argv[1] not in SCENARIOS or len(argv) - 2 != SCENARIOS[argv[1]][1] \
            or argv[4] not in VERSIONS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        SCENARIOS[argv[1]][0](*argv[2:])
    except Fail as e:
        print(f"FAIL: nbd_tls_client.py {argv[1]} (TLS {argv[4]}, certificate {argv[6]}): {e}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
