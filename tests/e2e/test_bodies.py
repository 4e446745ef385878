"""Request and response bodies through portico (SPEC sections 4 and 5):
streamed both ways whatever their size, compared by sha256 at the other end;
Content-Length kept, chunked forwarded chunked, close-delimited responses
re-framed for HTTP/1.1 and HTTP/1.0 clients, bodiless responses, and
Expect: 100-continue answered by portico itself."""

import hashlib
import threading
import time

import pytest

from helpers_stream import (
    ONE_ROUTE_CONFIG as CONFIG,
    MiB,
    HashingUpstream,
    connect,
    pattern,
    pattern_sha256,
    read_response_streaming,
    request_head,
    send_body,
)
from upstreams import Response, Stream, in_background, parse_response

SIZES = [0, 1, MiB, 100 * MiB]
SIZE_IDS = ["0B", "1B", "1MiB", "100MiB"]


@pytest.fixture
def hashing_upstream():
    with HashingUpstream() as up:
        yield up


@pytest.fixture
def body_upstream(upstream):
    """Serves pattern bodies: /public/{length,chunked,close}/SIZE."""

    def size_of(req):
        return int(req.path.rsplit("/", 1)[1])

    ctype = ("Content-Type", "application/octet-stream")
    upstream.handle("/public/length/*", lambda req: Response(200, [ctype, ("Content-Length", str(size_of(req)))], pattern(size_of(req))))
    upstream.handle("/public/chunked/*", lambda req: Response(200, [ctype], pattern(size_of(req))))
    upstream.handle("/public/close/*", lambda req: Response(200, [ctype], pattern(size_of(req)), close=True))
    return upstream


def get_streamed(px, target, version="HTTP/1.1", method="GET", headers=()):
    """One request on a fresh connection; returns (response, stream)."""
    sock = connect(px.port)
    stream = Stream(sock)
    sock.sendall(request_head(method, target, list(headers), version=version))
    return read_response_streaming(stream, method), stream


def upload(px, size, chunked, headers=()):
    """POSTs pattern(size) and returns the response (the upstream's
    "LENGTH SHA256" answer) as text."""
    hs = list(headers)
    hs.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(size)))
    sock = connect(px.port)
    try:
        sock.sendall(request_head("POST", "/internal/upload", hs))
        send_body(sock, size, chunked)
        return parse_response(Stream(sock), "POST")
    finally:
        sock.close()


# --------------------------------------------------------------------------
# Request bodies


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_content_length_request_body_arrives_intact(portico, hashing_upstream, size):
    px = portico(CONFIG, up=hashing_upstream)
    r = upload(px, size, chunked=False)
    assert r.status == 200, r.body[:300]
    rec = hashing_upstream.wait_records(1)[0]
    assert rec.complete
    assert not rec.chunked, rec.headers
    assert rec.header("Content-Length") == str(size), rec.headers
    assert rec.length == size
    assert rec.sha256 == pattern_sha256(size)
    assert r.body.decode() == "%d %s\n" % (size, pattern_sha256(size))


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_chunked_request_body_is_forwarded_chunked(portico, hashing_upstream, size):
    px = portico(CONFIG, up=hashing_upstream)
    r = upload(px, size, chunked=True)
    assert r.status == 200, r.body[:300]
    rec = hashing_upstream.wait_records(1)[0]
    assert rec.complete
    assert rec.chunked, rec.headers
    assert rec.header("Transfer-Encoding").lower() == "chunked"
    assert not rec.has_header("Content-Length"), rec.headers
    assert rec.length == size
    assert rec.sha256 == pattern_sha256(size)


def test_chunk_extensions_and_trailers_do_not_corrupt_the_body(portico, hashing_upstream):
    px = portico(CONFIG, up=hashing_upstream)
    body = b"".join(pattern(3000))
    wire = b"a;ext=1\r\n" + body[:10] + b"\r\n" + b"%x\r\n" % 2990 + body[10:] + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
    sock = connect(px.port)
    try:
        sock.sendall(request_head("POST", "/internal/t", [("Transfer-Encoding", "chunked")]) + wire)
        r = parse_response(Stream(sock), "POST")
    finally:
        sock.close()
    assert r.status == 200
    rec = hashing_upstream.wait_records(1)[0]
    assert rec.chunked and rec.complete
    assert rec.length == 3000 and rec.sha256 == pattern_sha256(3000)


