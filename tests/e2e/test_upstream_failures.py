"""Upstreams that fail or misbehave (SPEC sections 5 and 9): a body cut
short is never passed on as complete, malformed responses become 502,
refused connections 502, silent upstreams 504, a 101 nobody asked for is
refused, and 1xx interim responses are forwarded or dropped as specified."""

import threading

import pytest

from helpers_stream import connect, read_response_streaming, request_head
from upstreams import RawUpstream, Response, Stream, server_factory

CONFIG = """
workers: 1
timeouts: {upstream_read: {read}}
limits: {response_header_size: 4KiB}
routes:
  - path: /slow-route
    pass: http://internal.example.com:{up}/public
    timeouts: {upstream_read: 1s}
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def start(portico, up, read="60s"):
    return portico(CONFIG, up=up, read=read)


def get(px, target="/internal/x", timeout=8.0):
    """GET on a fresh connection; the streamed response (a cut body shows
    as complete=False instead of an exception)."""
    sock = connect(px.port, timeout=timeout)
    try:
        sock.sendall(request_head("GET", target, []))
        return read_response_streaming(Stream(sock))
    finally:
        sock.close()


class ScriptedUpstream(RawUpstream):
    """Reads one request, writes ``parts`` (bytes, or a float = sleep), then
    closes (``end`` "close"), resets ("reset"), or waits for portico to
    close ("wait": ``peer_closed`` tells whether it did within 5 s)."""

    def __init__(self, parts, end="close"):
        super().__init__(self._script)
        self.parts = parts
        self.end = end
        self.peer_closed = []
        self.done = threading.Event()

    def _script(self, conn):
        try:
            conn.read_request()
            for p in self.parts:
                if isinstance(p, float):
                    conn.sleep(p)
                else:
                    conn.send(p)
            if self.end == "reset":
                conn.reset()
            elif self.end == "wait":
                self.peer_closed.append(not conn.drain(5.0))
        finally:
            self.done.set()


@pytest.fixture
def scripted():
    with server_factory(ScriptedUpstream) as make:
        yield make


# --------------------------------------------------------------------------
# Dying in the middle of a body


@pytest.mark.parametrize("end", ["close", "reset"])
def test_upstream_dying_mid_content_length_body_closes_the_client(portico, scripted, end):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    up = scripted([head, b"a" * 30000, 0.5], end=end)
    px = start(portico, up)
    r = get(px)
    assert r.status == 200
    assert not r.complete, "a truncated body was passed on as complete (%s, %d bytes)" % (r.framing, r.length)
    assert r.length < 100000


@pytest.mark.parametrize("end", ["close", "reset"])
@pytest.mark.parametrize("cut", ["between-chunks", "inside-a-chunk"])
def test_upstream_dying_mid_chunked_body_closes_the_client(portico, scripted, end, cut):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"1000\r\n" + b"b" * 4096 + b"\r\n" + b"1000\r\n" + b"c" * 4096 + b"\r\n"
    if cut == "inside-a-chunk":
        body += b"1000\r\n" + b"d" * 100
    up = scripted([head, body, 0.5], end=end)
    px = start(portico, up)
    r = get(px)
    assert r.status == 200
    assert r.framing == "chunked", r.head
    assert not r.complete, "the terminating 0-chunk reached the client after the upstream died"


def test_upstream_going_silent_mid_body_closes_the_client(portico, scripted):
    """upstream_read applies between two reads of the body too: the head is
    already sent, so the client connection is closed, not given a 504."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n"
    up = scripted([head, b"s" * 1000, 6.0])
    px = start(portico, up, read="1s")
    r = get(px, timeout=8)
    assert r.status == 200
    assert not r.complete and r.length < 50000


# --------------------------------------------------------------------------
# Malformed responses


