"""WebSocket and Upgrade tunnels (SPEC sections 4 and 5): the handshake is
forwarded with Upgrade and Connection: upgrade, a 101 switches the
connection to a byte tunnel both ways, anything else keeps it HTTP, and an
idle tunnel is closed after timeouts.tunnel."""

import os
import struct
import time

import pytest

from upstreams import (
    Hijack,
    PeerClosed,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    in_background,
    ws_accept_value,
    ws_encode_frame,
    ws_handshake_request,
    ws_read_frame,
)

CONFIG = """
workers: 1
timeouts: {tunnel: {tunnel}}
routes:
  - path: /route-timeout
    pass: http://internal.example.com:{up}/public
    timeouts: {tunnel: {route_tunnel}}
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def start(portico, up, tunnel="1h", route_tunnel="1h"):
    return portico(CONFIG, up=up, tunnel=tunnel, route_tunnel=route_tunnel)


def handshake(c, path="/internal/ws"):
    """Sends the opening handshake and checks the 101 that comes back."""
    data, key = ws_handshake_request(path, "www.example.com")
    c.send(data)
    r = c.read_response()
    assert r.status == 101, (r.status, r.body[:300])
    assert (r.header("Upgrade") or "").lower() == "websocket", r.raw_head
    assert "upgrade" in (r.header("Connection") or "").lower(), r.raw_head
    assert r.header("Sec-WebSocket-Accept") == ws_accept_value(key), r.raw_head
    return r


def echo(c, opcode, payload):
    c.send(ws_encode_frame(opcode, payload))
    f = ws_read_frame(c.stream)
    assert not f.masked, "server frames are not masked (RFC 6455 5.1)"
    assert f.fin
    assert f.opcode == opcode
    assert f.payload == payload
    return f


def test_handshake_is_forwarded_with_upgrade_headers(portico, ws_upstream):
    px = start(portico, ws_upstream)
    with px.client() as c:
        handshake(c)
    req = ws_upstream.wait_request()
    assert req.path == "/public/ws"
    assert (req.header("Upgrade") or "").lower() == "websocket", req.headers
    tokens = [t.strip().lower() for v in req.header_all("Connection") for t in v.split(",")]
    assert "upgrade" in tokens, req.headers
    assert req.header("Sec-WebSocket-Version") == "13"
    assert req.header("Sec-WebSocket-Key")


def test_frames_are_echoed_through_the_tunnel(portico, ws_upstream):
    px = start(portico, ws_upstream)
    with px.client() as c:
        handshake(c)
        echo(c, OP_TEXT, b"hello")
        echo(c, OP_TEXT, "caf\u00e9 \u2603".encode())
        echo(c, OP_BINARY, bytes(range(256)))
        echo(c, OP_BINARY, b"")
        echo(c, OP_TEXT, b"x" * 125)
        echo(c, OP_TEXT, b"y" * 126)
        echo(c, OP_BINARY, os.urandom(70000))
        c.send(ws_encode_frame(OP_PING, b"are you there"))
        f = ws_read_frame(c.stream)
        assert f.opcode == OP_PONG and f.payload == b"are you there"
    texts = [f.payload for f in ws_upstream.frames if f.opcode == OP_TEXT]
    assert texts[0] == b"hello"
    assert all(f.masked for f in ws_upstream.frames), "portico must pass client frames unchanged (masked)"


def test_one_mib_message(portico, ws_upstream):
    px = start(portico, ws_upstream)
    payload = os.urandom(1 << 20)
    with px.client(timeout=10) as c:
        handshake(c)
        echo(c, OP_BINARY, payload)
        echo(c, OP_TEXT, b"after the big one")


def test_fragmented_message_and_frames_in_one_write(portico, ws_upstream):
    px = start(portico, ws_upstream)
    with px.client() as c:
        handshake(c)
        c.send(
            ws_encode_frame(OP_TEXT, b"frag-1 ", fin=False)
            + ws_encode_frame(0, b"frag-2 ", fin=False)
            + ws_encode_frame(0, b"frag-3", fin=True)
            + ws_encode_frame(OP_BINARY, b"\x00\x01")
        )
        got = [ws_read_frame(c.stream) for _ in range(4)]
        assert [(f.opcode, f.fin, f.payload) for f in got] == [
            (OP_TEXT, False, b"frag-1 "),
            (0, False, b"frag-2 "),
            (0, True, b"frag-3"),
            (OP_BINARY, True, b"\x00\x01"),
        ]


def test_close_handshake_closes_the_client_connection(portico, ws_upstream):
    px = start(portico, ws_upstream)
    with px.client() as c:
        handshake(c)
        echo(c, OP_TEXT, b"bye soon")
        c.send(ws_encode_frame(OP_CLOSE, struct.pack("!H", 1000) + b"done"))
        f = ws_read_frame(c.stream)
        assert f.opcode == OP_CLOSE and f.payload[:2] == struct.pack("!H", 1000)
        # the upstream closes its side after the close frame; portico follows
        assert c.wait_closed(5), "tunnel left open after the upstream closed"


def test_client_closing_the_tunnel_closes_the_upstream_side(portico, ws_upstream):
    px = start(portico, ws_upstream)
    with px.client() as c:
        handshake(c)
        echo(c, OP_TEXT, b"x")
    deadline = time.monotonic() + 5
    while ws_upstream.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws_upstream.open_connections == 0, "the upstream side of the tunnel stayed open"


def test_upgrade_answered_200_keeps_speaking_http(portico, upstream):
    """Only a 101 switches to a tunnel: after a 200 the connection parses
    the next request as HTTP."""
    px = start(portico, upstream)
    with px.client() as c:
        data, _ = ws_handshake_request("/internal/no-ws", "www.example.com")
        c.send(data)
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"GET /public/no-ws\n"
        c.request("GET", "/internal/second")
        r = c.read_response()
        assert r.status == 200, (r.status, r.body[:200])
        assert r.body == b"GET /public/second\n"
    reqs = upstream.wait_requests(2)
    assert [q.target for q in reqs] == ["/public/no-ws", "/public/second"]


@pytest.mark.parametrize("where", ["global", "route"])
def test_idle_tunnel_is_closed(portico, ws_upstream, where):
    if where == "global":
        px = start(portico, ws_upstream, tunnel="1s")
        path = "/internal/ws"
    else:
        px = start(portico, ws_upstream, route_tunnel="1s")
        path = "/route-timeout/ws"
    with px.client() as c:
        handshake(c, path)
        echo(c, OP_TEXT, b"then silence")
        t0 = time.monotonic()
        assert c.wait_closed(8), "an idle tunnel with tunnel: 1s stayed open for 8 s"
        assert time.monotonic() - t0 >= 0.5, "tunnel closed long before its idle timeout"


def test_active_tunnel_outlives_the_idle_timeout(portico, ws_upstream):
    # A frame each 0.25 s for 5 s, against tunnel: 2s (a margin for a slow moment).
    px = start(portico, ws_upstream, tunnel="2s")
    with px.client() as c:
        handshake(c)
        deadline = time.monotonic() + 5.0
        n = 0
        while time.monotonic() < deadline:
            echo(c, OP_TEXT, b"tick %d" % n)
            n += 1
            time.sleep(0.25)
        assert c.wait_closed(0.1) is False


def test_route_without_override_keeps_the_long_tunnel_timeout(portico, ws_upstream):
    """The route override applies to its route only."""
    px = start(portico, ws_upstream, route_tunnel="1s")
    with px.client() as c:
        handshake(c, "/internal/ws")
        echo(c, OP_TEXT, b"quiet")
        assert c.wait_closed(2.5) is False, "the 1s override of another route closed this tunnel"
        echo(c, OP_TEXT, b"still here")


def _greeting_then_echo(stream, req):
    """101 and a first server frame in one write, then echo."""
    key = req.header("Sec-WebSocket-Key")
    stream.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % ws_accept_value(key)
        ).encode()
        + ws_encode_frame(OP_TEXT, b"welcome", mask=False)
    )
    while True:
        try:
            f = ws_read_frame(stream)
        except PeerClosed:
            return
        if f.opcode == OP_CLOSE:
            stream.send(ws_encode_frame(OP_CLOSE, f.payload, mask=False))
            return
        stream.send(ws_encode_frame(f.opcode, f.payload, fin=f.fin, mask=False))


def test_bytes_right_after_the_101_reach_the_client(portico, upstream_factory):
    up = upstream_factory(default=Hijack(_greeting_then_echo))
    px = start(portico, up)
    with px.client() as c:
        handshake(c)
        f = ws_read_frame(c.stream)
        assert (f.opcode, f.payload) == (OP_TEXT, b"welcome")
        echo(c, OP_TEXT, b"and back")


def test_both_directions_at_once(portico, ws_upstream):
    """20 frames of 1 MiB sent while their echoes come back: the tunnel
    moves both directions at the same time without stalling."""
    px = start(portico, ws_upstream)
    frames = [bytes([i]) * (1 << 20) for i in range(20)]
    with px.client(timeout=10) as c:
        handshake(c)

        def sender():
            for f in frames:
                c.send(ws_encode_frame(OP_BINARY, f))

        t, errors = in_background(sender)
        for i, f in enumerate(frames):
            got = ws_read_frame(c.stream)
            assert got.opcode == OP_BINARY and got.payload == f, "frame %d" % i
        t.join(10)
    assert errors == []


def _push_frames(stream, req):
    stream.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % ws_accept_value(req.header("Sec-WebSocket-Key"))
        ).encode()
    )
    for i in range(20):
        stream.send(ws_encode_frame(OP_TEXT, b"push %d" % i, mask=False))
        time.sleep(0.25)
    stream.send(ws_encode_frame(OP_CLOSE, struct.pack("!H", 1000), mask=False))


def test_tunnel_active_in_one_direction_is_not_idle(portico, upstream_factory):
    """A server pushing a frame every 0.25 s for 5 s to a client that never
    writes: the tunnel is not idle, tunnel: 2s does not cut it."""
    up = upstream_factory(default=Hijack(_push_frames))
    px = start(portico, up, tunnel="2s")
    with px.client() as c:
        handshake(c)
        for i in range(20):
            f = ws_read_frame(c.stream)
            assert f.payload == b"push %d" % i
        assert ws_read_frame(c.stream).opcode == OP_CLOSE


@pytest.mark.parametrize(
    "upgrade, connection",
    [("websocket", "keep-alive, Upgrade"), ("WebSocket", "upgrade"), ("websocket", "Upgrade, HTTP2-Settings")],
    ids=["firefox-style", "mixed-case", "extra-token"],
)
def test_handshake_variants_switch_to_a_tunnel(portico, ws_upstream, upgrade, connection):
    px = start(portico, ws_upstream)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with px.client() as c:
        c.send(
            (
                "GET /internal/ws HTTP/1.1\r\nHost: www.example.com\r\nUpgrade: %s\r\nConnection: %s\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (upgrade, connection, key)
            ).encode()
        )
        r = c.read_response()
        assert r.status == 101, (r.status, r.body[:200])
        assert r.header("Sec-WebSocket-Accept") == ws_accept_value(key)
        echo(c, OP_TEXT, b"variant")


def test_upgrade_in_an_http10_request_is_ignored(portico, ws_upstream):
    """RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored, so no
    tunnel: the upstream sees no Upgrade (the echo server answers 400)."""
    px = start(portico, ws_upstream)
    with px.client() as c:
        data, _ = ws_handshake_request("/internal/ws", "www.example.com")
        c.send(data.replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1))
        r = c.read_response()
        assert r.status != 101, r.raw_head
    req = ws_upstream.wait_request()
    assert not req.has_header("Upgrade"), req.headers