# --------------------------------------------------------------------------
# Response bodies


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_content_length_response_is_passed_with_its_length(portico, body_upstream, size):
    px = portico(CONFIG, up=body_upstream)
    r, stream = get_streamed(px, "/internal/length/%d" % size)
    stream.sock.close()
    assert r.status == 200
    assert r.framing == "length", r.head
    assert r.header("Content-Length") == str(size)
    assert r.header("Transfer-Encoding") is None
    assert r.complete and r.length == size
    assert r.sha256 == pattern_sha256(size)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_chunked_response_arrives_chunked(portico, body_upstream, size):
    px = portico(CONFIG, up=body_upstream)
    r, stream = get_streamed(px, "/internal/chunked/%d" % size)
    stream.sock.close()
    assert r.status == 200
    assert r.framing == "chunked", r.head
    assert r.header("Content-Length") is None
    assert r.complete and r.length == size
    assert r.sha256 == pattern_sha256(size)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_close_delimited_response_is_chunked_for_http11_clients(portico, body_upstream, size):
    px = portico(CONFIG, up=body_upstream)
    r, stream = get_streamed(px, "/internal/close/%d" % size)
    try:
        assert r.status == 200
        assert r.framing == "chunked", r.head
        assert r.complete, "no terminating chunk"
        assert r.length == size and r.sha256 == pattern_sha256(size)
        # The framing is known, so the client connection stays usable.
        stream.send(request_head("GET", "/internal/length/5", []))
        again = read_response_streaming(stream)
        assert again.status == 200 and again.length == 5 and again.sha256 == pattern_sha256(5)
    finally:
        stream.sock.close()


@pytest.mark.parametrize("kind", ["close", "chunked"])
@pytest.mark.parametrize("size", [0, 1, MiB], ids=["0B", "1B", "1MiB"])
def test_unframed_response_is_close_delimited_for_http10_clients(portico, body_upstream, kind, size):
    px = portico(CONFIG, up=body_upstream)
    r, stream = get_streamed(px, "/internal/%s/%d" % (kind, size), version="HTTP/1.0")
    try:
        assert r.status == 200
        assert r.header("Transfer-Encoding") is None, r.head
        assert r.framing == "close", r.head
        assert r.length == size and r.sha256 == pattern_sha256(size)
        assert stream.wait_closed(5)
    finally:
        stream.sock.close()


def test_content_length_response_keeps_its_length_for_http10_clients(portico, body_upstream):
    px = portico(CONFIG, up=body_upstream)
    r, stream = get_streamed(px, "/internal/length/%d" % MiB, version="HTTP/1.0")
    stream.sock.close()
    assert r.status == 200
    assert r.header("Content-Length") == str(MiB)
    assert r.complete and r.sha256 == pattern_sha256(MiB)


# --------------------------------------------------------------------------
# Responses without a body