MALFORMED = {
    "garbage-status-line": b"GARBAGE\r\n\r\n",
    "bad-status-code": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
    "not-http": b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
    "status-600": b"HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nok",
    "status-099": b"HTTP/1.1 099 Below\r\nContent-Length: 2\r\n\r\nok",
    "status-four-digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "bare-cr-in-header": b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 2\r\n\r\nok",
    "bare-cr-line-end": b"HTTP/1.1 200 OK\rX-Bad: a\r\nContent-Length: 2\r\n\r\nok",
    "header-without-colon": b"HTTP/1.1 200 OK\r\nX-Bad\r\nContent-Length: 2\r\n\r\nok",
    "two-content-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
    "header-section-over-limit": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 8000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "many-headers-over-limit": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(200)) + b"Content-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_response_is_502_and_upstream_connection_closed(portico, scripted, name):
    up = scripted([MALFORMED[name]], end="wait")
    px = start(portico, up)
    r = get(px)
    assert r.status == 502, (name, r.status, r.head)
    assert up.done.wait(8)
    assert up.peer_closed == [True], "portico kept the upstream connection after a malformed response"


def test_header_section_under_the_limit_passes(portico, scripted):
    """The positive control of header-section-over-limit."""
    up = scripted([b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 2000 + b"\r\nContent-Length: 2\r\n\r\nok"])
    px = start(portico, up)
    r = get(px)
    assert r.status == 200 and r.header("X-Big") == "a" * 2000
    assert r.complete and r.length == 2


# --------------------------------------------------------------------------
# Connection failures and timeouts


def test_connection_refused_is_502(portico, refused_port):
    px = portico(
        "routes:\n  - path: /internal\n    pass: http://internal.example.com:{dead}/public\n",
        dead=refused_port,
    )
    r = get(px)
    assert r.status == 502, r.head
    assert r.complete


@pytest.mark.parametrize("end", ["close", "reset"])
def test_upstream_closing_without_answer_is_502(portico, scripted, end):
    up = scripted([], end=end)
    px = start(portico, up)
    r = get(px)
    assert r.status == 502, r.head


@pytest.mark.parametrize("where", ["global", "route"])
def test_silent_upstream_is_504_after_upstream_read(portico, silent_upstream, where):
    if where == "global":
        px = start(portico, silent_upstream, read="1s")
        target = "/internal/silent"
    else:
        px = start(portico, silent_upstream)
        target = "/slow-route/silent"
    r = get(px, target, timeout=8)
    assert r.status == 504, r.head
    assert r.complete


# --------------------------------------------------------------------------
# Interim responses


