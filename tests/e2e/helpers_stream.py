"""Streaming pieces for the end-to-end tests of large bodies (standard library only).

The fixtures in ``upstreams.py`` keep whole bodies in memory.  The tests of
100 MiB and 200 MiB bodies must not, so this module adds:

``pattern(total)`` / ``pattern_sha256(total)``
    A deterministic byte stream of ``total`` bytes, produced in 1 MiB blocks
    (each block starts with its index, so a reordered or repeated block
    changes the hash), and its sha256.

``HashingUpstream``
    An HTTP/1.1 upstream with keep-alive that hashes each request body while
    it reads it (Content-Length or chunked) and records ``BodyRecord``s:
    method, target, headers, chunked or not, length, sha256.  It answers
    200 with a small text body "LENGTH SHA256".  ``read_rate`` (bytes per
    second) makes it a slow reader.

``read_response_streaming(stream, method)``
    Reads one response from a ``upstreams.Stream`` and hashes its body while
    reading; a connection that closes early is reported (``complete`` False),
    not raised, so tests can check that a truncated body never looks complete.

``send_body(sock, total, chunked)``
    Sends ``pattern(total)`` as a body, raw or chunk-framed.

``ONE_ROUTE_CONFIG``
    One worker, ``/internal`` passed to the upstream ``{up}``.

``RateLimiter``, ``RssSampler``, ``sanitized_binary()``
    Pacing for slow readers, a background sampler of a process's VmRSS, and
    the sanitizer-build check of the memory tests.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from upstreams import (
    HOST,
    HeaderAccess,
    PeerClosed,
    ProtocolError,
    RawConn,
    RawUpstream,
    Stream,
    hget,
    is_chunked,
    parse_header_lines,
    read_chunk_end,
    read_chunk_size,
    read_head,
    read_trailers,
    split_head,
)

MiB = 1 << 20

# One worker, /internal passed to the upstream "up" (``portico(ONE_ROUTE_CONFIG, up=...)``).
ONE_ROUTE_CONFIG = """
workers: 1
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""
BLOCK = MiB


@functools.lru_cache(maxsize=1)
def _base_block() -> bytes:
    # Not constant bytes: every offset in a block holds a different value.
    seed = hashlib.sha256(b"portico e2e body pattern").digest()
    out = bytearray()
    counter = 0
    while len(out) < BLOCK:
        out += hashlib.sha256(seed + struct.pack("!Q", counter)).digest()
        counter += 1
    return bytes(out[:BLOCK])


def pattern(total: int, block: int = BLOCK) -> Iterator[bytes]:
    """Yields ``total`` bytes in pieces of at most ``block`` bytes."""
    base = _base_block()
    sent = 0
    index = 0
    while sent < total:
        piece = struct.pack("!Q", index) + base[8:]
        n = min(len(piece), total - sent)
        piece = piece[:n]
        # Smaller pieces than 1 MiB when asked for (chunk sizes of a request).
        for i in range(0, n, block):
            yield piece[i : i + block]
        sent += n
        index += 1


@functools.lru_cache(maxsize=16)
def pattern_sha256(total: int) -> str:
    h = hashlib.sha256()
    for piece in pattern(total):
        h.update(piece)
    return h.hexdigest()


def pattern_bytes(total: int) -> bytes:
    """The pattern in memory: only for small sizes."""
    assert total <= 8 * MiB
    return b"".join(pattern(total))


# --------------------------------------------------------------------------
# Pacing and memory sampling


class RateLimiter:
    """Sleeps so that the bytes counted through ``add`` do not exceed
    ``rate`` bytes per second on average."""

    def __init__(self, rate: Optional[float]):
        self.rate = rate
        self.start = time.monotonic()
        self.count = 0

    def add(self, n: int):
        self.count += n
        if not self.rate:
            return
        ahead = self.count / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)


def rss_kib(pid: int) -> Optional[int]:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of ``pid`` every ``interval`` seconds in a thread;
    ``peak_kib`` is the largest value seen, ``samples`` how many."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_kib(self.pid)
            if v is not None:
                self.peak_kib = max(self.peak_kib, v)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)


def sanitized_binary(path: str) -> bool:
    """True for a build with AddressSanitizer: PORTICO_SANITIZE=1 in the
    environment, or libasan among the binary's libraries."""
    if os.environ.get("PORTICO_SANITIZE", "") not in ("", "0", "OFF", "off"):
        return True
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "libasan" in out


