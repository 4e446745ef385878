"""Slow readers (SPEC section 5, limits.buffer): portico holds at most
limits.buffer response bytes for a client that does not read (plus one
upstream read), so a slow reader of a large response stalls the upstream's
sends instead of filling portico's memory; a normal large download through
the same path stays byte-exact.

The upstream counts the body bytes its kernel accepted.  Once the flow has
stalled, that count less what the four sockets on the way still queue (read
from /proc/net/tcp, so the kernel's buffer autotuning does not blur it) is
what portico itself holds; a proxy that kept reading while the client
stalls (256 KiB and more before limits.buffer) goes past the bound."""

import socket
import threading
import time

from helpers_stream import (
    MiB,
    connect,
    pattern,
    pattern_sha256,
    read_response_streaming,
    request_head,
)
from upstreams import Stream, read_head

KiB = 1024
BODY = 64 * MiB
PIECE = 4 * KiB

CONFIG = """
workers: 1
limits: {buffer: %s}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


class CountingUpstream:
    """Answers every request with BODY pattern bytes, counting what its kernel accepted."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(c,), daemon=True).start()

    def _answer(self, c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIECE)
        try:
            read_head(Stream(c))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY)
            for block in pattern(BODY):
                for i in range(0, len(block), PIECE):
                    c.sendall(block[i : i + PIECE])
                    with self.lock:
                        self.sent += PIECE
        except OSError:
            pass
        finally:
            c.close()

    def sent_now(self):
        with self.lock:
            return self.sent

    def close(self):
        self.sock.close()


def queued_on(ports):
    """Bytes queued (sent but unread, or written but unsent) on the
    established IPv4 sockets with a local or remote port in `ports`."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state != "01":
                continue
            if int(local.split(":")[1], 16) in ports or int(remote.split(":")[1], 16) in ports:
                tx, rx = fields[4].split(":")
                total += int(tx, 16) + int(rx, 16)
    return total


def held_by_stalled_proxy(portico, buffer):
    """What portico holds for a client that stopped reading, once nothing moves."""
    up = CountingUpstream()
    try:
        px = portico(CONFIG % buffer, up=up.port)
        s = connect(px.port, rcvbuf=4 * KiB)
        s.sendall(request_head("GET", "/internal/big", []))
        last, still_since, deadline = -1, time.monotonic(), time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = up.sent_now()
            if now != last:
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= 1.5:
                break
        else:
            raise AssertionError("the upstream kept sending to a stalled client")
        held = up.sent_now() - queued_on({up.port, px.port})
        s.close()
        px.stop()
        return held
    finally:
        up.close()


def test_slow_reader_is_bounded(portico):
    # limits.buffer plus what one upstream read may add (sized to the free
    # room, so it stays within the bound) and the upstream's partial piece.
    small = held_by_stalled_proxy(portico, "16KiB")
    assert 0 <= small <= 16 * KiB + 2 * PIECE, small
    # The bound is what holds the flow: a larger one lets portico hold more.
    big = held_by_stalled_proxy(portico, "4MiB")
    assert 4 * MiB - 64 * KiB <= big <= 4 * MiB + 2 * PIECE, big


def test_large_download_is_exact(portico):
    up = CountingUpstream()
    try:
        px = portico(CONFIG % "64KiB", up=up.port)
        s = connect(px.port)
        s.sendall(request_head("GET", "/internal/big", []))
        r = read_response_streaming(Stream(s))
        assert r.status == 200 and r.framing == "length" and r.complete
        assert r.length == BODY
        assert r.sha256 == pattern_sha256(BODY)
        s.close()
        px.stop()
    finally:
        up.close()