def test_101_without_upgrade_request_is_502(portico, scripted):
    up = scripted([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"], end="wait")
    px = start(portico, up)
    r = get(px)
    assert r.status == 502, r.head
    assert up.done.wait(8)
    assert up.peer_closed == [True]


def test_103_early_hints_are_forwarded(portico, upstream):
    link = "</style.css>; rel=preload; as=style"
    upstream.handle("/public/hints", Response(200, [("Content-Type", "text/plain")], b"final", interim=[(103, [("Link", link)])]))
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/hints")
        r = c.read_response()
    assert r.status == 200 and r.body == b"final"
    assert [i.status for i in r.interim] == [103]
    assert r.interim[0].header("Link") == link


def test_100_is_not_forwarded_to_a_client_without_expect(portico, upstream):
    upstream.handle("/public/c", Response(200, [("Content-Type", "text/plain")], b"final", interim=[(100, [])]))
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/c")
        r = c.read_response()
        assert r.status == 200 and r.body == b"final"
        assert r.interim == [], [i.raw_head for i in r.interim]
        # nothing stray on the connection either
        c.request("GET", "/internal/next")
        r = c.read_response()
        assert r.status == 200 and r.interim == []


@pytest.mark.parametrize("status", [102, 150, 199])
def test_other_1xx_are_dropped(portico, upstream, status):
    upstream.handle("/public/p", Response(200, [("Content-Type", "text/plain")], b"final", interim=[(status, [("X-Interim", "1")])]))
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/p")
        r = c.read_response()
    assert r.status == 200 and r.body == b"final"
    assert r.interim == [], [i.raw_head for i in r.interim]


def test_mixed_interim_responses_keep_only_103(portico, upstream):
    interim = [(100, []), (102, []), (103, [("Link", "</a.js>; rel=preload")]), (199, []), (103, [("Link", "</b.js>; rel=preload")])]
    upstream.handle("/public/m", Response(200, [("Content-Type", "text/plain")], b"final", interim=interim))
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/m")
        r = c.read_response()
    assert r.status == 200 and r.body == b"final"
    assert [(i.status, i.header("Link")) for i in r.interim] == [(103, "</a.js>; rel=preload"), (103, "</b.js>; rel=preload")]


# --------------------------------------------------------------------------
# Bytes beyond the response


def test_upstream_bytes_after_the_response_are_never_a_response(portico, raw_upstream):
    """An upstream writes a second, unrequested response right after the
    first: portico must not keep that connection and hand those bytes to
    the next request (response splitting)."""

    def script(conn):
        for _ in conn.requests():
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG")

    up = raw_upstream(script)
    px = start(portico, up)
    with px.client() as c:
        for i in range(3):
            c.request("GET", "/internal/split/%d" % i)
            r = c.read_response()
            assert r.body != b"WRONG", "request %d got the unrequested response" % i
            assert r.status == 200 and r.body == b"ok", (i, r.status, r.raw_head, r.body[:200])


def test_body_sent_with_a_head_response_is_not_passed_on(portico, raw_upstream):
    """A HEAD answered with body bytes: the client gets the head only, and
    its next request gets its own response."""

    def script(conn):
        for req in conn.requests():
            if req.method == "HEAD":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            else:
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")

    up = raw_upstream(script)
    px = start(portico, up)
    with px.client() as c:
        c.request("HEAD", "/internal/h")
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        c.request("GET", "/internal/g")
        r = c.read_response()
        assert r.status == 200 and r.body == b"next", (r.status, r.raw_head, r.body)


def test_upstream_closing_after_the_head_closes_the_client(portico, scripted):
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0.3])
    px = start(portico, up)
    r = get(px)
    assert r.status in (200, 502)
    if r.status == 200:
        assert not r.complete and r.length == 0


def test_response_with_content_length_and_chunked_is_never_ambiguous(portico, scripted):
    """Transfer-Encoding overrides Content-Length (RFC 9112 6.3): portico
    either refuses the response (502) or forwards it without the
    Content-Length; the client never gets both."""
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    up = scripted([data])
    px = start(portico, up)
    r = get(px)
    assert r.status in (200, 502), r.head
    assert not (r.header("Content-Length") is not None and r.header("Transfer-Encoding") is not None), r.head
    if r.status == 200:
        assert r.framing == "chunked" and r.complete and r.length == 5


def test_upstream_stalling_inside_the_head_is_504(portico, scripted):
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Type: text/pl", 4.0])
    px = start(portico, up, read="1s")
    r = get(px, timeout=8)
    assert r.status == 504, r.head


@pytest.mark.parametrize("case", ["malformed", "refused"])
def test_client_connection_after_a_502_is_consistent(portico, scripted, upstream, refused_port, case):
    """After a 502 the client connection either says Connection: close and
    closes, or stays usable for the next request."""
    if case == "malformed":
        bad = scripted([b"GARBAGE\r\n\r\n"])
        port = bad.port
    else:
        port = refused_port
    px = portico(
        "workers: 1\nroutes:\n  - path: /bad\n    pass: http://internal.example.com:{bad}/public\n"
        "  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
        bad=port,
        up=upstream,
    )
    with px.client() as c:
        c.request("GET", "/bad/x")
        r = c.read_response()
        assert r.status == 502
        if r.connection_close:
            assert c.wait_closed(5)
        else:
            c.request("GET", "/internal/y")
            r = c.read_response()
            assert r.status == 200 and r.body == b"GET /public/y\n"


