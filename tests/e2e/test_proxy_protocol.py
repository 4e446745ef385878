"""Behind a load balancer (SPEC section 13): the PROXY protocol on listeners
(versions 1 and 2, raw sockets), and forwarded.trusted.

On a proxy_protocol listener the address in the header is the client's for
access rules, X-Forwarded-For and the access log; a missing, malformed or
truncated header, or a peer outside the list, closes the connection with a
log line and a count in portico_proxy_protocol_rejected_total.  The fixture's
readiness probe is itself such a connection (from 127.0.0.1, no bytes): the
counters are read relative to it."""

import re
import socket
import ssl
import struct
import time

import pytest

from conftest import free_port
from upstreams import http_request

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

PP_CONFIG = """
listen:
  - address: "127.0.0.1:{port}"
    proxy_protocol: [{pp}]
admin: {listen: "127.0.0.1:{admin}"}
timeouts: {client_header: 2s}
access: [{deny: 203.0.113.66}, {allow: all}]
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def v1(src, dst="192.0.2.1", sport=5555, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src, dst="192.0.2.1", sport=5555, dport=80, tlvs=b""):
    if ":" in src:
        fam, af = 0x21, socket.AF_INET6
    else:
        fam, af = 0x11, socket.AF_INET
    body = socket.inet_pton(af, src) + socket.inet_pton(af, dst) + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def v2_local(extra=b""):
    return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(extra)) + extra


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def request(target="/internal/x", close=True):
    return ("GET %s HTTP/1.1\r\nHost: www.example.com\r\n%s\r\n" % (target, "Connection: close\r\n" if close else "")).encode()


def metrics(admin):
    r = http_request(admin, "GET", "/metrics")
    assert r.status == 200
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def rejected(admin, reason):
    return metrics(admin).get('portico_proxy_protocol_rejected_total{reason="%s"}' % reason)


def wait_rejected(admin, reason, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        got = rejected(admin, reason)
        if got == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError("rejected{reason=%s} is %r, expected %r" % (reason, got, want))
        time.sleep(0.05)


def start(portico, upstream, pp="127.0.0.1", extra=""):
    admin = free_port()
    px = portico(PP_CONFIG + extra, up=upstream, admin=admin, pp=pp)
    px.admin = admin
    # The readiness probe: from 127.0.0.1, closed without a byte.
    wait_rejected(admin, "missing" if pp == "127.0.0.1" else "untrusted", 1)
    return px


def connect(px, source="127.0.0.1"):
    return socket.create_connection(("127.0.0.1", px.port), timeout=5, source_address=(source, 0))


def read_all(s):
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


def exchange(px, data, source="127.0.0.1"):
    """Sends ``data`` and returns (status, everything read until the close)."""
    with connect(px, source) as s:
        s.sendall(data)
        got = read_all(s)
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
    return (int(m.group(1)) if m else 0), got


def assert_closed_silently(px, data, source="127.0.0.1", shut=False):
    """The connection is closed without a byte of response."""
    with connect(px, source) as s:
        if data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b""


@pytest.fixture
def px(portico, upstream):
    return start(portico, upstream)


# --- the carried address --------------------------------------------------------


@pytest.mark.parametrize("header", [v1("203.0.113.7"), v2("203.0.113.7")], ids=["v1", "v2"])
def test_address_reaches_upstream_and_access_log(px, upstream, header):
    status, _ = exchange(px, header + request())
    assert status == 200
    assert upstream.wait_request().header("X-Forwarded-For") == "203.0.113.7"
    px.wait_log(r"^203\.0\.113\.7 .*\"GET /internal/x HTTP/1\.1\" 200 ", stream="stdout")


@pytest.mark.parametrize("header", [v1("2001:db8::7", "2001:db8::1"), v2("2001:db8::7", "2001:db8::1")], ids=["v1", "v2"])
def test_ipv6_address_is_carried(px, upstream, header):
    status, _ = exchange(px, header + request())
    assert status == 200
    assert upstream.wait_request().header("X-Forwarded-For") == "2001:db8::7"


def test_v2_tlvs_are_skipped(px, upstream):
    tlvs = tlv(0x02, b"www.example.com") + tlv(0x01, b"http/1.1") + tlv(0x04, b"\x00" * 40)
    status, _ = exchange(px, v2("198.51.100.4", tlvs=tlvs) + request())
    assert status == 200
    assert upstream.wait_request().header("X-Forwarded-For") == "198.51.100.4"


@pytest.mark.parametrize("header", [v1("203.0.113.66"), v2("203.0.113.66")], ids=["v1", "v2"])
def test_access_rules_apply_to_the_carried_address(px, upstream, header):
    status, _ = exchange(px, header + request())
    assert status == 403
    assert upstream.connections_accepted == 0
    px.wait_log(r"^203\.0\.113\.66 .* 403 ", stream="stdout")
    # The peer itself (127.0.0.1) is allowed: the header decided.
    assert exchange(px, v1("203.0.113.67") + request())[0] == 200


@pytest.mark.parametrize("header", [v1("203.0.113.7"), v2("203.0.113.7")], ids=["v1", "v2"])
def test_header_in_pieces_then_keep_alive(px, upstream, header):
    """The header arrives a few bytes at a time; it is read exactly, and the
    address stays for every request of the connection."""
    with connect(px) as s:
        for i in range(0, len(header), 5):
            s.sendall(header[i : i + 5])
            time.sleep(0.02)
        s.sendall(request(close=False))
        s.sendall(request("/internal/y", close=False))
        s.sendall(request("/internal/z"))
        got = read_all(s)
    assert got.count(b"HTTP/1.1 200 ") == 3, got[:500]
    reqs = upstream.wait_requests(3)
    assert [r.target for r in reqs] == ["/public/x", "/public/y", "/public/z"]
    assert [r.header("X-Forwarded-For") for r in reqs] == ["203.0.113.7"] * 3


@pytest.mark.parametrize("header", [v2_local(), v2_local(tlv(0x05, b"id")), b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"],
                         ids=["v2-local", "v2-local-tlv", "v1-unknown", "v1-unknown-addresses"])
def test_local_and_unknown_keep_the_peer_address(px, upstream, header):
    status, _ = exchange(px, header + request())
    assert status == 200
    assert upstream.wait_request().header("X-Forwarded-For") == "127.0.0.1"


# --- refused connections ----------------------------------------------------------


def test_missing_header_is_closed_logged_counted(px, upstream):
    assert_closed_silently(px, request())
    wait_rejected(px.admin, "missing", 2)
    px.wait_log(r"client 127\.0\.0\.1: PROXY protocol: missing header: not a PROXY protocol header")
    assert upstream.connections_accepted == 0


@pytest.mark.parametrize(
    "header, why",
    [
        (b"PROXY TCP4 203.0.113.300 192.0.2.1 5555 80\r\n", "not a canonical IPv4"),
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\n", "LF without CR"),
        (b"PROXY TCP5 203.0.113.7 192.0.2.1 5555 80\r\n", "protocol"),
        (b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 " + b"8" * 80 + b"\r\n", "within 107 bytes"),
        (V2_SIG + bytes([0x31, 0x11]) + struct.pack("!H", 12) + b"\x00" * 12, "version nibble"),
        (V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", 8) + b"\x00" * 8, "shorter than its family"),
        (V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", 20) + b"\x00" * 12 + b"\x02\x00\x09abcde", "TLV"),
        (V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", 5000), "longer than 4096"),
    ],
    ids=["v1-address", "v1-lf", "v1-proto", "v1-long", "v2-version", "v2-short", "v2-tlv", "v2-long"],
)
def test_malformed_header_is_closed_logged_counted(px, upstream, header, why):
    assert_closed_silently(px, header + request())
    wait_rejected(px.admin, "malformed", 1)
    m = px.wait_log(r"client 127\.0\.0\.1: PROXY protocol: malformed header: (.*)")
    assert why in m.group(1)
    assert upstream.connections_accepted == 0


@pytest.mark.parametrize("header", [v1("203.0.113.7")[:20], v2("203.0.113.7")[:20], V2_SIG[:6]], ids=["v1", "v2", "v2-signature"])
def test_truncated_header_then_close(px, upstream, header):
    assert_closed_silently(px, header, shut=True)
    wait_rejected(px.admin, "truncated", 1)
    px.wait_log(r"PROXY protocol: truncated header: connection closed \(%d bytes read\)" % len(header))


def test_truncated_header_times_out(px, upstream):
    """The header must be complete within timeouts.client_header (2 s here)."""
    t0 = time.monotonic()
    assert_closed_silently(px, v2("203.0.113.7")[:20])
    assert 1.5 < time.monotonic() - t0 < 6
    wait_rejected(px.admin, "truncated", 1)
    px.wait_log(r"PROXY protocol: truncated header: no complete header within timeouts\.client_header")


def test_nothing_sent_times_out(px, upstream):
    assert_closed_silently(px, b"")
    wait_rejected(px.admin, "missing", 2)
    px.wait_log(r"PROXY protocol: missing header: no complete header within timeouts\.client_header \(0 bytes")


def test_peer_outside_the_list_is_refused(portico, upstream):
    px = start(portico, upstream, pp="127.0.0.2")
    # A valid header from 127.0.0.1, which is not listed.
    assert_closed_silently(px, v1("203.0.113.7") + request())
    wait_rejected(px.admin, "untrusted", 2)
    px.wait_log(r"client 127\.0\.0\.1: PROXY protocol: peer not in proxy_protocol")
    # From the listed balancer it passes.
    assert exchange(px, v2("203.0.113.8") + request(), source="127.0.0.2")[0] == 200
    assert upstream.wait_request().header("X-Forwarded-For") == "203.0.113.8"
    assert rejected(px.admin, "missing") == 0


def test_listener_without_proxy_protocol_is_unchanged(portico, upstream):
    px = portico("routes: [{path: /internal, pass: 'http://internal.example.com:{up}/public'}]", up=upstream)
    # A PROXY line is just a malformed request there.
    assert exchange(px, v1("203.0.113.7") + request())[0] == 400
    assert exchange(px, request())[0] == 200
    assert upstream.wait_request().header("X-Forwarded-For") == "127.0.0.1"


def test_reload_turns_proxy_protocol_on(portico, upstream):
    plain = 'listen: [{address: "127.0.0.1:{port}"}]\n' "routes: [{path: /internal, pass: 'http://internal.example.com:{up}/public'}]\n"
    px = portico(plain, up=upstream)
    assert exchange(px, request())[0] == 200
    px.reload(plain.replace('"127.0.0.1:{port}"}', '"127.0.0.1:{port}", proxy_protocol: [127.0.0.1]}'))
    px.wait_log(r"configuration reloaded")
    assert exchange(px, v1("203.0.113.9") + request())[0] == 200
    assert upstream.wait_requests(2)[-1].header("X-Forwarded-For") == "203.0.113.9"
    assert_closed_silently(px, request())


# --- TLS listener -----------------------------------------------------------------


TLS_EXTRA = """
  - address: "127.0.0.1:{tlsport}"
    proxy_protocol: [127.0.0.1]
    tls: {certificates: [{cert: "{cert}", key: "{key}"}]}