BODILESS = [
    ("HEAD", Response(200, [("Content-Type", "text/plain"), ("Content-Length", "1000")], b"")),
    ("HEAD", Response(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")], b"")),
    ("GET", Response(204, [("X-Status", "none")], b"")),
    ("GET", Response(304, [("ETag", '"v1"'), ("Content-Length", "1234")], b"")),
    ("GET", Response(304, [("ETag", '"v1"')], b"")),
    ("GET", Response(304, [("ETag", '"v1"'), ("Transfer-Encoding", "chunked")], b"")),
    ("GET", Response(204, [("Content-Length", "10")], b"")),
    ("HEAD", Response(200, [("Content-Type", "text/plain")], b"", close=True)),
]
BODILESS_IDS = ["head-length", "head-chunked", "204", "304-length", "304", "304-chunked", "204-length", "head-close"]


@pytest.mark.parametrize("method, answer", BODILESS, ids=BODILESS_IDS)
def test_bodiless_response_is_followed_by_the_next_one(portico, upstream, method, answer):
    """No body bytes are sent or awaited: the next response on the same
    connection parses right after the bodiless one."""
    upstream.handle("/public/bodiless", answer)
    px = portico(CONFIG, up=upstream)
    with px.client(timeout=5) as c:
        c.request(method, "/internal/bodiless")
        r = c.read_response(method)
        assert r.status == answer.status
        assert r.body == b""
        if answer.status in (204, 304):
            assert r.header("Transfer-Encoding") is None, r.raw_head
        if answer.status == 204 and answer.headers == [("X-Status", "none")]:
            assert r.header("Content-Length") in (None, "0"), r.raw_head
        c.request("GET", "/internal/after")
        r2 = c.read_response()
        assert r2.status == 200
        assert r2.body == b"GET /public/after\n"


# --------------------------------------------------------------------------
# Expect: 100-continue


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_expect_100_continue_is_answered_before_the_body(portico, hashing_upstream, chunked):
    px = portico(CONFIG, up=hashing_upstream)
    size = MiB
    framing = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(size))
    sock = connect(px.port, timeout=5)
    stream = Stream(sock)
    try:
        sock.sendall(request_head("POST", "/internal/expect", [("Expect", "100-continue"), framing]))
        interim = stream.read_until(b"\r\n\r\n", 4096)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        send_body(sock, size, chunked)
        r = read_response_streaming(stream, "POST")
    finally:
        sock.close()
    assert r.status == 200
    assert r.interim == [], "a second 100 Continue reached the client: %r" % r.interim
    rec = hashing_upstream.wait_records(1)[0]
    assert not rec.has_header("Expect"), rec.headers
    assert rec.length == size and rec.sha256 == pattern_sha256(size)


def test_expect_100_continue_is_not_answered_for_an_unrouted_request(portico, hashing_upstream):
    """100 Continue comes only once the request is routed and allowed: a
    request without a route gets its 404 without an interim 100."""
    px = portico(CONFIG, up=hashing_upstream)
    sock = connect(px.port, timeout=5)
    try:
        sock.sendall(request_head("POST", "/nowhere", [("Expect", "100-continue"), ("Content-Length", "100000")]))
        r = read_response_streaming(Stream(sock), "POST")
    finally:
        sock.close()
    assert r.status == 404
    assert r.interim == [], r.interim
    assert hashing_upstream.records == []


# --------------------------------------------------------------------------
# Pipelined bodies and a client that goes away mid-body


def test_pipelined_large_body_between_two_requests(portico, hashing_upstream):
    """A 4 MiB body pipelined between two GETs: it is streamed (larger than
    any buffer) and the request after it is still parsed right."""
    px = portico(CONFIG, up=hashing_upstream)
    size = 4 * MiB
    sock = connect(px.port, timeout=10)
    stream = Stream(sock)
    try:
        sock.sendall(
            request_head("GET", "/internal/first", [])
            + request_head("POST", "/internal/middle", [("Content-Length", str(size))])
        )
        send_body(sock, size, chunked=False)
        sock.sendall(request_head("GET", "/internal/last", []))
        rs = [read_response_streaming(stream, m) for m in ("GET", "POST", "GET")]
    finally:
        sock.close()
    assert [r.status for r in rs] == [200, 200, 200]
    recs = hashing_upstream.wait_records(3)
    assert [(q.method, q.target, q.length) for q in recs] == [
        ("GET", "/public/first", 0),
        ("POST", "/public/middle", size),
        ("GET", "/public/last", 0),
    ]
    assert recs[1].sha256 == pattern_sha256(size)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_client_dying_mid_body_closes_the_upstream_connection(portico, hashing_upstream, chunked):
    """The upstream never receives a request that looks complete when the
    client went away in the middle of its body."""
    px = portico(CONFIG, up=hashing_upstream)
    data = b"".join(pattern(30000))
    if chunked:
        head = request_head("POST", "/internal/cut", [("Transfer-Encoding", "chunked")])
        wire = head + b"%x\r\n" % len(data) + data + b"\r\n"
    else:
        head = request_head("POST", "/internal/cut", [("Content-Length", "100000")])
        wire = head + data
    sock = connect(px.port, timeout=5)
    sock.sendall(wire)
    hashing_upstream.wait_body(len(data))  # the head and the bytes are there: go away
    sock.close()
    rec = hashing_upstream.wait_records(1)[0]
    assert not rec.complete, "the upstream got a complete request from a client that died mid-body"
    assert rec.length <= 30000


# --------------------------------------------------------------------------
# More framing cases


@pytest.fixture
def raw_close_delimited(raw_reply):
    """An HTTP/1.0 upstream: no length, the body ends when it closes."""
    return raw_reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"".join(pattern(70000)))


def test_http10_upstream_response_is_chunked_for_http11_client(portico, raw_close_delimited):
    px = portico(CONFIG, up=raw_close_delimited)
    r, stream = get_streamed(px, "/internal/old")
    stream.sock.close()
    assert r.status == 200 and r.version == "HTTP/1.1"
    assert r.framing == "chunked", r.head
    assert r.complete and r.length == 70000 and r.sha256 == pattern_sha256(70000)