@pytest.mark.parametrize(
    "bad_chunk",
    [b"zz\r\nxx\r\n", b"ffffffffffffffffffff\r\n", b"10\r\n0123456789abcdefXX\r\n", b"-5\r\nhello\r\n"],
    ids=["not-hex", "size-overflow", "missing-crlf-after-data", "negative"],
)
def test_invalid_chunk_after_the_head_closes_the_client(portico, scripted, bad_chunk):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    up = scripted([head, b"5\r\nhello\r\n", 0.3, bad_chunk + b"0\r\n\r\n", 2.0])
    px = start(portico, up)
    r = get(px)
    assert r.status in (200, 502)
    if r.status == 200:
        assert r.framing == "chunked"
        assert not r.complete, "a body with an invalid chunk was passed on as complete"


@pytest.mark.parametrize("value", [b"-1", b"+5", b"5 5", b"0x5", b"99999999999999999999999"])
def test_invalid_content_length_is_502(portico, scripted, value):
    up = scripted([b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nhello"], end="wait")
    px = start(portico, up)
    r = get(px)
    assert r.status == 502, (value, r.head)


def _two_routes(portico, bad_port, upstream):
    return portico(
        "workers: 1\nroutes:\n  - path: /bad\n    pass: http://internal.example.com:{bad}/public\n"
        "  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
        bad=bad_port,
        up=upstream,
    )


def test_502_to_a_head_request_has_no_body(portico, upstream, refused_port):
    px = _two_routes(portico, refused_port, upstream)
    with px.client() as c:
        c.send(b"HEAD /bad/x HTTP/1.1\r\nHost: a\r\n\r\nGET /internal/y HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 502 and r.body == b""
        if r.connection_close:
            assert c.wait_closed(5)
            assert c.stream.buf == b"", "bytes after a HEAD 502: %r" % bytes(c.stream.buf[:200])
        else:
            r = c.read_response()
            assert r.status == 200 and r.body == b"GET /public/y\n", (r.status, r.body[:200])


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_request_body_of_a_502_is_not_taken_for_the_next_request(portico, upstream, refused_port, chunked):
    """The body of a request that got 502 is skipped (or the connection
    closed): its bytes never parse as a request of their own."""
    px = _two_routes(portico, refused_port, upstream)
    body = b"GET /internal/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    if chunked:
        framed = b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        framed = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with px.client() as c:
        c.send(b"POST /bad/x HTTP/1.1\r\nHost: a\r\n" + framed + b"GET /internal/y HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response("POST")
        assert r.status == 502
        if r.connection_close:
            assert c.wait_closed(5)
        else:
            r = c.read_response()
            assert r.status == 200 and r.body == b"GET /public/y\n", (r.status, r.body[:200])
    assert "/public/smuggled" not in [q.target for q in upstream.requests]


def test_silent_upstream_after_a_request_body_is_504(portico, silent_upstream):
    """The upstream takes the whole body, then never answers."""
    px = start(portico, silent_upstream, read="1s")
    sock = connect(px.port, timeout=8)
    try:
        sock.sendall(request_head("POST", "/internal/silent", [("Content-Length", str(1 << 20))]) + b"p" * (1 << 20))
        r = read_response_streaming(Stream(sock), "POST")
    finally:
        sock.close()
    assert r.status == 504, r.head


def test_many_response_headers_within_the_size_limit_pass(portico, scripted):
    """Only response_header_size bounds a response head (header_count is
    for requests): 1000 small headers in 20 KB pass with the default 64 KiB."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-N%d: %d\r\n" % (i, i) for i in range(1000)) + b"Content-Length: 2\r\n\r\nok"
    up = scripted([head])
    px = portico("routes:\n  - path: /internal\n    pass: http://internal.example.com:{up}/public\n", up=up)
    r = get(px)
    assert r.status == 200, r.head[:200]
    assert r.complete and r.length == 2
    assert [r.header("X-N%d" % i) for i in (0, 500, 999)] == ["0", "500", "999"]
    assert sum(1 for k, _ in r.headers if k.startswith("X-N")) == 1000