"""


def tls_exchange(port, header):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(header)
    with ctx.wrap_socket(raw, server_hostname="www.example.com") as s:
        s.sendall(request())
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except (ssl.SSLError, ConnectionResetError):
            pass
    return data


@pytest.mark.parametrize("header", [v1("203.0.113.7"), v2("203.0.113.7")], ids=["v1", "v2"])
def test_tls_listener_reads_the_header_before_the_handshake(portico, upstream, site_cert, header):
    tlsport = free_port()
    admin = free_port()
    text = PP_CONFIG.replace('    proxy_protocol: [{pp}]\n', '    proxy_protocol: [{pp}]\n' + TLS_EXTRA.lstrip("\n"), 1)
    px = portico(text, up=upstream, admin=admin, pp="127.0.0.1", tlsport=tlsport, cert=site_cert[0], key=site_cert[1])
    px.admin = admin
    wait_rejected(admin, "missing", 1)
    got = tls_exchange(tlsport, header)
    assert got.startswith(b"HTTP/1.1 200 "), got[:300]
    assert upstream.wait_request().header("X-Forwarded-For") == "203.0.113.7"
    px.wait_log(r"^203\.0\.113\.7 ", stream="stdout")
    # A ClientHello without the header is not a PROXY header.
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        tls_exchange(tlsport, b"")
    wait_rejected(admin, "missing", 2)


# --- forwarded.trusted ------------------------------------------------------------

TRUSTED_CONFIG = """
forwarded: {trusted: [%s]}
access: [{deny: 198.51.100.66}, {allow: all}]
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def xff_of(req):
    return [v.strip() for v in ",".join(req.header_all("X-Forwarded-For")).split(",")]


