"""The request head as the upstream receives it (SPEC section 4): hop-by-hop
headers removed, X-Forwarded-*, Forwarded and Via added, Host, Expect."""

import pytest

from upstreams import RawClient

CONFIG = """
forwarded: {x_forwarded: {xf}, forwarded: {fwd}, via: {via}}
routes:
  - path: /keep
    pass: http://internal.example.com:{up}/public
    preserve_host: true
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def start(portico, upstream, xf="true", fwd="false", via="false"):
    return portico(CONFIG, up=upstream, xf=xf, fwd=fwd, via=via)


@pytest.fixture
def px(portico, upstream):
    return start(portico, upstream)


def send(px, up, headers, target="/internal/h", method="GET", body=b"", host="www.example.com"):
    """Sends one request with ``headers`` (a list of pairs) and returns what
    the upstream received."""
    up.reset()
    r = px.fetch(method, target, headers=headers, body=body, host=host)
    assert r.status == 200, (r.status, r.body[:300])
    return up.wait_request()


def connection_tokens(req):
    return [t.strip().lower() for v in req.header_all("Connection") for t in v.split(",") if t.strip()]


HOP_BY_HOP = [
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("TE", "trailers, deflate"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "h2c"),
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
]


@pytest.mark.parametrize("name, value", HOP_BY_HOP)
def test_hop_by_hop_header_is_removed(px, upstream, name, value):
    got = send(px, upstream, [(name, value), ("X-Kept", "yes")])
    assert not got.has_header(name), got.headers
    assert got.header("X-Kept") == "yes"


def test_connection_header_is_not_forwarded(px, upstream):
    got = send(px, upstream, [("Connection", "keep-alive, X-Private"), ("X-Private", "secret")])
    # portico may say keep-alive or close to its upstream, nothing the client named
    assert set(connection_tokens(got)) <= {"keep-alive", "close"}, got.headers
    assert not got.has_header("X-Private")


def test_headers_named_in_connection_are_removed(px, upstream):
    got = send(
        px,
        upstream,
        [
            ("Connection", "X-One"),
            ("Connection", "x-two , X-Three"),
            ("X-One", "1"),
            ("X-Two", "2"),
            ("X-Three", "3"),
            ("X-Four", "4"),
            ("Authorization", "Basic dXNlcjpwYXNz"),
        ],
    )
    names = got.header_names()
    assert "x-one" not in names and "x-two" not in names and "x-three" not in names
    assert got.header("X-Four") == "4"
    assert got.header("Authorization") == "Basic dXNlcjpwYXNz"


def test_client_cannot_remove_added_headers_through_connection(px, upstream):
    got = send(
        px,
        upstream,
        [
            ("Connection", "X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto"),
            ("X-Forwarded-For", "198.51.100.1"),
        ],
    )
    assert got.header_all("X-Forwarded-For") == ["127.0.0.1"]
    assert got.header_all("X-Forwarded-Host") == ["www.example.com"]
    assert got.header_all("X-Forwarded-Proto") == ["http"]


def test_x_forwarded_for_is_set(px, upstream):
    got = send(px, upstream, [])
    assert got.header_all("X-Forwarded-For") == ["127.0.0.1"]


def test_x_forwarded_for_is_appended(px, upstream):
    got = send(px, upstream, [("X-Forwarded-For", "203.0.113.7")])
    values = ",".join(got.header_all("X-Forwarded-For"))
    assert [v.strip() for v in values.split(",")] == ["203.0.113.7", "127.0.0.1"]


def test_x_forwarded_for_appended_to_a_list(px, upstream):
    got = send(px, upstream, [("X-Forwarded-For", "203.0.113.7, 198.51.100.2")])
    values = ",".join(got.header_all("X-Forwarded-For"))
    assert [v.strip() for v in values.split(",")] == ["203.0.113.7", "198.51.100.2", "127.0.0.1"]


def test_x_forwarded_for_from_several_headers(px, upstream):
    got = send(px, upstream, [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.2")])
    values = ",".join(got.header_all("X-Forwarded-For"))
    assert [v.strip() for v in values.split(",")] == ["203.0.113.7", "198.51.100.2", "127.0.0.1"]


def test_x_forwarded_host_and_proto_are_replaced(px, upstream):
    got = send(
        px,
        upstream,
        [("X-Forwarded-Host", "evil.example.net"), ("X-Forwarded-Proto", "https")],
        host="www.example.com:8080",
    )
    assert got.header_all("X-Forwarded-Host") == ["www.example.com:8080"]
    assert got.header_all("X-Forwarded-Proto") == ["http"]


def test_x_forwarded_off_adds_nothing(portico, upstream):
    px = start(portico, upstream, xf="false")
    got = send(px, upstream, [])
    for name in ("X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"):
        assert not got.has_header(name), got.headers


def _forwarded_elements(value):
    out = []
    for element in value.split(","):
        pairs = {}
        for pair in element.split(";"):
            if "=" in pair:
                k, v = pair.split("=", 1)
                pairs[k.strip().lower()] = v.strip().strip('"')
        out.append(pairs)
    return out


def test_forwarded_header_when_enabled(portico, upstream):
    px = start(portico, upstream, fwd="true")
    got = send(px, upstream, [], host="www.example.com:8080")
    values = got.header_all("Forwarded")
    assert len(values) == 1, got.headers
    last = _forwarded_elements(values[0])[-1]
    assert last == {"for": "127.0.0.1", "host": "www.example.com:8080", "proto": "http"}
    # the raw value quotes the host, since ':' is not a token character
    assert 'host="www.example.com:8080"' in values[0]


def test_forwarded_keeps_earlier_elements(portico, upstream):
    px = start(portico, upstream, fwd="true")
    got = send(px, upstream, [("Forwarded", "for=192.0.2.43")])
    elements = _forwarded_elements(", ".join(got.header_all("Forwarded")))
    assert elements[0] == {"for": "192.0.2.43"}
    assert elements[-1]["for"] == "127.0.0.1"


def test_no_forwarded_or_via_by_default(px, upstream):
    got = send(px, upstream, [])
    assert not got.has_header("Forwarded")
    assert not got.has_header("Via")


def test_via_when_enabled(portico, upstream):
    px = start(portico, upstream, via="true")
    got = send(px, upstream, [])
    assert got.header_all("Via") == ["1.1 portico"]
    got = send(px, upstream, [("Via", "1.0 fred")])
    values = [v.strip() for v in ",".join(got.header_all("Via")).split(",")]
    assert values == ["1.0 fred", "1.1 portico"]


def test_host_is_the_upstream_authority(px, upstream):
    got = send(px, upstream, [], host="www.example.com")
    assert got.header_all("Host") == ["internal.example.com:%d" % upstream.port]


def test_preserve_host_keeps_the_client_host(px, upstream):
    got = send(px, upstream, [], target="/keep/x", host="www.example.com:8080")
    assert got.target == "/public/x"
    assert got.header_all("Host") == ["www.example.com:8080"]


def test_end_to_end_headers_pass_in_order(px, upstream):
    got = send(
        px,
        upstream,
        [("X-Multi", "one"), ("Accept", "text/html"), ("X-Multi", "two"), ("Cookie", "a=1; b=2"), ("User-Agent", "e2e/1.0")],
    )
    assert got.header_all("X-Multi") == ["one", "two"]
    assert got.header("Cookie") == "a=1; b=2"
    assert got.header("User-Agent") == "e2e/1.0"
    assert got.header("Accept") == "text/html"


def test_header_lines_are_rebuilt(px, upstream):
    upstream.reset()
    with RawClient(px.port) as c:
        c.send(b"GET /internal/ows HTTP/1.1\r\nHost: www.example.com\r\nX-Spaced:   a  b \t \r\nX-Empty:\r\n\r\n")
        assert c.read_response().status == 200
    head = upstream.wait_request().raw_head
    # one "Name: value" per line, optional whitespace around the value gone
    assert b"\r\nX-Spaced: a  b\r\n" in head, head
    assert b"\r\nX-Empty:" in head, head
    assert b"\t" not in head, head


def test_x_forwarded_for_of_an_ipv6_client(portico, upstream):
    px = portico(CONFIG, up=upstream, xf="true", fwd="true", via="false", bind="::1")
    got = send(px, upstream, [])
    assert got.header_all("X-Forwarded-For") == ["::1"]
    # RFC 7239: an IPv6 node is quoted and bracketed
    assert 'for="[::1]"' in got.header("Forwarded")


def test_request_line_is_rebuilt_as_http11(px, upstream):
    up = upstream
    up.reset()
    r = px.fetch("GET", "/internal/ten", host="www.example.com", version="HTTP/1.0")
    assert r.status == 200
    got = up.wait_request()
    assert got.version == "HTTP/1.1"
    assert got.target == "/public/ten"
    assert got.raw_head.startswith(b"GET /public/ten HTTP/1.1\r\n")


def test_content_length_body_keeps_its_length(px, upstream):
    body = bytes(range(256)) * 40
    got = send(px, upstream, [("Content-Type", "application/octet-stream")], method="POST", body=body)
    assert got.header("Content-Length") == str(len(body))
    assert not got.has_header("Transfer-Encoding")
    assert got.body == body


def test_chunked_body_is_reframed_chunked(px, upstream):
    upstream.reset()
    with RawClient(px.port) as c:
        c.send(
            b"POST /internal/up HTTP/1.1\r\nHost: www.example.com\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        r = c.read_response()
    assert r.status == 200
    got = upstream.wait_request()
    assert got.chunked
    assert got.header_all("Transfer-Encoding") == ["chunked"]
    assert not got.has_header("Content-Length")
    assert got.body == b"hello world"
    assert b"ext=1" not in got.raw_head


def test_expect_100_continue_answered_by_portico(px, upstream):
    upstream.reset()
    body = b"x" * 1000
    with RawClient(px.port) as c:
        c.send(
            b"POST /internal/e HTTP/1.1\r\nHost: www.example.com\r\nExpect: 100-continue\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        interim = c.read_response(skip_interim=False)
        assert interim.status == 100
        c.send(body)
        r = c.read_response()
    assert r.status == 200
    assert r.interim == []  # exactly one 100, the upstream's is not forwarded
    got = upstream.wait_request()
    assert not got.has_header("Expect")
    assert got.body == body


def test_expect_is_case_insensitive(px, upstream):
    upstream.reset()
    with RawClient(px.port) as c:
        c.send(b"PUT /internal/e HTTP/1.1\r\nHost: www.example.com\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
        assert c.read_response(skip_interim=False).status == 100
        c.send(b"abc")
        assert c.read_response().status == 200
    assert upstream.wait_request().body == b"abc"
