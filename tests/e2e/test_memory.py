"""Backpressure (SPEC section 5: "memory per connection stays bounded
whatever the body size or client speed"): 200 MiB pass between a fast side
and a slow side while portico's resident memory, sampled from
/proc/PID/status during the transfer, stays under a fixed bound.

The slow side reads at RATE bytes per second, about a tenth of what the
fast side could deliver, so a proxy that buffers instead of pausing the
fast side would hold most of the 200 MiB within a few seconds.

Under AddressSanitizer the bound is higher: ASan's shadow memory and its
quarantine of freed blocks (256 MiB by default) make RSS grow with the
total bytes allocated rather than with what is live.  The quarantine is
shrunk through ASAN_OPTIONS for the portico process and the bound raised
to 256 MiB; that still catches a proxy holding the whole body.
"""

import os

import pytest

from helpers_stream import (
    ONE_ROUTE_CONFIG as CONFIG,
    MiB,
    HashingUpstream,
    RssSampler,
    connect,
    hash_exact,
    pattern,
    pattern_sha256,
    read_response_streaming,
    request_head,
    sanitized_binary,
    send_body,
)
import hashlib

from upstreams import (
    OP_BINARY,
    Hijack,
    Response,
    Stream,
    parse_response,
    ws_accept_value,
    ws_encode_frame,
    ws_handshake_request,
)

SIZE = 200 * MiB
RATE = 20 * MiB  # bytes per second on the slow side: about 10 s per transfer
LIMIT_KIB = 64 * 1024
LIMIT_SANITIZED_KIB = 256 * 1024


@pytest.fixture
def rss_limit_kib(monkeypatch, portico_bin):
    """The RSS bound for this build; under ASan also sets ASAN_OPTIONS for
    the portico processes started by the test (they inherit the env)."""
    if not sanitized_binary(portico_bin):
        return LIMIT_KIB
    opts = os.environ.get("ASAN_OPTIONS", "")
    extra = "quarantine_size_mb=8:malloc_context_size=5"
    monkeypatch.setenv("ASAN_OPTIONS", opts + ":" + extra if opts else extra)
    return LIMIT_SANITIZED_KIB


def check_peak(sampler, limit_kib, baseline_kib, what):
    print("%s: RSS %d KiB before, peak %d KiB over %d samples" % (what, baseline_kib, sampler.peak_kib, sampler.samples))
    assert sampler.samples >= 10, "too few RSS samples (%d)" % sampler.samples
    assert sampler.peak_kib < limit_kib, "%s: portico's RSS peaked at %d KiB (started at %d KiB), bound %d KiB" % (
        what,
        sampler.peak_kib,
        baseline_kib,
        limit_kib,
    )


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_slow_client_reading_200_mib_keeps_memory_bounded(portico, upstream, rss_limit_kib, framing):
    headers = [("Content-Type", "application/octet-stream")]
    if framing == "length":
        headers.append(("Content-Length", str(SIZE)))
    # 256 KiB pieces: the upstream's sendall (0.5 s timeout) never waits long
    upstream.handle("/public/big", lambda req: Response(200, headers, pattern(SIZE, block=256 * 1024)))
    px = portico(CONFIG, up=upstream)
    baseline = px.rss_kib()
    sock = connect(px.port, timeout=10, rcvbuf=64 * 1024)
    try:
        sock.sendall(request_head("GET", "/internal/big", []))
        with RssSampler(px.pid) as sampler:
            r = read_response_streaming(Stream(sock), rate=RATE, piece=64 * 1024)
    finally:
        sock.close()
    assert r.status == 200
    assert r.framing == framing
    assert r.complete and r.length == SIZE
    assert r.sha256 == pattern_sha256(SIZE)
    check_peak(sampler, rss_limit_kib, baseline, "slow client")


def test_upload_of_200_mib_to_a_slow_upstream_keeps_memory_bounded(portico, rss_limit_kib):
    up = HashingUpstream(read_rate=RATE).start()
    try:
        px = portico(CONFIG, up=up)
        baseline = px.rss_kib()
        sock = connect(px.port, timeout=10)
        try:
            with RssSampler(px.pid) as sampler:
                sock.sendall(request_head("POST", "/internal/upload", [("Content-Length", str(SIZE))]))
                send_body(sock, SIZE, chunked=False)
                r = parse_response(Stream(sock), "POST")
        finally:
            sock.close()
        assert r.status == 200, r.body[:300]
        rec = up.wait_records(1)[0]
        assert rec.complete and rec.length == SIZE
        assert rec.sha256 == pattern_sha256(SIZE)
        check_peak(sampler, rss_limit_kib, baseline, "slow upstream")
    finally:
        up.stop()


TUNNEL_SIZE = 100 * MiB
FRAME = 256 * 1024


def _tunnel_frames():
    for piece in pattern(TUNNEL_SIZE, block=FRAME):
        yield ws_encode_frame(OP_BINARY, piece, mask=False)


def _flood(stream, req):
    """Completes the handshake, then sends TUNNEL_SIZE bytes of frames as
    fast as the connection takes them."""
    stream.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % ws_accept_value(req.header("Sec-WebSocket-Key"))
        ).encode()
    )
    for frame in _tunnel_frames():
        stream.send(frame)


def test_slow_client_of_a_tunnel_keeps_memory_bounded(portico, upstream_factory, rss_limit_kib):
    up = upstream_factory(default=Hijack(_flood))
    px = portico(CONFIG, up=up)
    expected = hashlib.sha256()
    total = 0
    for frame in _tunnel_frames():
        expected.update(frame)
        total += len(frame)
    baseline = px.rss_kib()
    sock = connect(px.port, timeout=10, rcvbuf=64 * 1024)
    try:
        data, _ = ws_handshake_request("/internal/ws", "www.example.com")
        sock.sendall(data)
        stream = Stream(sock)
        r = parse_response(stream)
        assert r.status == 101
        with RssSampler(px.pid) as sampler:
            got, digest = hash_exact(stream, total, rate=RATE)
    finally:
        sock.close()
    assert got == total
    assert digest == expected.hexdigest()
    check_peak(sampler, rss_limit_kib, baseline, "slow tunnel client")