def test_chunked_response_trailers_do_not_corrupt_the_body(portico, raw_upstream):
    body = b"".join(pattern(5000))
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        + b"1000;name=value\r\n" + body[:4096] + b"\r\n"
        + b"%x\r\n" % (5000 - 4096) + body[4096:] + b"\r\n"
        + b"0\r\nX-Sum: abc\r\n\r\n"
    )

    def script(conn):
        for _ in conn.requests():
            conn.send(wire)

    up = raw_upstream(script)
    px = portico(CONFIG, up=up)
    with px.client() as c:
        for _ in range(2):
            c.request("GET", "/internal/trailers")
            r = c.read_response()
            assert r.status == 200 and r.framing == "chunked"
            assert r.body == body
    # the chunked framing ended where it should: the connection was reused
    assert up.connections_accepted == 1


def test_http10_client_with_expect_gets_no_100(portico, hashing_upstream):
    """RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request is
    ignored; the client sends its body at once and gets the final answer."""
    px = portico(CONFIG, up=hashing_upstream)
    body = b"".join(pattern(1000))
    sock = connect(px.port, timeout=5)
    try:
        sock.sendall(
            request_head("POST", "/internal/old-expect", [("Expect", "100-continue"), ("Content-Length", "1000")], version="HTTP/1.0")
            + body
        )
        r = read_response_streaming(Stream(sock), "POST")
    finally:
        sock.close()
    assert r.status == 200
    assert r.interim == [], r.interim
    rec = hashing_upstream.wait_records(1)[0]
    assert rec.length == 1000 and rec.sha256 == pattern_sha256(1000)


# --------------------------------------------------------------------------
# Both directions at once


def _duplex_echo(conn):
    """Answers at once, then echoes the request body back chunk by chunk
    while it is still arriving."""
    head = conn.read_head().decode("latin-1").lower()
    left = int(head.split("\r\ncontent-length:", 1)[1].split("\r\n", 1)[0])
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    while left:
        data = conn.stream.read_some()
        if not data:
            return
        data = data[:left]
        left -= len(data)
        conn.send(b"%x\r\n%s\r\n" % (len(data), data))
    conn.send(b"0\r\n\r\n")


def test_response_streams_while_the_request_body_is_still_sent(portico, raw_upstream):
    """An upstream that echoes the body as it arrives: portico must move
    both directions at the same time (10 MiB, more than any buffer)."""
    up = raw_upstream(_duplex_echo)
    px = portico(CONFIG, up=up)
    size = 10 * MiB
    sock = connect(px.port, timeout=10)
    try:
        sock.sendall(request_head("POST", "/internal/duplex", [("Content-Length", str(size))]))
        t, errors = in_background(lambda: send_body(sock, size, chunked=False))
        r = read_response_streaming(Stream(sock), "POST")
        t.join(10)
    finally:
        sock.close()
    assert errors == []
    assert r.status == 200 and r.complete
    assert r.length == size and r.sha256 == pattern_sha256(size)


def test_body_sent_without_waiting_for_100_continue(portico, hashing_upstream):
    """A client that sends its body right after the head (as curl does after
    a second): the body is forwarded whole; at most one 100 arrives."""
    px = portico(CONFIG, up=hashing_upstream)
    size = MiB
    sock = connect(px.port, timeout=10)
    try:
        sock.sendall(request_head("POST", "/internal/eager", [("Expect", "100-continue"), ("Content-Length", str(size))]))
        send_body(sock, size, chunked=False)
        r = read_response_streaming(Stream(sock), "POST")
    finally:
        sock.close()
    assert r.status == 200
    assert len(r.interim) <= 1 and all(h.startswith(b"HTTP/1.1 100") for h in r.interim), r.interim
    rec = hashing_upstream.wait_records(1)[0]
    assert rec.length == size and rec.sha256 == pattern_sha256(size)