# --------------------------------------------------------------------------
# Reading bodies piece by piece from a Stream


def _take(stream: Stream, n: int) -> bytes:
    """Up to ``n`` bytes (buffered first); b"" at EOF."""
    if not stream.buf:
        data = stream.read_some()
        if not data:
            return b""
        stream.buf += data
    out = bytes(stream.buf[:n])
    del stream.buf[:n]
    return out


class _BodyHash:
    """sha256 and length of what passes through ``update``; paced by
    ``limiter``; ``pause`` = (after this many bytes, sleep seconds) once."""

    def __init__(self, limiter: Optional[RateLimiter] = None, pause: Optional[tuple] = None,
                 progress: Optional[Callable[[int], None]] = None):
        self.h = hashlib.sha256()
        self.length = 0
        self.limiter = limiter
        self.pause = pause
        self.progress = progress  # called with the length so far

    def update(self, data: bytes):
        self.h.update(data)
        self.length += len(data)
        if self.progress is not None:
            self.progress(self.length)
        if self.limiter is not None:
            self.limiter.add(len(data))
        if self.pause is not None and self.length >= self.pause[0]:
            time.sleep(self.pause[1])
            self.pause = None

    @property
    def hexdigest(self) -> str:
        return self.h.hexdigest()


def _hash_exact(stream: Stream, n: int, acc: _BodyHash, piece: int) -> bool:
    """Hashes the next ``n`` bytes.  False when the connection closed first."""
    left = n
    while left:
        data = _take(stream, min(left, piece))
        if not data:
            return False
        acc.update(data)
        left -= len(data)
    return True


def _hash_chunked(stream: Stream, acc: _BodyHash, piece: int) -> tuple:
    """Hashes a chunked body.  Returns (complete, chunk_count, trailers)."""
    count = 0
    try:
        while True:
            size = read_chunk_size(stream)
            if size == 0:
                break
            count += 1
            if not _hash_exact(stream, size, acc, piece):
                return False, count, []
            read_chunk_end(stream)
        return True, count, read_trailers(stream)
    except PeerClosed:
        return False, count, []


def _hash_to_eof(stream: Stream, acc: _BodyHash, piece: int):
    while True:
        data = _take(stream, piece)
        if not data:
            return
        acc.update(data)


# --------------------------------------------------------------------------
# Client side


@dataclass
class StreamedResponse(HeaderAccess):
    """A response whose body was hashed, not kept.

    ``framing``: "length", "chunked", "close" or "none".  ``complete``: the
    body ended as its framing says (Content-Length reached, terminating
    chunk seen, or EOF for close-delimited).  ``head`` is the raw head of
    the final response; ``interim`` the raw heads of 1xx before it."""

    status: int
    version: str
    headers: list
    framing: str
    length: int = 0
    sha256: str = ""
    complete: bool = False
    chunk_count: int = 0
    trailers: list = field(default_factory=list)
    interim: list = field(default_factory=list)
    head: bytes = b""


def read_response_streaming(
    stream: Stream, method: str = "GET", rate: Optional[float] = None, piece: int = 256 * 1024, pause: Optional[tuple] = None
) -> StreamedResponse:
    """Reads one final response (1xx other than 101 are collected) and
    hashes its body, at most ``rate`` bytes per second when given, stopping
    to read for ``pause`` = (after bytes, seconds) once."""
    interim = []
    while True:
        head = read_head(stream)
        lines = split_head(head)
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("bad status line %r" % lines[0])
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:
            interim.append(head)
            continue
        break
    headers = parse_header_lines(lines[1:])
    resp = StreamedResponse(status=status, version=parts[0], headers=headers, framing="none", interim=interim, head=head)
    acc = _BodyHash(RateLimiter(rate) if rate else None, pause)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        resp.complete = True
    elif is_chunked(headers):
        resp.framing = "chunked"
        resp.complete, resp.chunk_count, resp.trailers = _hash_chunked(stream, acc, piece)
    elif hget(headers, "Content-Length") is not None:
        resp.framing = "length"
        resp.complete = _hash_exact(stream, int(hget(headers, "Content-Length")), acc, piece)
    else:
        resp.framing = "close"
        _hash_to_eof(stream, acc, piece)
        resp.complete = True
    resp.length = acc.length
    resp.sha256 = acc.hexdigest
    return resp


