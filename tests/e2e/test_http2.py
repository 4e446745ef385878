"""HTTP/2 toward clients (issue 12): h2c with prior knowledge, ALPN h2 on
TLS, each stream one exchange (routing, forwarding and logging as for
HTTP/1.1), bodies both ways, flow control as backpressure per stream,
100-continue, refused extended CONNECT, graceful shutdown and metrics.
The protocol conformance and attack tests are in test_http2_conformance.py.
"""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from hyperframe.frame import RstStreamFrame, SettingsFrame, WindowUpdateFrame

from conftest import free_port
from helpers_h2 import CANCEL, PREFACE, PROTOCOL_ERROR, H2Client
from upstreams import Hijack, RawClient, Response, closed_port

H2C = """
listen:
  - address: "{listen}"
    http2: true
admin: {listen: "127.0.0.1:{admin}"}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def h2c(portico, upstream, extra: str = "", **kw):
    return portico(H2C + extra, up=upstream, admin=free_port(), **kw)


def held(upstream, path: str, body: bytes, wait: float = 30) -> threading.Event:
    """An upstream path that answers 200 with `body` once the event is set."""
    release = threading.Event()

    def answer(req):
        release.wait(wait)
        return Response(200, {}, body)

    upstream.handle(path, answer)
    return release


def metrics(px) -> str:
    admin = re.search(r'admin: \{listen: "127.0.0.1:(\d+)"\}', open(px.config_path).read()).group(1)
    return urllib.request.urlopen("http://127.0.0.1:%s/metrics" % admin, timeout=5).read().decode()


def metric(text: str, series: str) -> int:
    m = re.search(r"^%s (\d+)$" % re.escape(series), text, re.M)
    assert m, series
    return int(m.group(1))


def curl(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout)


TLS = """
listen:
  - address: "{listen}"
    tls: {certificates: [{cert: "{cert}", key: "{key}"}]}
    {http2}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def tls_portico(portico, upstream, site_cert, http2_line=""):
    return portico(TLS, up=upstream, cert=site_cert[0], key=site_cert[1], http2=http2_line)


# --- negotiation ------------------------------------------------------------------


def test_h2c_prior_knowledge_is_one_exchange_per_stream(portico, upstream):
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    sid = c.request("GET", "/internal/a?q=1", headers=[("user-agent", "h2test"), ("x-custom", "v")])
    r = c.response(sid)
    assert r.status == 200 and r.body == b"GET /public/a?q=1\n"
    req = upstream.wait_request()
    # The upstream gets HTTP/1.1, rebuilt as for an HTTP/1.1 client.
    assert req.version == "HTTP/1.1"
    assert req.header("Host") == "internal.example.com:%d" % upstream.port
    assert req.header("X-Forwarded-Host") == "www.example.com"
    assert req.header("X-Forwarded-Proto") == "http"
    assert req.header("X-Custom") == "v"
    px.wait_log(r'"GET /internal/a\?q=1 HTTP/2\.0" 200 ', stream="stdout")
    assert metric(metrics(px), 'portico_requests_by_protocol_total{protocol="HTTP/2.0"}') == 1


def test_http1_still_served_on_an_h2c_listener(portico, upstream):
    px = h2c(portico, upstream)
    r = px.get("/internal/b")
    assert r.status == 200 and r.body == b"GET /public/b\n"
    px.wait_log(r'"GET /internal/b HTTP/1\.1" 200 ', stream="stdout")


def preface_answer(px) -> int:
    """The status a plain listener answers to the HTTP/2 connection preface
    (its "PRI * HTTP/2.0" line: a version this listener does not speak)."""
    with RawClient(px.port) as c:
        c.send(PREFACE + SettingsFrame(0).serialize())
        return c.read_response().status