def test_early_upstream_answer_before_the_body_reaches_the_client(portico, raw_upstream):
    """An upstream that refuses the request after its head (413) and closes
    without reading the body: the client gets that answer, and the
    connection is closed since the rest of its body was not read."""

    seen = threading.Event()

    def script(conn):
        conn.read_head()
        conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
        seen.wait(10)  # then close, the body unread

    up = raw_upstream(script)
    px = portico(CONFIG, up=up)
    size = 20 * MiB
    sock = connect(px.port, timeout=10)
    try:
        sock.sendall(request_head("POST", "/internal/early", [("Content-Length", str(size))]))
        t, errors = in_background(lambda: send_body(sock, size, chunked=False))
        stream = Stream(sock)
        r = read_response_streaming(stream, "POST")
        seen.set()
        assert r.status == 413, r.head
        assert r.complete and r.length == 8
        assert stream.wait_closed(10)
        t.join(10)
    finally:
        sock.close()


# --------------------------------------------------------------------------
# Lengths beyond 32 bits


def test_response_content_length_over_4_gib_is_kept_exactly(portico, raw_upstream):
    """A 5 GiB Content-Length is passed as is (no 32-bit truncation); the
    upstream stops after 1 MiB, so the client sees the connection close."""
    length = 5 * 1024 * MiB

    def script(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % length)
        for piece in pattern(MiB):
            conn.send(piece)
        conn.sleep(0.3)

    up = raw_upstream(script)
    px = portico(CONFIG, up=up)
    r, stream = get_streamed(px, "/internal/huge")
    stream.sock.close()
    assert r.status == 200
    assert r.header("Content-Length") == str(length), r.head
    assert not r.complete and r.length == MiB


def test_request_content_length_over_4_gib_is_forwarded_exactly(portico, raw_upstream):
    length = 5 * 1024 * MiB
    seen = []

    def script(conn):
        head = conn.read_head()
        seen.append(head)
        conn.drain(2.0)

    up = raw_upstream(script)
    px = portico(CONFIG, up=up)
    sock = connect(px.port, timeout=5)
    try:
        sock.sendall(request_head("PUT", "/internal/huge", [("Content-Length", str(length))]))
        send_body(sock, MiB, chunked=False)
        up.wait_connections(1)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sock.close()
    assert seen, "the request head never reached the upstream"
    assert b"\r\nContent-Length: %d\r\n" % length in seen[0], seen[0]


