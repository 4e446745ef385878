"""Every status of SPEC section 9, provoked for real over the network, with
the error page, its request id in the error log, and Connection: close after
errors that leave the request framing unknown."""

import re
import ssl
import time

import pytest

from conftest import self_signed
from upstreams import FullBacklogListener, HTTPUpstream, RawClient

CONFIG = """
limits: {header_size: 4k, header_count: 20, body_size: 1k, response_header_size: 8k}
timeouts: {upstream_connect: 1s, upstream_read: 1s}
routes:
  - path: /internal/excluded
    pass: off
  - path: /internal
    pass: http://internal.example.com:{up}/public
  - path: /denied
    pass: http://internal.example.com:{up}/public
    access: [{deny: all}]
  - path: /refused
    pass: http://internal.example.com:{refused}/gone
  - path: /other
    pass: http://internal.example.com:{other}/x
"""

HOST = b"Host: www.example.com\r\n"


@pytest.fixture
def px(portico, upstream, refused_port):
    return portico(CONFIG, up=upstream, refused=refused_port, other=refused_port)


def with_other(portico, upstream, other):
    """portico whose /other route goes to ``other`` (a port or a server)."""
    return portico(CONFIG, up=upstream, refused=other, other=other)


def exchange(px, data, method="GET"):
    with RawClient(px.port) as c:
        c.send(data)
        return c.read_response(method)


def expect_error_and_close(px, data, status, method="GET"):
    """Sends ``data``; expects ``status`` with Connection: close, then EOF."""
    with RawClient(px.port) as c:
        c.send(data)
        r = c.read_response(method)
        assert r.status == status, (data[:200], r.status, r.body[:200])
        assert r.connection_close, r.headers
        assert c.wait_closed(), "connection still open after a %d" % status
    return r


def assert_error_page(r, status, px=None):
    """A small HTML page with the status; with ``px``, also a request id that
    portico's error log carries (SPEC 9: "also logged")."""
    assert r.status == status
    assert "text/html" in (r.header("Content-Type") or ""), r.headers
    assert str(status).encode() in r.body
    assert r.framing in ("length", "chunked")
    assert len(r.body) < 4096
    if px is not None:
        assert_request_id_logged(px, r)


def assert_request_id_logged(px, r):
    """The page carries a request id that the error log also carries."""
    deadline = time.monotonic() + 3
    while True:
        ids = set(px.request_ids())
        hits = [i for i in ids if len(i) >= 6 and i.encode() in r.body]
        if hits:
            return hits[0]
        if time.monotonic() > deadline:
            raise AssertionError("no request id of the error log in the page\npage: %r\nlog:\n%s" % (r.body, px.stderr[-2000:]))
        time.sleep(0.05)


# -- 400, then close