def test_h2c_is_off_by_default_on_plain_listeners(portico, upstream):
    px = portico("routes:\n  - path: /internal\n    pass: http://internal.example.com:{up}/public\n", up=upstream)
    assert preface_answer(px) == 505
    # HTTP/1.1 as ever.
    assert px.get("/internal/x").status == 200


def test_http2_false_turns_h2c_off(portico, upstream):
    px = portico(H2C.replace("http2: true", "http2: false"), up=upstream, admin=free_port())
    assert preface_answer(px) == 505


def test_curl_prior_knowledge_and_nghttp(portico, upstream):
    px = h2c(portico, upstream)
    r = curl("--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}", px.url("/internal/c"))
    assert r.stdout == b"GET /public/c\n\n2 200", r
    n = subprocess.run(["nghttp", "-v", px.url("/internal/d")], capture_output=True, timeout=30)
    assert b"GET /public/d" in n.stdout and b":status: 200" in n.stdout


def test_alpn_prefers_h2_on_tls_listeners(portico, upstream, site_cert):
    px = tls_portico(portico, upstream, site_cert)
    c = H2Client(px.port, tls=True)
    assert c.alpn == "h2"
    r = c.response(c.request("GET", "/internal/tls"))
    assert r.status == 200 and r.body == b"GET /public/tls\n"
    assert upstream.wait_request().header("X-Forwarded-Proto") == "https"
    r = curl("-k", "--http2", "-w", "\n%{http_version}", "https://127.0.0.1:%d/internal/t2" % px.port)
    assert r.stdout.endswith(b"\n2")
    # A client that offers only http/1.1 gets it.
    r = curl("-k", "--http1.1", "-w", "\n%{http_version}", "https://127.0.0.1:%d/internal/t3" % px.port)
    assert r.stdout == b"GET /public/t3\n\n1.1"


def test_http2_false_on_tls_offers_http11_only(portico, upstream, site_cert):
    px = tls_portico(portico, upstream, site_cert, "http2: false")
    r = curl("-k", "--http2", "-w", "\n%{http_version}", "https://127.0.0.1:%d/internal/t" % px.port)
    assert r.stdout == b"GET /public/t\n\n1.1"


# --- bodies ---------------------------------------------------------------------------