@pytest.mark.parametrize("method, answer", BODILESS, ids=BODILESS_IDS)
def test_bodiless_response_pipelined_with_the_next_request(portico, upstream, method, answer):
    upstream.handle("/public/bodiless", answer)
    px = portico(CONFIG, up=upstream)
    with px.client(timeout=5) as c:
        c.send(
            b"%s /internal/bodiless HTTP/1.1\r\nHost: a\r\n\r\n" % method.encode()
            + b"GET /internal/after HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        r = c.read_response(method)
        assert r.status == answer.status and r.body == b""
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"GET /public/after\n"


def test_chunked_body_with_trailers_pipelined_with_the_next_request(portico, upstream):
    px = portico(CONFIG, up=upstream)
    with px.client() as c:
        c.send(
            b"POST /internal/t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
            b"GET /internal/after HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        r = c.read_response()
        assert r.status == 200 and r.body == b"POST /public/t\nabc"
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"GET /public/after\n"


# --------------------------------------------------------------------------
# Timeouts measure the peer, not portico's own backpressure


def test_client_pausing_mid_response_does_not_trip_upstream_read(portico, raw_upstream):
    """The client stops reading for 3 s in the middle of a 40 MiB body, so
    portico stops reading the upstream (backpressure).  upstream_read: 2s
    and client_idle: 2s measure silence of the peers, not that pause: the
    body arrives whole."""
    size = 40 * MiB

    def script(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size)
        for piece in pattern(size, block=256 * 1024):
            conn.send(piece)  # each send may wait up to 5 s for window space

    up = raw_upstream(script)
    px = portico(
        "workers: 1\ntimeouts: {upstream_read: 2s, client_idle: 2s}\n"
        "routes:\n  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
        up=up,
    )
    sock = connect(px.port, timeout=10, rcvbuf=64 * 1024)
    try:
        sock.sendall(request_head("GET", "/internal/paused", []))
        r = read_response_streaming(Stream(sock), pause=(4 * MiB, 3))
    finally:
        sock.close()
    assert r.status == 200
    assert r.complete and r.length == size, "the transfer was cut after %d bytes" % r.length
    assert r.sha256 == pattern_sha256(size)
    assert up.errors == [], up.errors


def test_upstream_pausing_mid_upload_does_not_trip_client_body(portico):
    """The upstream stops reading for 3 s in the middle of a 40 MiB body,
    so portico stops reading the client.  client_body: 2s measures the
    client's silence, not that pause: the upload completes."""
    size = 40 * MiB
    up = HashingUpstream(pause=(4 * MiB, 3)).start()
    try:
        px = portico(
            "workers: 1\ntimeouts: {client_body: 2s}\n"
            "routes:\n  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
            up=up,
        )
        sock = connect(px.port, timeout=10)
        try:
            sock.sendall(request_head("PUT", "/internal/paused", [("Content-Length", str(size))]))
            send_body(sock, size, chunked=False)
            r = parse_response(Stream(sock), "PUT")
        finally:
            sock.close()
        assert r.status == 200, (r.status, r.body[:300])
        rec = up.wait_records(1)[0]
        assert rec.complete and rec.length == size and rec.sha256 == pattern_sha256(size)
    finally:
        up.stop()


def test_slow_upstream_body_within_upstream_read_is_not_cut(portico, upstream):
    """A chunk every 0.1 s for 2 s with upstream_read: 1s: every gap is far
    shorter than the timeout, so the response is complete."""
    upstream.handle("/public/drip", Response(200, [("Content-Type", "text/plain")], [b"drop %d\n" % i for i in range(20)], chunk_delay=0.1))
    px = portico(
        "workers: 1\ntimeouts: {upstream_read: 1s}\nroutes:\n  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
        up=upstream,
    )
    r, stream = get_streamed(px, "/internal/drip")
    stream.sock.close()
    assert r.status == 200 and r.complete
    assert r.sha256 == hashlib.sha256(b"".join(b"drop %d\n" % i for i in range(20))).hexdigest()


# --------------------------------------------------------------------------
# Many at once


def test_parallel_transfers_on_several_workers(portico, body_upstream, hashing_upstream):
    """8 clients at once, on 2 workers, each uploading and downloading 4 MiB
    on one keep-alive connection: every body arrives intact."""
    px = portico(
        "workers: 2\nroutes:\n  - path: /up\n    pass: http://internal.example.com:{hu}/public\n"
        "  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
        hu=hashing_upstream,
        up=body_upstream,
    )
    size = 4 * MiB
    results = []

    def client(i):
        try:
            sock = connect(px.port, timeout=10)
            stream = Stream(sock)
            try:
                chunked = i % 2 == 1
                framing = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(size))
                sock.sendall(request_head("POST", "/up/%d" % i, [framing]))
                send_body(sock, size, chunked)
                up = read_response_streaming(stream, "POST")
                kind = "chunked" if chunked else "length"
                sock.sendall(request_head("GET", "/internal/%s/%d" % (kind, size), []))
                down = read_response_streaming(stream)
            finally:
                sock.close()
            results.append((i, up.status, down.status, down.complete, down.sha256))
        except Exception as e:  # noqa: BLE001 - reported below
            results.append((i, repr(e)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = pattern_sha256(size)
    assert sorted(results) == [(i, 200, 200, True, expected) for i in range(8)]
    recs = hashing_upstream.wait_records(8)
    assert sorted(r.target for r in recs) == sorted("/public/%d" % i for i in range(8))
    assert all(r.complete and r.length == size and r.sha256 == expected for r in recs)


def test_large_bodies_back_to_back_on_one_connection(portico, body_upstream, hashing_upstream):
    """Several 50 MiB downloads and uploads in a row on one client
    connection (its buffers have grown after the first): each completes."""
    px = portico(
        "workers: 1\nroutes:\n  - path: /up\n    pass: http://internal.example.com:{hu}/public\n"
        "  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
        hu=hashing_upstream,
        up=body_upstream,
    )
    size = 50 * MiB
    sock = connect(px.port, timeout=5)
    stream = Stream(sock)
    try:
        for i, kind in enumerate(["length", "chunked", "length", "close"]):
            sock.sendall(request_head("GET", "/internal/%s/%d" % (kind, size), []))
            r = read_response_streaming(stream)
            assert r.status == 200 and r.complete and r.sha256 == pattern_sha256(size), (i, kind, r.length)
        for i in range(3):
            sock.sendall(request_head("POST", "/up/%d" % i, [("Content-Length", str(size))]))
            send_body(sock, size, chunked=False)
            r = read_response_streaming(stream, "POST")
            assert r.status == 200, (i, r.status)
    finally:
        sock.close()
    recs = hashing_upstream.wait_records(3)
    assert all(q.length == size and q.sha256 == pattern_sha256(size) for q in recs)