@pytest.mark.parametrize(
    "trusted, sent, client, upstream_xff",
    [
        # trusted peer: the rightmost untrusted entry; the header kept, the peer appended
        ("127.0.0.1", ["198.51.100.9"], "198.51.100.9", ["198.51.100.9", "127.0.0.1"]),
        ("127.0.0.1, 10.0.0.0/8", ["198.51.100.9, 10.1.1.1"], "198.51.100.9", ["198.51.100.9", "10.1.1.1", "127.0.0.1"]),
        ("127.0.0.1", ["192.0.2.1, 198.51.100.9"], "198.51.100.9", ["192.0.2.1", "198.51.100.9", "127.0.0.1"]),
        ("127.0.0.1, 10.0.0.0/8", ["198.51.100.9", "10.1.1.1"], "198.51.100.9", ["198.51.100.9", "10.1.1.1", "127.0.0.1"]),
        ("127.0.0.1", ["[2001:db8::9]:4711"], "2001:db8::9", ["[2001:db8::9]:4711", "127.0.0.1"]),
        ("127.0.0.1, 10.0.0.0/8", ["198.51.100.9, unknown, 10.1.1.1"], "10.1.1.1", ["198.51.100.9", "unknown", "10.1.1.1", "127.0.0.1"]),
        ("127.0.0.1", [], "127.0.0.1", ["127.0.0.1"]),
        # untrusted peer: the header is replaced by the peer's address
        ("10.0.0.0/8", ["198.51.100.9"], "127.0.0.1", ["127.0.0.1"]),
    ],
    ids=["one", "recursive", "rightmost", "several-fields", "port", "unknown-stops", "no-header", "untrusted-peer"],
)
def test_trusted_forwarders(portico, upstream, trusted, sent, client, upstream_xff):
    px = portico(TRUSTED_CONFIG % trusted, up=upstream)
    r = px.fetch("GET", "/internal/x", headers=[("X-Forwarded-For", v) for v in sent])
    assert r.status == 200
    assert xff_of(upstream.wait_request()) == upstream_xff
    px.wait_log(r"^%s .*\"GET /internal/x HTTP/1\.1\" 200 " % re.escape(client), stream="stdout")