def connect(port: int, timeout: float = 10.0, rcvbuf: Optional[int] = None, sndbuf: Optional[int] = None) -> socket.socket:
    """A client socket to portico; buffer sizes are set before connecting."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(timeout)
    s.connect((HOST, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def request_head(method: str, target: str, headers: list, host: str = "www.example.com", version: str = "HTTP/1.1") -> bytes:
    out = "%s %s %s\r\nHost: %s\r\n" % (method, target, version, host)
    for k, v in headers:
        out += "%s: %s\r\n" % (k, v)
    return (out + "\r\n").encode("latin-1")


def send_body(sock: socket.socket, total: int, chunked: bool, piece: int = 64 * 1024) -> None:
    """Sends ``pattern(total)``; chunk-framed (one chunk per piece, then the
    last chunk) when ``chunked``.  Each piece is one sendall, so the socket
    timeout bounds every wait for window space, not the whole body."""
    for data in pattern(total, block=piece):
        if chunked:
            sock.sendall(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            sock.sendall(data)
    if chunked:
        sock.sendall(b"0\r\n\r\n")


# --------------------------------------------------------------------------
# Upstream that hashes request bodies


@dataclass
class BodyRecord(HeaderAccess):
    """One request as a HashingUpstream saw it; the body only as a hash."""

    method: str
    target: str
    version: str
    headers: list
    chunked: bool
    length: int
    sha256: str
    complete: bool
    conn_id: int
    chunk_count: int = 0


class HashingUpstream(RawUpstream):
    """Keep-alive HTTP/1.1 upstream that hashes request bodies as they
    stream in.  Every request gets 200 "LENGTH SHA256" (Content-Length).
    ``read_rate`` (bytes/s) paces the body reads (a slow upstream);
    ``pause`` = (after bytes, seconds) stops reading once per body.
    ``wait_body(n)`` waits until the body being read has reached n bytes."""

    def __init__(self, read_rate: Optional[float] = None, pause: Optional[tuple] = None):
        super().__init__(self._serve)
        self.read_rate = read_rate
        self.pause = pause
        self.records: list = []
        self.body_read = 0  # of the request being read, or the last one
        self._cond = threading.Condition()

    def _progress(self, length: int):
        with self._cond:
            self.body_read = length
            self._cond.notify_all()

    def _serve(self, conn: RawConn):
        stream = conn.stream
        while not self._stopped:
            try:
                head = read_head(stream)
            except PeerClosed:
                return
            lines = split_head(head)
            parts = lines[0].decode("latin-1").split(" ")
            if len(parts) != 3:
                raise ProtocolError("bad request line %r" % lines[0])
            headers = parse_header_lines(lines[1:])
            self._progress(0)
            acc = _BodyHash(RateLimiter(self.read_rate) if self.read_rate else None, self.pause, self._progress)
            chunked = is_chunked(headers)
            count = 0
            if chunked:
                complete, count, _ = _hash_chunked(stream, acc, 64 * 1024)
            elif hget(headers, "Content-Length") is not None:
                complete = _hash_exact(stream, int(hget(headers, "Content-Length")), acc, 64 * 1024)
            else:
                complete = True
            rec = BodyRecord(parts[0], parts[1], parts[2], headers, chunked, acc.length, acc.hexdigest, complete, conn.id, count)
            with self._cond:
                self.records.append(rec)
                self._cond.notify_all()
            if not complete:
                return
            body = ("%d %s\n" % (rec.length, rec.sha256)).encode()
            stream.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    def wait_body(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.body_read < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("upstream read %d body bytes, expected %d" % (self.body_read, n))
                self._cond.wait(left)

    def wait_records(self, n: int, timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.records) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("upstream recorded %d requests, expected %d" % (len(self.records), n))
                self._cond.wait(left)
            return list(self.records)


def hash_exact(stream: Stream, n: int, rate: Optional[float] = None, piece: int = 64 * 1024) -> tuple:
    """Reads and hashes the next ``n`` bytes of ``stream`` (at most ``rate``
    bytes per second).  Returns (bytes read, sha256 hex); fewer bytes when
    the connection closed first."""
    acc = _BodyHash(RateLimiter(rate) if rate else None)
    _hash_exact(stream, n, acc, piece)
    return acc.length, acc.hexdigest