def body_of(n: int) -> bytes:
    return (hashlib.sha256(str(n).encode()).digest() * (n // 32 + 1))[:n]


SIZES = [0, 1, 16384, 65535, 65536 + 7, 1 << 20, 100 << 20]


@pytest.mark.parametrize("size", SIZES)
def test_request_bodies_by_hash(portico, upstream, tmp_path, size):
    upstream.handle("/public/up", lambda req: Response(200, {"Content-Type": "text/plain"},
                                                      ("%d %s" % (req.body_length, req.body_sha256)).encode()))
    px = h2c(portico, upstream)
    data = body_of(size)
    f = tmp_path / "body"
    f.write_bytes(data)
    r = curl("--http2-prior-knowledge", "--data-binary", "@%s" % f, px.url("/internal/up"))
    assert r.stdout.decode() == "%d %s" % (size, hashlib.sha256(data).hexdigest()), r.stderr


@pytest.mark.parametrize("size", SIZES)
def test_response_bodies_by_hash(portico, upstream, size):
    data = body_of(size)
    # Sent in pieces of 100,000 bytes, as a streaming upstream would.
    def pieces():
        return iter([data[i:i + 100000] for i in range(0, len(data), 100000)])

    upstream.handle("/public/down", lambda req: Response(
        200, {"Content-Type": "application/octet-stream", "Content-Length": str(size)}, pieces()))
    upstream.handle("/public/chunked", lambda req: Response(
        200, {"Content-Type": "application/octet-stream"}, pieces()))
    px = h2c(portico, upstream)
    for path in ("/internal/down", "/internal/chunked"):
        r = curl("--http2-prior-knowledge", px.url(path))
        assert len(r.stdout) == size and hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest(), path


def test_bodies_both_ways_over_tls(portico, upstream, site_cert, tmp_path):
    data = body_of(8 << 20)

    def pieces():
        return iter([data[i:i + 100000] for i in range(0, len(data), 100000)])

    upstream.handle("/public/down", lambda req: Response(200, {"Content-Length": str(len(data))}, pieces()))
    upstream.handle("/public/up", lambda req: Response(200, {}, req.body_sha256.encode()))
    px = tls_portico(portico, upstream, site_cert)
    base = "https://127.0.0.1:%d" % px.port
    r = curl("-k", "--http2", base + "/internal/down")
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest()
    f = tmp_path / "up"
    f.write_bytes(data)
    r = curl("-k", "--http2", "--data-binary", "@%s" % f, base + "/internal/up")
    assert r.stdout.decode() == hashlib.sha256(data).hexdigest()
    # Several streams at once on one TLS connection.
    c = H2Client(px.port, tls=True)
    sids = [c.request("GET", "/internal/s%d" % i) for i in range(20)]
    assert [c.response(sid).body for sid in sids] == [b"GET /public/s%d\n" % i for i in range(20)]


def test_request_body_of_unknown_length_goes_upstream_chunked(portico, upstream):
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/p", body=b"x" * 100000)
    r = c.response(sid)
    assert r.status == 200 and r.body == b"POST /public/p\n" + b"x" * 100000
    req = upstream.wait_request()
    assert req.header("Transfer-Encoding") == "chunked"


def test_head_and_204_have_no_body(portico, upstream):
    upstream.handle("/public/n", Response(204))
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    r = c.response(c.request("HEAD", "/internal/h"))
    h1 = px.request("HEAD", "/internal/h")
    assert r.status == 200 and r.body == b""
    assert r.header("content-length") == h1.header("Content-Length")
    r = c.response(c.request("GET", "/internal/n"))
    assert r.status == 204 and r.body == b"" and r.header("content-length") is None


def test_response_headers_lose_hop_by_hop_fields(portico, upstream):
    upstream.handle("/public/hop", Response(200, [("Keep-Alive", "timeout=5"), ("X-Kept", "1"),
                                                  ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], b"ok"))
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    r = c.response(c.request("GET", "/internal/hop"))
    names = [k for k, _ in r.headers]
    assert r.status == 200 and r.body == b"ok"
    assert "keep-alive" not in names and "connection" not in names and "transfer-encoding" not in names
    assert [v for k, v in r.headers if k == "set-cookie"] == ["a=1", "b=2"]
    assert r.header("x-kept") == "1"


def test_cookie_crumbs_are_joined(portico, upstream):
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    c.response(c.request("GET", "/internal/ck", headers=[("cookie", "a=1"), ("cookie", "b=2")]))
    assert upstream.wait_request().header_all("Cookie") == ["a=1; b=2"]


def test_errors_are_complete_responses_on_their_stream(portico, upstream):
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    r404 = c.response(c.request("GET", "/nowhere"))
    r400 = c.response(c.request("GET", "/internal/%2e%2e/%2e%2e/x"))
    sid = c.new_sid()
    c.send(c.headers_frame(sid, [(":method", "CONNECT"), (":authority", "www.example.com:443")]))
    r405 = c.response(sid)
    assert r404.status == 404 and b"404" in r404.body
    assert r404.header("content-length") == str(len(r404.body))
    assert r400.status == 400
    assert r405.status == 405
    # The connection goes on.
    assert c.response(c.request("GET", "/internal/ok")).status == 200


def test_header_section_over_the_limit_is_431(portico, upstream):
    px = h2c(portico, upstream, "limits: {header_size: 4k}\n")
    c = H2Client(px.port)
    r = c.response(c.request("GET", "/internal/big", headers=[("x-big", "a" * 5000)]))
    assert r.status == 431
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="header_list"}') == 1
    assert c.response(c.request("GET", "/internal/ok")).status == 200


def test_100_continue_is_an_interim_headers(portico, upstream):
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/e", headers=[("expect", "100-continue"), ("content-length", "3")],
                    end_stream=False)
    c.until(lambda: c.responses.get(sid) is not None and c.responses[sid].interim)
    assert c.responses[sid].interim[0][0] == 100
    c.send_body(sid, b"abc")
    r = c.response(sid)
    assert r.status == 200 and r.body == b"POST /public/e\nabc"
    assert upstream.wait_request().header("Expect") is None