def test_trusted_forwarder_access_rules_see_the_client(portico, upstream):
    px = portico(TRUSTED_CONFIG % "127.0.0.1", up=upstream)
    assert px.fetch("GET", "/internal/x", headers=[("X-Forwarded-For", "198.51.100.66")]).status == 403
    px.wait_log(r"^198\.51\.100\.66 .* 403 ", stream="stdout")
    px.wait_log(r"403 Forbidden client=198\.51\.100\.66 ")
    assert upstream.connections_accepted == 0
    # Not trusted: the same header is not believed.
    px2 = portico(TRUSTED_CONFIG % "10.0.0.0/8", up=upstream)
    assert px2.fetch("GET", "/internal/x", headers=[("X-Forwarded-For", "198.51.100.66")]).status == 200


def test_forwarded_header_follows_the_same_rule(portico, upstream):
    text = TRUSTED_CONFIG.replace("forwarded: {trusted: [%s]}", "forwarded: {trusted: [%s], forwarded: true}")
    px = portico(text % "10.0.0.0/8", up=upstream)
    px.fetch("GET", "/internal/x", headers=[("Forwarded", "for=198.51.100.9")])
    assert upstream.wait_request().header_all("Forwarded") == ['for=127.0.0.1;host="www.example.com";proto=http']
    upstream.reset()
    px2 = portico(text % "127.0.0.1", up=upstream)
    px2.fetch("GET", "/internal/x", headers=[("Forwarded", "for=198.51.100.9")])
    assert upstream.wait_request().header_all("Forwarded") == ['for=198.51.100.9, for=127.0.0.1;host="www.example.com";proto=http']


def test_proxy_protocol_and_trusted_forwarders(portico, upstream):
    """The PROXY header's address is the peer that forwarded.trusted judges."""
    admin = free_port()
    px = portico(PP_CONFIG + "forwarded: {trusted: [10.0.0.0/8]}\n", up=upstream, admin=admin, pp="127.0.0.1")
    with connect(px) as s:
        s.sendall(v1("10.2.3.4") + b"GET /internal/a HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 198.51.100.9\r\nConnection: close\r\n\r\n")
        assert read_all(s).startswith(b"HTTP/1.1 200 ")
    assert xff_of(upstream.wait_request()) == ["198.51.100.9", "10.2.3.4"]
    px.wait_log(r"^198\.51\.100\.9 .*GET /internal/a", stream="stdout")
    upstream.reset()
    # The carried address is not trusted: the header is replaced.
    with connect(px) as s:
        s.sendall(v2("203.0.113.7") + b"GET /internal/b HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 198.51.100.9\r\nConnection: close\r\n\r\n")
        assert read_all(s).startswith(b"HTTP/1.1 200 ")
    assert xff_of(upstream.wait_request()) == ["203.0.113.7"]
