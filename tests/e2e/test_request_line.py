"""Request lines judged early and strictly: an invalid request line or header
line gets its status as soon as it is complete, absolute-form hosts must be
reg-names or IP literals, a higher HTTP/1 minor version is served as HTTP/1.1,
another major version is 505, and a method portico cannot parse is 501."""

import time

import pytest

from upstreams import RawClient

# The header timeout is long: an answer within a second cannot come from it.
CONFIG = """
timeouts: {client_header: 30s, upstream_read: 2s}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""

HOST = b"Host: www.example.com\r\n"


@pytest.fixture
def px(portico, upstream):
    return portico(CONFIG, up=upstream)


def answer(px, data, method="GET"):
    with RawClient(px.port) as c:
        c.send(data)
        r = c.read_response(method)
        return r, c.wait_closed()


# -- an invalid line is answered as soon as it is complete, the head unfinished

EARLY = {
    "fragment-http10": (b"GET /internal/#frag HTTP/1.0\r\n", 400),
    "fragment-http11": (b"GET /internal/x#frag HTTP/1.1\r\n", 400),
    "host-with-space": (b"GET /internal/x HTTP/1.1\r\nHost: www.exa mple.com\r\n", 400),
    "host-after-fields": (b"GET /internal/x HTTP/1.1\r\nAccept: */*\r\nHost: a b\r\n", 400),
    "double-space": (b"GET  /internal/x HTTP/1.1\r\n", 400),
    "connect": (b"CONNECT www.example.com:443 HTTP/1.1\r\n", 405),
    "http20": (b"GET /internal/x HTTP/2.0\r\n", 505),
}


@pytest.mark.parametrize("name", sorted(EARLY))
def test_invalid_line_answered_before_the_head_ends(px, upstream, name):
    data, status = EARLY[name]
    start = time.monotonic()
    r, closed = answer(px, data)
    assert r.status == status, (data, r.status, r.body[:200])
    assert time.monotonic() - start < 3, "answered only after a timeout"
    assert r.connection_close and closed
    assert upstream.requests == []


# -- absolute-form hosts: reg-names and IP literals only

BAD_HOSTS = [
    b"017700000001",
    b"0x7f.1",
    b"127.01.0.1",
    b"%3127.0.0.1",
    b"[::1::]",
    b"127.0.0.256",
    b"1.2.3",
    b"[fe80::1%25eth0]",
]


@pytest.mark.parametrize("host", BAD_HOSTS, ids=[h.decode() for h in BAD_HOSTS])
def test_absolute_form_invalid_host_is_400(px, upstream, host):
    r, closed = answer(px, b"GET http://" + host + b"/internal/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 400, (host, r.status)
    assert closed
    assert upstream.requests == []


@pytest.mark.parametrize("host", BAD_HOSTS[:4] + [b"[::1::]"], ids=lambda h: h.decode())
def test_host_field_invalid_is_400(px, upstream, host):
    r, _ = answer(px, b"GET /internal/x HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert r.status == 400, (host, r.status)
    assert upstream.requests == []


GOOD_HOSTS = [b"www.example.com", b"127.0.0.1", b"[::1]", b"[2001:db8::7]:8080", b"a-b.example:81", b"0.example"]


@pytest.mark.parametrize("host", GOOD_HOSTS, ids=[h.decode() for h in GOOD_HOSTS])
def test_absolute_form_valid_host_is_served(px, upstream, host):
    r, _ = answer(px, b"GET http://" + host + b"/internal/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 200, (host, r.status, r.body[:200])
    assert upstream.requests[-1].target == "/public/x"


# -- versions


def test_higher_minor_version_is_served_as_http11(px, upstream):
    with RawClient(px.port) as c:
        c.send(b"GET /internal/x HTTP/1.2\r\n" + HOST + b"\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.version == "HTTP/1.1"
        # HTTP/1.1 semantics: the connection stays open for the next request.
        assert not r.connection_close
        c.send(b"GET /internal/y HTTP/1.9\r\n" + HOST + b"\r\n")
        assert c.read_response().status == 200
    assert [q.target for q in upstream.requests] == ["/public/x", "/public/y"]


def test_higher_minor_version_still_needs_host(px, upstream):
    r, closed = answer(px, b"GET /internal/x HTTP/1.2\r\n\r\n")
    assert r.status == 400 and closed
    assert upstream.requests == []


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9"])
def test_other_major_version_is_505(px, upstream, version):
    r, closed = answer(px, b"GET /internal/x " + version + b"\r\n" + HOST + b"\r\n")
    assert r.status == 505, (version, r.status)
    assert closed
    assert upstream.requests == []


# -- methods


@pytest.mark.parametrize("method", [b"get", b"Get", b"FOO", b"GETX", b"QUERY"])
def test_method_portico_cannot_parse_is_501(px, upstream, method):
    r, closed = answer(px, method + b" /internal/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 501, (method, r.status)
    assert closed
    assert upstream.requests == []


@pytest.mark.parametrize(
    "line",
    [
        b"FOO /internal/x y HTTP/1.1",
        b"FOO internal HTTP/1.1",
        b"PROXY TCP4 203.0.113.7 127.0.0.1 1234 80",
        b"FOO /internal/x HTTP/1.1 ",
    ],
)
def test_unknown_method_on_an_invalid_request_line_is_400(px, upstream, line):
    r, _ = answer(px, line + b"\r\n" + HOST + b"\r\n")
    assert r.status == 400, (line, r.status)
    assert upstream.requests == []


def test_method_that_is_not_a_token_is_400(px, upstream):
    r, _ = answer(px, b"G(T /internal/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 400
    assert upstream.requests == []


@pytest.mark.parametrize("method", ["PURGE", "PROPFIND", "MKCOL", "REPORT"])
def test_uncommon_known_method_is_forwarded(px, upstream, method):
    r, _ = answer(px, method.encode() + b" /internal/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 200
    assert upstream.requests[-1].method == method