def test_extended_connect_is_refused(portico, upstream):
    """RFC 8441 WebSocket: SETTINGS_ENABLE_CONNECT_PROTOCOL is not offered,
    so :protocol makes the request malformed (RST_STREAM PROTOCOL_ERROR)."""
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    c.ping()
    assert 0x8 not in c.server_settings
    sid = c.new_sid()
    c.send(c.headers_frame(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                 (":path", "/internal/ws"), (":authority", "www.example.com")], end_stream=False))
    assert c.wait_reset(sid) == PROTOCOL_ERROR
    assert upstream.requests == []


# --- concurrency and backpressure -------------------------------------------------------


def test_a_slow_upstream_stalls_only_its_stream(portico, upstream):
    release = held(upstream, "/public/slow", b"slow")
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    s_slow = c.request("GET", "/internal/slow")
    fast = [c.request("GET", "/internal/f%d" % i) for i in range(5)]
    for i, sid in enumerate(fast):
        r = c.response(sid)
        assert r.status == 200 and r.body == b"GET /public/f%d\n" % i
    assert not c.responses.get(s_slow) or not c.responses[s_slow].ended
    release.set()
    assert c.response(s_slow).body == b"slow"


def test_a_client_that_stops_reading_one_stream_does_not_stall_another(portico, upstream):
    big = body_of(8 << 20)
    def send_big(stream, req):
        # Stalled by the client for as long as the test says: a patient upstream.
        stream.sock.settimeout(60)
        stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big)

    upstream.handle("/public/big", Hijack(send_big))
    px = h2c(portico, upstream)
    # No WINDOW_UPDATE from this client for stream data: the big stream stops
    # at its window; the connection window is credited by hand below.
    c = H2Client(px.port, auto_window=False, settings={0x4: 1 << 20})
    c.send(WindowUpdateFrame(0, window_increment=64 << 20))
    s_big = c.request("GET", "/internal/big")
    c.until(lambda: s_big in c.responses and len(c.responses[s_big].body) >= (1 << 20) - 16384)
    s_small = c.request("GET", "/internal/small")
    r = c.response(s_small)
    assert r.status == 200 and r.body == b"GET /public/small\n"
    assert not c.responses[s_big].ended and len(c.responses[s_big].body) <= 1 << 20
    # Crediting the big stream lets the rest through, intact.
    c.auto_window = True
    c.send(WindowUpdateFrame(s_big, window_increment=len(big)), WindowUpdateFrame(0, window_increment=len(big)))
    r = c.response(s_big, timeout=60)
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(big).digest()


def test_a_slow_upstream_reader_stalls_only_its_upload(portico, upstream):
    release = threading.Event()

    def sink(stream, req):
        release.wait(30)

    upstream.handle("/public/sink", Hijack(sink))
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    s_up = c.request("POST", "/internal/sink", end_stream=False)
    # Far more than the stream window: the client stops at it, nothing breaks.
    c.send_body(s_up, b"y" * 65535, end_stream=False)
    sid = c.request("POST", "/internal/other", body=b"z" * 50000)
    r = c.response(sid)
    assert r.status == 200 and r.body == b"POST /public/other\n" + b"z" * 50000
    release.set()