BAD_REQUESTS = {
    "request-line-garbage": b"GARBAGE\r\n\r\n",
    "request-line-http09": b"GET /internal/x\r\n\r\n",
    "request-line-extra-token": b"GET /internal/x HTTP/1.1 extra\r\n" + HOST + b"\r\n",
    "request-line-double-space": b"GET  /internal/x HTTP/1.1\r\n" + HOST + b"\r\n",
    "request-line-bad-method": b"G(T /internal/x HTTP/1.1\r\n" + HOST + b"\r\n",
    "request-line-bad-version": b"GET /internal/x HTTQ/1.1\r\n" + HOST + b"\r\n",
    "missing-host": b"GET /internal/x HTTP/1.1\r\nUser-Agent: t\r\n\r\n",
    "two-hosts": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"Host: other.example.com\r\n\r\n",
    "two-equal-hosts": b"GET /internal/x HTTP/1.1\r\n" + HOST + HOST + b"\r\n",
    "cl-and-te": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-and-cl": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "two-different-cl": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl-list": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: 5, 6\r\n\r\nhello!",
    "cl-not-a-number": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n",
    "cl-plus": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: +5\r\n\r\nhello",
    "cl-negative": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n",
    "te-gzip": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n",
    "te-gzip-chunked": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te-chunked-twice": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-chunked-gzip": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te-xchunked": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-identity": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: identity\r\n\r\n",
    "obs-fold": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-Folded: a\r\n  b\r\n\r\n",
    "bare-lf": b"GET /internal/x HTTP/1.1\n" + b"Host: www.example.com\n\n",
    "bare-lf-in-headers": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-A: 1\nX-B: 2\r\n\r\n",
    "bare-cr": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n\r\n",
    "nul-in-value": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n",
    "control-in-value": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-A: a\x01b\r\n\r\n",
    "del-in-value": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-A: a\x7fb\r\n\r\n",
    "space-before-colon": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-A : b\r\n\r\n",
    "space-in-name": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X A: b\r\n\r\n",
    "no-colon": b"GET /internal/x HTTP/1.1\r\n" + HOST + b"NoColonHere\r\n\r\n",
    "bad-chunk-size": b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "path-encoded-slash": b"GET /internal/a%2Fb HTTP/1.1\r\n" + HOST + b"\r\n",
    "path-above-root": b"GET /internal/../../etc/passwd HTTP/1.1\r\n" + HOST + b"\r\n",
    "path-fragment": b"GET /internal/a#b HTTP/1.1\r\n" + HOST + b"\r\n",
    "path-relative": b"GET internal/x HTTP/1.1\r\n" + HOST + b"\r\n",
    "path-nul-escape": b"GET /internal/%00 HTTP/1.1\r\n" + HOST + b"\r\n",
    "fragment-after-query": b"GET /internal/q?a#b HTTP/1.1\r\n" + HOST + b"\r\n",
    "host-with-space": b"GET /internal/x HTTP/1.1\r\nHost: www.exa mple.com\r\n\r\n",
    "host-with-path": b"GET /internal/x HTTP/1.1\r\nHost: www.example.com/evil\r\n\r\n",
    "host-bad-port": b"GET /internal/x HTTP/1.1\r\nHost: www.example.com:80x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_400_then_close(px, upstream, name):
    r = expect_error_and_close(px, BAD_REQUESTS[name], 400)
    assert_error_page(r, 400, px)
    assert upstream.requests == []


def test_chunked_is_case_insensitive(px, upstream):
    r = exchange(px, b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert r.status == 200
    assert upstream.wait_request().body == b"abc"


def test_http10_without_host_is_served(px, upstream):
    r = exchange(px, b"GET /internal/x HTTP/1.0\r\n\r\n")
    assert r.status == 200
    assert upstream.wait_request().target == "/public/x"


def test_smuggled_request_after_a_400_is_never_served(px, upstream):
    data = (
        b"POST /internal/a HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n"
        b"GET /internal/smuggled HTTP/1.1\r\n" + HOST + b"\r\n"
    )
    with RawClient(px.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 400
        assert c.wait_closed()
        assert c.stream.buf == b""  # no second response
    assert upstream.requests == []


def test_400_page_carries_a_logged_request_id(px):
    r = expect_error_and_close(px, BAD_REQUESTS["two-hosts"], 400)
    assert_request_id_logged(px, r)


# -- 431, 414, 413


def test_431_header_section_too_big(px, upstream):
    data = b"GET /internal/x HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 6000 + b"\r\n\r\n"
    r = expect_error_and_close(px, data, 431)
    assert_error_page(r, 431, px)
    assert upstream.requests == []


def test_431_many_small_headers_over_the_size(px, upstream):
    data = b"GET /internal/x HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 300) for i in range(15)) + b"\r\n"
    expect_error_and_close(px, data, 431)


def test_431_too_many_headers(px, upstream):
    data = b"GET /internal/x HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: v\r\n" % i for i in range(30)) + b"\r\n"
    r = expect_error_and_close(px, data, 431)
    assert_error_page(r, 431, px)
    assert upstream.requests == []


def test_headers_at_the_limits_are_served(px, upstream):
    # 20 header fields (Host included) and well under 4 KiB
    data = b"GET /internal/x HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: v\r\n" % i for i in range(19)) + b"\r\n"
    assert exchange(px, data).status == 200


def test_414_request_line_too_long(px, upstream):
    data = b"GET /internal/" + b"a" * 6000 + b" HTTP/1.1\r\n" + HOST + b"\r\n"
    r = expect_error_and_close(px, data, 414)
    assert_error_page(r, 414, px)
    assert upstream.requests == []


def test_413_content_length_over_body_size(px, upstream):
    data = b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: 2000\r\n\r\n"
    r = expect_error_and_close(px, data, 413)
    assert_error_page(r, 413, px)
    assert upstream.requests == []


def test_413_reaches_a_client_still_sending_its_body(px, upstream):
    """The refused body keeps coming: portico reads and drops it (a lingering
    close) instead of closing with bytes unread, which would reset the
    connection under a client that has not read its 413 yet."""
    body = b"x" * (8 << 20)
    with RawClient(px.port) as c:
        c.send(b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: %d\r\n\r\n" % len(body))
        c.send(body)
        r = c.read_response("POST")
        assert r.status == 413 and r.connection_close
        assert c.wait_closed()
    assert upstream.requests == []


def test_413_chunked_body_over_body_size(px, upstream):
    chunk = b"x" * 400
    data = b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(b"190\r\n" + chunk + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    r = expect_error_and_close(px, data, 413)
    assert_error_page(r, 413, px)


def test_body_at_body_size_is_served(px, upstream):
    body = b"y" * 1024
    r = exchange(px, b"POST /internal/x HTTP/1.1\r\n" + HOST + b"Content-Length: 1024\r\n\r\n" + body)
    assert r.status == 200
    assert upstream.wait_request().body == body


def test_413_with_expect_sends_no_100(px, upstream):
    with RawClient(px.port) as c:
        c.send(b"PUT /internal/x HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        r = c.read_response(skip_interim=False)
        assert r.status == 413


# -- 405, 417, 404, 403


def test_405_connect(px, upstream):
    r = exchange(px, b"CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n")
    assert_error_page(r, 405, px)
    assert upstream.requests == [] and upstream.connections_accepted == 0


def test_417_unknown_expectation(px, upstream):
    r = exchange(px, b"GET /internal/x HTTP/1.1\r\n" + HOST + b"Expect: foo\r\n\r\n")
    assert_error_page(r, 417, px)
    assert upstream.requests == []


def test_404_no_route(px, upstream):
    r = exchange(px, b"GET /nowhere HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 404, px)


def test_404_exclusion(px, upstream):
    r = exchange(px, b"GET /internal/excluded/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 404, px)
    assert upstream.requests == []


def test_404_keeps_the_connection_alive(px, upstream):
    with RawClient(px.port) as c:
        c.send(b"GET /nowhere HTTP/1.1\r\n" + HOST + b"\r\n")
        assert c.read_response().status == 404
        c.send(b"GET /internal/after HTTP/1.1\r\n" + HOST + b"\r\n")
        r = c.read_response()
        assert r.status == 200
    assert upstream.wait_request().target == "/public/after"


def test_error_to_head_has_no_body(px):
    with RawClient(px.port) as c:
        c.send(b"HEAD /nowhere HTTP/1.1\r\n" + HOST + b"\r\n")
        r = c.read_response("HEAD")
        assert r.status == 404 and r.body == b""
        c.send(b"GET /nowhere HTTP/1.1\r\n" + HOST + b"\r\n")
        assert c.read_response().status == 404


def test_403_access_denied(px, upstream):
    r = exchange(px, b"GET /denied/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 403, px)
    assert upstream.requests == [] and upstream.connections_accepted == 0


# -- 502


def test_502_connection_refused(px):
    r = exchange(px, b"GET /refused/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 502, px)
    assert_request_id_logged(px, r)


INVALID_RESPONSES = {
    "garbage": b"hello there\r\n\r\n",
    "bad-status-code": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "bad-version": b"HTTQ/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "no-colon": b"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "bare-cr-in-header": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",
    "two-different-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "header-too-big": b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 10000 + b"\r\nContent-Length: 0\r\n\r\n",
    "closed-without-answer": b"",
    "truncated-head": b"HTTP/1.1 200 OK\r\nContent-Le",
    "unrequested-101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(INVALID_RESPONSES))
def test_502_invalid_response(portico, upstream, raw_reply, name):
    raw = raw_reply(INVALID_RESPONSES[name])
    px = with_other(portico, upstream, raw)
    r = exchange(px, b"GET /other/y HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 502, px)
    assert raw.conns and raw.conns[0].received.startswith(b"GET /x/y HTTP/1.1\r\n")
    assert_request_id_logged(px, r)


def test_502_upstream_reset(portico, upstream, raw_upstream):
    def script(conn):
        conn.read_request()
        conn.reset()

    raw = raw_upstream(script)
    px = with_other(portico, upstream, raw)
    r = exchange(px, b"GET /other/y HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 502, px)


def test_client_connection_survives_a_502(portico, upstream, raw_reply):
    raw = raw_reply(b"nonsense\r\n\r\n")
    px = with_other(portico, upstream, raw)
    with RawClient(px.port) as c:
        c.send(b"GET /other/y HTTP/1.1\r\n" + HOST + b"\r\n")
        assert c.read_response().status == 502
        c.send(b"GET /internal/z HTTP/1.1\r\n" + HOST + b"\r\n")
        assert c.read_response().status == 200


# -- 502: TLS toward the upstream


@pytest.fixture(scope="module")
def upstream_cert(tmp_path_factory):
    """A self-signed certificate for internal.example.com: (cert, key)."""
    return self_signed(tmp_path_factory.mktemp("tls"), "internal.example.com", "DNS:internal.example.com")


@pytest.fixture
def tls_upstream(upstream_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(upstream_cert[0]), str(upstream_cert[1]))
    s = HTTPUpstream(tls=ctx).start()
    yield s
    s.stop()


TLS_CONFIG = """
routes:
  - path: /secure
    pass: https://internal.example.com:{tls}/s
{extra}
"""


def test_tls_upstream_with_its_ca_is_served(portico, tls_upstream, upstream_cert):
    px = portico(TLS_CONFIG, tls=tls_upstream, extra="    tls: {ca: %s}" % upstream_cert[0])
    r = exchange(px, b"GET /secure/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 200
    assert tls_upstream.wait_request().target == "/s/x"


def test_502_tls_unverified_certificate(portico, tls_upstream):
    px = portico(TLS_CONFIG, tls=tls_upstream, extra="")
    r = exchange(px, b"GET /secure/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 502, px)
    assert tls_upstream.requests == []
    rid = assert_request_id_logged(px, r)
    line = re.search(r"^.*\bid=%s\b.*$" % re.escape(rid), px.stderr, re.M).group(0)
    assert re.search(r"certif|verif", line, re.I), line  # the log says why


def test_502_tls_name_mismatch(portico, tls_upstream, upstream_cert):
    px = portico(TLS_CONFIG, tls=tls_upstream, extra="    tls: {ca: %s, server_name: other.example.com}" % upstream_cert[0])
    r = exchange(px, b"GET /secure/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 502, px)
    assert tls_upstream.requests == []
    rid = assert_request_id_logged(px, r)
    line = re.search(r"^.*\bid=%s\b.*$" % re.escape(rid), px.stderr, re.M).group(0)
    assert re.search(r"certif|verif|name|host", line, re.I), line


def test_502_tls_toward_a_plain_http_upstream(portico, raw_upstream):
    hello = []

    def plain_http_server(conn):
        # what an HTTP server answers to a TLS ClientHello
        hello.append(conn.stream.read_some())
        conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    plain = raw_upstream(plain_http_server)
    px = portico(TLS_CONFIG, tls=plain, extra="")
    r = exchange(px, b"GET /secure/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 502, px)
    assert hello and hello[0][:1] == b"\x16"  # a TLS handshake record, not plain HTTP


def test_504_tls_handshake_never_answered(portico, silent_upstream):
    px = portico(
        "timeouts: {upstream_connect: 1s, upstream_read: 1s}\n" + TLS_CONFIG,
        tls=silent_upstream,
        extra="",
    )
    t0 = time.monotonic()
    r = exchange(px, b"GET /secure/x HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_error_page(r, 504, px)
    assert time.monotonic() - t0 < 4.5


# -- the connection limit

LIMITED_CONFIG = """
workers: {workers}
limits: {connections: 2}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def test_connection_limit_defers_accept_until_a_slot_frees(portico, upstream):
    px = portico(LIMITED_CONFIG, workers=1, up=upstream)
    first, second = px.client(), px.client()
    try:
        for c in (first, second):
            c.request("GET", "/internal/held")
            assert c.read_response().status == 200
        with RawClient(px.port, timeout=1.0) as third:
            third.request("GET", "/internal/third")
            with pytest.raises(OSError):  # socket.timeout: not served while both slots are taken
                third.read_response()
            first.close()
            third.sock.settimeout(5)
            r = third.read_response()
            assert r.status == 200
    finally:
        first.close()
        second.close()
    assert [q.target for q in upstream.requests] == ["/public/held", "/public/held", "/public/third"]


def test_connection_limit_counts_every_worker(portico, upstream):
    # two workers share a limit of two: two clients at once are always served,
    # whichever worker the kernel hands each connection to
    px = portico(LIMITED_CONFIG, workers=2, up=upstream)
    for trial in range(8):
        clients = [RawClient(px.port) for _ in range(2)]
        try:
            for i, c in enumerate(clients):
                c.request("GET", "/internal/t%d-%d" % (trial, i))
                assert c.read_response().status == 200
        finally:
            for c in clients:
                c.close()
        time.sleep(0.1)  # both slots free again


# -- 504


def test_504_connect_timeout(portico, upstream):
    with FullBacklogListener() as fb:
        if not fb.connect_hangs():
            pytest.skip("this kernel answers connects beyond the backlog")
        px = with_other(portico, upstream, fb.port)
        t0 = time.monotonic()
        r = exchange(px, b"GET /other/y HTTP/1.1\r\n" + HOST + b"\r\n")
        elapsed = time.monotonic() - t0
    assert_error_page(r, 504, px)
    assert 0.8 <= elapsed < 4.5, elapsed
    assert_request_id_logged(px, r)


def test_504_read_timeout(portico, upstream, silent_upstream):
    px = with_other(portico, upstream, silent_upstream)
    t0 = time.monotonic()
    r = exchange(px, b"GET /other/y HTTP/1.1\r\n" + HOST + b"\r\n")
    elapsed = time.monotonic() - t0
    assert_error_page(r, 504, px)
    assert 0.8 <= elapsed < 4.5, elapsed
    assert silent_upstream.wait_connections(1) and silent_upstream.connections_accepted == 1
    assert_request_id_logged(px, r)


def test_504_route_read_timeout_overrides_global(portico, silent_upstream):
    px = portico(
        """
timeouts: {upstream_read: 60s}
routes:
  - path: /slow
    pass: http://internal.example.com:{slow}/slow
    timeouts: {upstream_read: 1s}
""",
        slow=silent_upstream,
    )
    t0 = time.monotonic()
    r = exchange(px, b"GET /slow/y HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 504
    assert time.monotonic() - t0 < 4.5


def test_slow_upstream_within_read_timeout_is_served(px, upstream):
    from upstreams import Response

    upstream.handle("/public/slow", Response(200, body=b"late", delay=0.5))
    r = exchange(px, b"GET /internal/slow HTTP/1.1\r\n" + HOST + b"\r\n")
    assert r.status == 200 and r.body == b"late"


# -- request ids


def test_request_ids_differ(px):
    pages = [exchange(px, b"GET /refused/%d HTTP/1.1\r\n" % i + HOST + b"\r\n") for i in range(3)]
    ids = [assert_request_id_logged(px, p) for p in pages]
    assert len(set(ids)) == 3
    for i in ids:
        line = re.search(r"^.*\bid=%s\b.*$" % re.escape(i), px.stderr, re.M).group(0)
        # SPEC 11: 2026-11-27T10:00:00.123Z [warn] message key=value ...
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(error|warn|info|debug)\] \S", line), line
