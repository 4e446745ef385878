"""Slow readers (SPEC section 5, limits.buffer): portico holds at most
limits.buffer response bytes for a client that does not read (plus one
upstream read), so a slow reader of a large response stalls the upstream's
sends instead of filling portico's memory; a normal large download through
the same path stays byte-exact.

The upstream counts the body bytes its kernel accepted.  With small socket
buffers on the outer ends (the upstream's send buffer, the client's receive
buffer), that count is what portico read plus what the kernel buffers of
its own two sockets hold; a proxy that kept reading while the client
stalls (256 KiB and more before limits.buffer) goes past the bound."""

import socket
import threading
import time

from helpers_stream import MiB, connect, pattern, pattern_sha256, read_response_streaming, request_head
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


def stalled_bytes(portico, buffer):
    up = CountingUpstream()
    try:
        px = portico(CONFIG % buffer, up=up.port)
        s = connect(px.port, rcvbuf=4 * KiB)
        s.sendall(request_head("GET", "/internal/big", []))
        time.sleep(2)
        first = up.sent_now()
        time.sleep(1)
        second = up.sent_now()
        s.close()
        px.stop()
        return first, second
    finally:
        up.close()


def test_slow_reader_is_bounded(portico):
    small_first, small_second = stalled_bytes(portico, "16KiB")
    assert small_second == small_first, "the upstream kept sending to a stalled client"
    big_first, _ = stalled_bytes(portico, "4MiB")
    # Beyond the kernel buffers (which only grow with a larger flow), the
    # difference is what portico itself held: 4 MiB against 16 KiB plus at most
    # one read.  A proxy holding much more than limits.buffer in the small run
    # narrows it.
    held = big_first - small_first
    assert held > 4 * MiB - 128 * KiB, (small_first, big_first)


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