def test_client_reset_of_one_stream_cuts_its_upstream_only(portico, upstream):
    release = held(upstream, "/public/slow", b"late", wait=10)
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    sid = c.request("GET", "/internal/slow")
    upstream.wait_request()
    c.send(RstStreamFrame(sid, error_code=CANCEL))
    px.wait_log(r"client went away .*reason=stream reset")
    assert c.response(c.request("GET", "/internal/after")).status == 200
    release.set()
    px.wait_log(r'"GET /internal/slow HTTP/2\.0" 499 ', stream="stdout")


def test_many_concurrent_streams_all_answered(portico, upstream):
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    sids = [c.request("GET", "/internal/m%d" % i) for i in range(100)]
    for i, sid in enumerate(sids):
        r = c.response(sid)
        assert r.status == 200 and r.body == b"GET /public/m%d\n" % i


# --- lifecycle ----------------------------------------------------------------------------


def test_graceful_shutdown_sends_goaway_and_finishes_streams(portico, upstream):
    release = held(upstream, "/public/slow", b"finished", wait=20)
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    sid = c.request("GET", "/internal/slow")
    upstream.wait_request()
    px.signal(signal.SIGTERM)
    code, last = c.wait_goaway()
    assert code == 0 and last == sid
    release.set()
    r = c.response(sid)
    assert r.status == 200 and r.body == b"finished"
    assert c.wait_closed()
    assert px.wait_exit() == 0


def test_idle_connection_gets_goaway_no_error(portico, upstream):
    px = h2c(portico, upstream, "timeouts: {client_idle: 1s}\n")
    c = H2Client(px.port, preface=False)
    # The preface and the request in one write: the stream is open before
    # the idle timeout can start, however late the test runs.
    req = [(":method", "GET"), (":scheme", "http"), (":path", "/internal/x"), (":authority", "www.example.com")]
    c.send_raw(PREFACE + SettingsFrame(0).serialize() + c.headers_frame(1, req).serialize())
    assert c.response(1).status == 200
    assert c.wait_goaway() == (0, 1)
    assert c.wait_closed()
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="idle"}') == 1


def test_reload_keeps_http2_connections(portico, upstream):
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    assert c.response(c.request("GET", "/internal/1")).status == 200
    px.reload()
    px.wait_log(r"configuration reloaded generation=2", timeout=10)
    assert c.response(c.request("GET", "/internal/2")).status == 200


def test_shutdown_timeout_cuts_streams_still_in_flight(portico, upstream):
    release = held(upstream, "/public/never", b"too late")
    px = h2c(portico, upstream, "timeouts: {shutdown: 1s}\n")
    c = H2Client(px.port)
    sid = c.request("GET", "/internal/never")
    upstream.wait_request()
    px.signal(signal.SIGTERM)
    assert c.wait_goaway()[0] == 0
    assert px.wait_exit() == 0
    r = c.responses.get(sid)
    assert r is None or not r.ended or r.reset is not None
    release.set()


def test_client_vanishing_mid_response_cuts_only_its_exchanges(portico, upstream):
    data = body_of(4 << 20)

    def send_big(stream, req):
        stream.sock.settimeout(30)
        try:
            stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        except OSError:
            pass

    upstream.handle("/public/big", Hijack(send_big))
    px = h2c(portico, upstream)
    c = H2Client(px.port, auto_window=False)
    sids = [c.request("GET", "/internal/big") for _ in range(3)]
    c.until(lambda: any(s in c.responses and c.responses[s].body for s in sids))
    c.close()
    # Each stream logged once: 200 when its head was out, else 499.
    deadline = time.monotonic() + 10
    while len(re.findall(r'"GET /internal/big HTTP/2\.0" (?:200|499) ', px.stdout)) < 3:
        assert time.monotonic() < deadline, px.stdout
        time.sleep(0.05)
    assert len(re.findall(r'"GET /internal/big HTTP/2\.0" ', px.stdout)) == 3
    other = H2Client(px.port)
    assert other.response(other.request("GET", "/internal/after")).status == 200
    # The gauge falls when the vanished connection is freed, just after its
    # log lines were written (perhaps by the other worker).
    deadline = time.monotonic() + 10
    while metric(metrics(px), "portico_client_connections") != 1:
        assert time.monotonic() < deadline, metrics(px)
        time.sleep(0.05)


def test_content_length_zero_before_end_stream_sends_no_body(portico, raw_upstream):
    """HEADERS with content-length: 0 and no END_STREAM, then an empty DATA
    frame that ends the stream: the upstream gets "Content-Length: 0" and
    nothing after it, so the next request on that connection is the next
    thing it reads."""
    firsts = []

    def script(conn):
        while True:
            firsts.append(conn.read_head().split(b"\r\n", 1)[0])
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    up = raw_upstream(script)
    px = h2c(portico, up)
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/empty", headers=[("content-length", "0")], end_stream=False)
    c.send_body(sid, b"")
    assert c.response(sid).status == 200
    assert c.response(c.request("GET", "/internal/after")).status == 200
    assert firsts == [b"POST /public/empty HTTP/1.1", b"GET /public/after HTTP/1.1"]


def test_error_page_fields_as_over_http1(portico, upstream):
    """portico's own error page on a stream: the fields HTTP/1.1 gets
    (content-type, cache-control, x-request-id, content-length), and for
    HEAD the same head without the body."""
    px = h2c(portico, upstream, "  - path: /dead\n    pass: http://127.0.0.1:{dead}/\n", dead=closed_port())
    c = H2Client(px.port)
    r = c.response(c.request("GET", "/dead/x"))
    assert r.status == 502
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.header("cache-control") == "no-store"
    assert r.header("content-length") == str(len(r.body))
    assert ("Request id: %s" % r.header("x-request-id")).encode() in r.body
    h = c.response(c.request("HEAD", "/dead/x"))
    assert h.status == 502 and h.body == b""
    assert h.header("content-length") == r.header("content-length")


def test_body_over_body_size_is_413_with_or_without_content_length(portico, upstream):
    px = h2c(portico, upstream, "limits: {body_size: 50k}\n")
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/cl", headers=[("content-length", "60000")], end_stream=False)
    assert c.response(sid).status == 413
    sid = c.request("POST", "/internal/nocl", end_stream=False)
    c.send_body(sid, b"x" * 40000, end_stream=False)
    c.send_body(sid, b"x" * 20000, end_stream=False)
    assert c.response(sid).status == 413
    assert c.response(c.request("GET", "/internal/ok")).status == 200


def test_reload_turning_http2_off_winds_down_with_goaway(portico, upstream):
    release = held(upstream, "/public/slow", b"finished")
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    sid = c.request("GET", "/internal/slow")
    upstream.wait_request()
    px.reload(H2C.replace("http2: true", "http2: false"), up=upstream.port, admin=free_port())
    px.wait_log(r"configuration reloaded generation=2")
    assert c.wait_goaway() == (0, sid)
    release.set()
    r = c.response(sid)
    assert (r.status, r.body) == (200, b"finished")
    assert c.wait_closed()


def test_reload_removing_a_listener_winds_down_its_connections(portico, upstream):
    release = held(upstream, "/public/slow", b"finished")
    px = h2c(portico, upstream)
    c = H2Client(px.port)
    assert c.response(c.request("GET", "/internal/1")).status == 200
    h1 = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    h1.sendall(b"GET /internal/slow HTTP/1.1\r\nHost: a\r\n\r\n")
    assert upstream.wait_requests(2)[1].path == "/public/slow"
    moved = H2C.replace('"{listen}"', '"127.0.0.1:%d"' % free_port())
    px.reload(moved, up=upstream.port, admin=free_port())
    px.wait_log(r"configuration reloaded generation=2")
    assert c.wait_goaway() == (0, 1)
    assert c.wait_closed()
    release.set()
    data = b""
    while True:
        chunk = h1.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"\r\nconnection: close" in head.lower()
    assert body == b"finished"
