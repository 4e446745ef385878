"""Reusable network pieces for portico's end-to-end tests (standard library only).

Everything listens on 127.0.0.1, port 0 (the kernel picks), and runs in daemon
threads.  Every socket has a timeout, so a test never hangs on a silent peer.

Servers (upstreams portico forwards to)
---------------------------------------
``HTTPUpstream``
    A scriptable HTTP/1.1 server with keep-alive.  It records every request
    (``RecordedRequest``: method, target, version, headers as an ordered list,
    body, its sha256 and length, connection id) and counts accepted
    connections.  Handlers are registered per path with ``handle()`` and
    return a ``Response`` (bytes body, or a generator of chunks that is
    streamed), a ``RawResponse`` (exact bytes, for malformed answers) or a
    ``Hijack`` (the test takes the socket over).  ``close_idle()`` closes the
    keep-alive connections that wait for their next request.

``RawUpstream``
    A TCP server that hands each accepted connection (a ``RawConn``) to a
    script function running in its own thread, for byte-exact behaviour:
    malformed status lines, dying in the middle of a body, never answering.
    ``RawUpstream.reply(data)`` builds the common "read a request, write these
    bytes, close" script; ``for req in conn.requests()`` reads request after
    request until the peer closes.

``WebSocketEchoServer``
    An ``HTTPUpstream`` whose every path accepts an RFC 6455 handshake and then
    echoes each data frame back (same opcode and FIN bit), answers pings with
    pongs and completes the close handshake.

``SilentUpstream``
    Accepts connections, reads and discards, never answers (upstream read
    timeout).

``full_backlog_listener()`` / ``closed_port()``
    A listening socket whose accept queue is full (connects to it hang: an
    upstream connect timeout) and a port with nothing listening (connection
    refused).

Client side (talking to portico)
--------------------------------
``Stream``
    A buffered reader/writer over a socket: ``read_until``, ``read_exact``,
    ``read_to_eof``, ``wait_closed``.

``RawClient``
    Sends exact bytes to portico and parses the response(s):
    ``read_response()`` handles Content-Length, chunked, close-delimited and
    bodiless responses, 1xx interim responses (kept in ``.interim``) and
    pipelined responses (call it again, or ``read_responses(n)``).

``parse_response(stream, method)``
    The parser behind ``RawClient.read_response``; returns ``HTTPResponse``.

``http_request(port, method, path, ...)``
    An ordinary request through ``http.client``; returns ``HTTPResponse``.

WebSocket client helpers: ``ws_handshake_request``, ``ws_accept_value``,
``ws_encode_frame``, ``ws_read_frame`` and the opcode constants.

Shared pieces
-------------
``server_factory(cls)``
    Context manager yielding ``make(*args, **kw)``: starts ``cls(*args, **kw)``
    and stops every server it made on exit (the factory fixtures use it).

``in_background(fn)``
    Runs ``fn`` in a daemon thread; returns ``(thread, errors)`` where
    ``errors`` collects an OSError it raised (a sender racing a reader).

``HeaderAccess``
    ``header``, ``header_all``, ``has_header``, ``header_names`` for any
    message with a ``headers`` list of (name, value).

Wire parsing: ``read_head``, ``split_head``, ``parse_header_lines``,
``hget``, ``is_chunked``, ``read_chunk_size``, ``read_chunk_end``,
``read_trailers``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Union

HOST = "127.0.0.1"
TIMEOUT = 5.0  # seconds, for every client-side socket operation
MAX_HEAD = 1 << 20  # servers refuse request heads larger than this


class ProtocolError(Exception):
    """The peer sent bytes that do not parse as the expected HTTP message."""


class PeerClosed(ProtocolError):
    """The peer closed the connection before a complete message arrived."""


# --------------------------------------------------------------------------
# Buffered socket stream


class Stream:
    """A socket with a read buffer.  Every read honours the socket timeout.

    ``poll`` (seconds, optional) makes reads wake up periodically and call
    ``should_stop()``; servers use it to notice shutdown while a connection
    is idle.
    """

    def __init__(self, sock: socket.socket, should_stop: Optional[Callable[[], bool]] = None):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self._should_stop = should_stop

    # -- low level

    def _fill(self) -> bool:
        """Reads more bytes into the buffer.  False at EOF."""
        if self.eof:
            return False
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if self._should_stop is not None and not self._should_stop():
                    continue
                raise
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            break
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def send(self, data: bytes) -> None:
        """Sends all of ``data``.  The socket timeout bounds one wait for
        room, not the whole send: a reader slowed down by a loaded machine
        is waited for while it makes progress (and the server runs), up to
        TIMEOUT without any."""
        view = memoryview(data)
        stalled = time.monotonic()
        while view:
            try:
                n = self.sock.send(view)
            except socket.timeout:
                if self._should_stop is not None and self._should_stop():
                    raise
                if time.monotonic() - stalled > TIMEOUT:
                    raise
                continue
            view = view[n:]
            stalled = time.monotonic()

    # -- reads

    def read_until(self, delim: bytes, limit: int = MAX_HEAD) -> bytes:
        """Returns the bytes up to and including ``delim``.  PeerClosed at EOF."""
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                end = i + len(delim)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes" % (delim, limit))
            start = max(0, len(self.buf) - len(delim) + 1)
            if not self._fill():
                raise PeerClosed("connection closed after %d bytes" % len(self.buf))

    def read_line(self, limit: int = MAX_HEAD) -> bytes:
        """One line including its LF (the CR, if any, is kept)."""
        return self.read_until(b"\n", limit)

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise PeerClosed("connection closed: wanted %d bytes, got %d" % (n, len(self.buf)))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self) -> bytes:
        """What is buffered, or the next bytes that arrive; b"" at EOF."""
        if not self.buf:
            self._fill()
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_closed(self, timeout: float = TIMEOUT) -> bool:
        """True when the peer closes (EOF or reset) within ``timeout``;
        bytes that arrive meanwhile are kept in the buffer."""
        old = self.sock.gettimeout()
        deadline = time.monotonic() + timeout
        try:
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    self._fill()
                except socket.timeout:
                    return False
            return True
        finally:
            self.sock.settimeout(old)


# --------------------------------------------------------------------------
# Header helpers shared by requests and responses

Headers = list  # list of (name, value) str tuples, in wire order


def hget(headers: Headers, name: str) -> Optional[str]:
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


def _hall(headers: Headers, name: str) -> list:
    lname = name.lower()
    return [v for k, v in headers if k.lower() == lname]


def parse_header_lines(lines: list) -> Headers:
    out = []
    for line in lines:
        if not line:
            continue
        if b":" not in line:
            raise ProtocolError("header line without colon: %r" % line)
        k, v = line.split(b":", 1)
        out.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
    return out


def split_head(head: bytes) -> list:
    """Splits a head ending in CRLFCRLF (or LFLF) into lines without EOLs."""
    text = head.rstrip(b"\r\n")
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in text.split(b"\n")]


def read_head(stream: Stream, limit: int = MAX_HEAD) -> bytes:
    """Reads a message head up to the empty line; accepts CRLF or bare LF."""
    lines = []
    total = 0
    while True:
        line = stream.read_line(limit)
        total += len(line)
        if total > limit:
            raise ProtocolError("head over %d bytes" % limit)
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def read_chunk_size(stream: Stream) -> int:
    """Reads one chunk-size line (extensions ignored); 0 ends the body."""
    line = stream.read_line(65536).rstrip(b"\r\n")
    try:
        return int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        raise ProtocolError("bad chunk size line %r" % line) from None


def read_chunk_end(stream: Stream) -> None:
    """Reads the CRLF that closes a chunk's data."""
    if stream.read_exact(2) != b"\r\n":
        raise ProtocolError("chunk not followed by CRLF")


def read_trailers(stream: Stream) -> Headers:
    """Reads the trailer section after the last chunk, up to the empty line."""
    lines = []
    while True:
        line = stream.read_line(65536)
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.rstrip(b"\r\n"))
    return parse_header_lines(lines)


def _read_chunked(stream: Stream) -> tuple:
    """Decodes a chunked body.  Returns (body, trailers, chunk_sizes)."""
    body = bytearray()
    sizes = []
    while True:
        size = read_chunk_size(stream)
        if size == 0:
            break
        sizes.append(size)
        body += stream.read_exact(size)
        read_chunk_end(stream)
    return bytes(body), read_trailers(stream), sizes


def is_chunked(headers: Headers) -> bool:
    te = ",".join(_hall(headers, "Transfer-Encoding"))
    codings = [c.strip().lower() for c in te.split(",") if c.strip()]
    return bool(codings) and codings[-1] == "chunked"


# --------------------------------------------------------------------------
# Requests as an upstream sees them


class HeaderAccess:
    """Header lookups for any message with a ``headers`` list."""

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (any case), or None."""
        return hget(self.headers, name)

    def header_all(self, name: str) -> list:
        """Every value of header ``name``, in order."""
        return _hall(self.headers, name)

    def has_header(self, name: str) -> bool:
        return hget(self.headers, name) is not None

    def header_names(self) -> list:
        """Lower-cased header names in order."""
        return [k.lower() for k, _ in self.headers]


@dataclass
class RecordedRequest(HeaderAccess):
    """One request received by an upstream server.

    ``headers`` is the ordered list of (name, value) exactly as received
    (names keep their case).  ``body`` is the decoded body (chunked framing
    removed; ``chunked`` tells whether it came chunked, ``chunk_sizes`` the
    sizes of its chunks, ``trailers`` the trailer fields).
    """

    method: str
    target: str
    version: str
    headers: Headers
    body: bytes = b""
    chunked: bool = False
    chunk_sizes: list = field(default_factory=list)
    trailers: Headers = field(default_factory=list)
    conn_id: int = 0  # which accepted connection (1, 2, ...) carried it
    index: int = 0  # position on that connection (1 = first request)
    raw_head: bytes = b""
    peer: tuple = ()  # (address, port) of the connecting side
    time: float = 0.0  # time.monotonic() when the head was complete

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> Optional[str]:
        return self.target.split("?", 1)[1] if "?" in self.target else None

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def body_length(self) -> int:
        return len(self.body)


def read_request(stream: Stream, on_head: Optional[Callable[[RecordedRequest], None]] = None) -> RecordedRequest:
    """Reads one request (head and body) from ``stream``.

    ``on_head`` is called after the head, before the body is read (an
    upstream uses it to answer ``Expect: 100-continue``).  Raises PeerClosed
    when the connection closes cleanly before a request starts.
    """
    head = read_head(stream)
    lines = split_head(head)
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3:
        raise ProtocolError("bad request line %r" % lines[0])
    req = RecordedRequest(
        method=parts[0],
        target=parts[1],
        version=parts[2],
        headers=parse_header_lines(lines[1:]),
        raw_head=head,
        time=time.monotonic(),
    )
    if on_head is not None:
        on_head(req)
    if is_chunked(req.headers):
        req.chunked = True
        req.body, req.trailers, req.chunk_sizes = _read_chunked(stream)
    elif req.header("Content-Length") is not None:
        req.body = stream.read_exact(int(req.header("Content-Length")))
    return req


# --------------------------------------------------------------------------
# What upstream handlers return


@dataclass
class Response:
    """An upstream answer.

    ``body`` is bytes (sent with Content-Length unless ``headers`` already
    frame it), or an iterable of bytes chunks that is streamed: chunked
    unless ``headers`` carry Content-Length or ``close`` is set (then
    close-delimited).  ``headers`` is a list of (name, value) or a dict.
    ``delay`` sleeps before the status line; ``chunk_delay`` between
    streamed chunks.  ``close`` closes the connection after the response
    (and sends ``Connection: close`` unless ``headers`` has a Connection).
    ``auto_headers=False`` sends exactly ``headers`` (no added framing).
    """

    status: int = 200
    headers: Union[Headers, dict, None] = None
    body: Union[bytes, str, Iterable[bytes]] = b""
    reason: Optional[str] = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    close: bool = False
    auto_headers: bool = True
    interim: list = field(default_factory=list)  # [(status, headers)] sent before, e.g. 103


@dataclass
class RawResponse:
    """Exact bytes to write as the answer; then close when ``close``."""

    data: bytes
    close: bool = True
    delay: float = 0.0


@dataclass
class Hijack:
    """The handler takes the connection over: ``fn(stream, request)`` runs in
    the connection thread and the server closes the socket when it returns."""

    fn: Callable[[Stream, RecordedRequest], None]


Handler = Union[Response, RawResponse, Hijack, Callable[[RecordedRequest], object]]


def echo_handler(req: RecordedRequest) -> Response:
    """The default handler: 200, text/plain, "METHOD TARGET\\n" followed by
    the request body."""
    return Response(200, [("Content-Type", "text/plain")], ("%s %s\n" % (req.method, req.target)).encode() + req.body)


_REASONS = http.client.responses


def _norm_headers(h) -> Headers:
    if h is None:
        return []
    if isinstance(h, dict):
        return list(h.items())
    return list(h)


def _status_line(status: int, reason: Optional[str]) -> bytes:
    if reason is None:
        reason = _REASONS.get(status, "Unknown")
    return ("HTTP/1.1 %d %s\r\n" % (status, reason)).encode("latin-1")


def _head_bytes(status: int, reason: Optional[str], headers: Headers) -> bytes:
    out = _status_line(status, reason)
    for k, v in headers:
        out += ("%s: %s\r\n" % (k, v)).encode("latin-1")
    return out + b"\r\n"


# --------------------------------------------------------------------------
# Server base


class _TCPServer:
    """Listening socket on 127.0.0.1:0 with one thread per connection.

    ``tls`` (an ssl.SSLContext for the server side) makes every accepted
    connection do a TLS handshake first; a failed handshake just closes it
    (``tls_errors`` counts them).  An exception escaping a handler or script
    closes its connection and is kept in ``errors`` for the test to check."""

    def __init__(self, backlog: int = 128, tls=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.host = HOST
        self._stopped = False
        self._lock = threading.Condition()
        self._conns = {}  # conn_id -> socket
        self._threads = []
        self.connections_accepted = 0
        self.tls = tls
        self.tls_errors = 0
        self.errors: list = []
        self._accept_thread = None

    # -- lifecycle

    def start(self):
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()
        return self

    def stop(self):
        self._stopped = True
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            _hard_close(c)
        try:
            self.sock.close()
        except OSError:
            pass
        if self._accept_thread is not None:
            self._accept_thread.join(2)
        for t in list(self._threads):
            t.join(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self) -> str:
        return "%s:%d" % (self.host, self.port)

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed."""
        with self._lock:
            return len(self._conns)

    def wait_connections(self, n: int, timeout: float = TIMEOUT) -> bool:
        """Waits until at least ``n`` connections were accepted in total."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.connections_accepted < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def _stopping(self) -> bool:
        return self._stopped

    def _accept_loop(self):
        while not self._stopped:
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            # before the connection is listed: a test may close what is listed
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.settimeout(0.5)
            with self._lock:
                self.connections_accepted += 1
                cid = self.connections_accepted
                self._conns[cid] = c
                self._lock.notify_all()
            t = threading.Thread(target=self._run_conn, args=(cid, c, peer), daemon=True)
            self._threads.append(t)
            t.start()

    def _run_conn(self, cid, c, peer):
        try:
            if self.tls is not None:
                try:
                    c.settimeout(TIMEOUT)
                    c = self.tls.wrap_socket(c, server_side=True)
                    c.settimeout(0.5)
                except (OSError, ValueError):
                    with self._lock:
                        self.tls_errors += 1
                    return
                with self._lock:
                    self._conns[cid] = c
            self.serve_connection(cid, Stream(c, self._stopping), peer)
        except (OSError, ProtocolError):
            pass
        except Exception as e:  # noqa: BLE001 - a handler's bug, kept for the test
            with self._lock:
                self.errors.append(e)
        finally:
            with self._lock:
                self._conns.pop(cid, None)
                self._lock.notify_all()
            try:
                c.close()
            except OSError:
                pass

    def serve_connection(self, cid, stream, peer):  # pragma: no cover - abstract
        raise NotImplementedError


def in_background(work: Callable[[], None]) -> tuple:
    """Starts ``work`` in a daemon thread; an OSError it raises is kept in
    the returned list instead of escaping.  Returns (thread, errors)."""
    errors: list = []

    def run():
        try:
            work()
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


@contextlib.contextmanager
def server_factory(new: Callable[..., "_TCPServer"]):
    """Yields ``make(*args, **kw)``, which starts and returns
    ``new(*args, **kw)``; every server made is stopped on exit."""
    servers = []

    def make(*args, **kw):
        s = new(*args, **kw).start()
        servers.append(s)
        return s

    try:
        yield make
    finally:
        for s in servers:
            s.stop()


def _hard_close(c: socket.socket):
    try:
        c.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        c.close()
    except OSError:
        pass


# --------------------------------------------------------------------------
# HTTPUpstream


class HTTPUpstream(_TCPServer):
    """Scriptable HTTP/1.1 upstream with keep-alive; records every request.

    Typical use::

        up = HTTPUpstream().start()
        up.handle("/public/next", Response(200, {"Content-Type": "text/html"}, b"hi"))
        up.handle("/public/*", lambda req: Response(302, [("Location", "/public/x")]))
        ...
        req = up.wait_request()          # the first request it received
        assert req.header("X-Forwarded-For") == "127.0.0.1"
        up.stop()

    Paths: an exact path, or a prefix ending in ``*``; the longest matching
    prefix wins, exact paths first; unmatched paths get ``default``
    (``echo_handler`` unless replaced).  A handler is a ``Response`` /
    ``RawResponse`` / ``Hijack`` value or a function of the
    ``RecordedRequest`` returning one of them.

    ``delay`` (seconds) delays every response.  ``tls`` (a server-side
    ssl.SSLContext) serves HTTPS instead.  ``expect_continue`` makes the
    server answer ``Expect: 100-continue`` with an interim 100 before it reads
    the body (on by default, as any HTTP/1.1 server would).
    """

    def __init__(self, default: Optional[Handler] = None, delay: float = 0.0, tls=None):
        super().__init__(tls=tls)
        self.default = default if default is not None else echo_handler
        self.delay = delay
        self.expect_continue = True
        self.requests: list = []
        self._handlers = {}  # exact path -> handler
        self._prefixes = []  # (prefix, handler)
        self._idle = set()  # conn ids waiting for their next request

    # -- scripting

    def handle(self, path: str, handler: Handler) -> "HTTPUpstream":
        """Registers ``handler`` for ``path`` (exact) or ``prefix*``."""
        with self._lock:
            if path.endswith("*"):
                self._prefixes = [(p, h) for p, h in self._prefixes if p != path[:-1]]
                self._prefixes.append((path[:-1], handler))
                self._prefixes.sort(key=lambda ph: -len(ph[0]))
            else:
                self._handlers[path] = handler
        return self

    def _handler_for(self, path: str) -> Handler:
        with self._lock:
            if path in self._handlers:
                return self._handlers[path]
            for p, h in self._prefixes:
                if path.startswith(p):
                    return h
            return self.default

    # -- inspection

    def wait_requests(self, n: int, timeout: float = TIMEOUT) -> list:
        """Waits until ``n`` requests were received; returns them all.
        Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("upstream got %d requests, expected %d" % (len(self.requests), n))
                self._lock.wait(left)
            return list(self.requests)

    def wait_request(self, timeout: float = TIMEOUT) -> RecordedRequest:
        """The first request received (waiting for it)."""
        return self.wait_requests(1, timeout)[0]

    @property
    def last_request(self) -> Optional[RecordedRequest]:
        with self._lock:
            return self.requests[-1] if self.requests else None

    def reset(self):
        """Forgets recorded requests (counters of connections stay)."""
        with self._lock:
            self.requests.clear()

    def close_idle(self) -> int:
        """Closes every connection that waits for its next request (as an
        upstream whose keep-alive timeout expired).  Returns how many."""
        with self._lock:
            # Forgotten as they are closed, so that a second call does not
            # count a connection whose thread has not noticed yet.
            victims = [self._conns.pop(c) for c in self._idle if c in self._conns]
            self._idle.clear()
        for s in victims:
            _hard_close(s)
        return len(victims)

    # -- serving

    def serve_connection(self, cid, stream, peer):
        index = 0
        while not self._stopped:
            with self._lock:
                if cid not in self._conns:
                    return
                self._idle.add(cid)
            try:
                req = read_request(stream, lambda r: self._on_head(stream, r))
            except PeerClosed:
                return
            finally:
                with self._lock:
                    self._idle.discard(cid)
            index += 1
            req.conn_id, req.index, req.peer = cid, index, peer
            with self._lock:
                self.requests.append(req)
                self._lock.notify_all()
            handler = self._handler_for(req.path)
            result = handler(req) if callable(handler) and not isinstance(handler, (Response, RawResponse, Hijack)) else handler
            if self.delay:
                time.sleep(self.delay)
            if not self._send(stream, req, result):
                return

    def _on_head(self, stream: Stream, req: RecordedRequest):
        if not self.expect_continue:
            return
        exp = req.header("Expect")
        if exp is not None and exp.lower() == "100-continue":
            stream.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _send(self, stream: Stream, req: RecordedRequest, result) -> bool:
        """Writes the response; False when the connection must close."""
        if isinstance(result, Hijack):
            result.fn(stream, req)
            return False
        if isinstance(result, RawResponse):
            if result.delay:
                time.sleep(result.delay)
            stream.send(result.data)
            return not result.close
        if isinstance(result, (bytes, str)):
            result = Response(200, body=result)
        if not isinstance(result, Response):
            raise TypeError("handler returned %r" % (result,))
        return self._send_response(stream, req, result)

    def _send_response(self, stream: Stream, req: RecordedRequest, r: Response) -> bool:
        if r.delay:
            time.sleep(r.delay)
        for st, hs in r.interim:
            stream.send(_head_bytes(st, None, _norm_headers(hs)))
        headers = _norm_headers(r.headers)
        body = r.body.encode() if isinstance(r.body, str) else r.body
        streamed = not isinstance(body, (bytes, bytearray))
        no_body = req.method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200
        has_cl = hget(headers, "Content-Length") is not None
        has_te = hget(headers, "Transfer-Encoding") is not None
        chunked = has_te and is_chunked(headers)
        client_close = _wants_close(req)
        if r.auto_headers:
            if not no_body and not has_cl and not has_te:
                if streamed and not r.close:
                    headers.append(("Transfer-Encoding", "chunked"))
                    chunked = True
                elif not streamed:
                    headers.append(("Content-Length", str(len(body))))
            if (r.close or client_close) and hget(headers, "Connection") is None:
                headers.append(("Connection", "close"))
        stream.send(_head_bytes(r.status, r.reason, headers))
        if not no_body:
            if streamed:
                for piece in body:
                    if isinstance(piece, str):
                        piece = piece.encode()
                    if not piece:
                        continue
                    stream.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    if r.chunk_delay:
                        time.sleep(r.chunk_delay)
                if chunked:
                    stream.send(b"0\r\n\r\n")
            elif chunked:
                if body:
                    stream.send(b"%x\r\n%s\r\n" % (len(body), body))
                stream.send(b"0\r\n\r\n")
            else:
                stream.send(bytes(body))
        close_delimited = streamed and not chunked and not has_cl and not no_body
        return not (r.close or client_close or close_delimited)


def _wants_close(req: RecordedRequest) -> bool:
    conn = ",".join(req.header_all("Connection")).lower()
    tokens = [t.strip() for t in conn.split(",")]
    if "close" in tokens:
        return True
    return req.version == "HTTP/1.0" and "keep-alive" not in tokens


# --------------------------------------------------------------------------
# RawUpstream


class RawConn:
    """One accepted connection of a RawUpstream, given to its script.

    ``received`` accumulates every byte the script read."""

    def __init__(self, cid: int, stream: Stream, peer):
        self.id = cid
        self.stream = stream
        self.peer = peer
        self.received = bytearray()

    def read_head(self) -> bytes:
        """Reads one request head (through the empty line)."""
        head = read_head(self.stream)
        self.received += head
        return head

    def read_request(self) -> RecordedRequest:
        """Reads a whole request (head and body)."""
        req = read_request(self.stream)
        self.received += req.raw_head + req.body
        return req


    def requests(self) -> Iterable[RecordedRequest]:
        """Reads requests one after another until the peer closes."""
        while True:
            try:
                yield self.read_request()
            except PeerClosed:
                return
    def send(self, data: bytes):
        self.stream.send(data)

    def sleep(self, seconds: float):
        time.sleep(seconds)

    def shutdown_write(self):
        self.stream.sock.shutdown(socket.SHUT_WR)

    def reset(self):
        """Closes with a TCP RST (SO_LINGER 0)."""
        self.stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stream.sock.close()

    def drain(self, seconds: float) -> bool:
        """Reads and discards for ``seconds``.  False when the peer closed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.stream.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                data = self.stream.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return False
            if not data:
                return False
            self.received += data
        return True


class RawUpstream(_TCPServer):
    """A TCP server that runs ``script(conn: RawConn)`` for each connection.

    The socket is closed when the script returns.  ``conns`` lists the
    RawConn objects (their ``received`` bytes) in accept order.  Exceptions
    from the script (socket errors included) are kept in ``errors``.
    """

    def __init__(self, script: Callable[[RawConn], None]):
        super().__init__()
        self.script = script
        self.conns: list = []

    @classmethod
    def reply(cls, data: bytes, close: bool = True, delay: float = 0.0, linger: float = 0.0) -> "RawUpstream":
        """A server that reads one request, sleeps ``delay``, writes ``data``,
        then (``close``) closes, or keeps reading and discarding for
        ``linger`` seconds."""

        def script(conn: RawConn):
            conn.read_request()
            if delay:
                time.sleep(delay)
            conn.send(data)
            if not close:
                conn.drain(linger or TIMEOUT)

        return cls(script)

    def serve_connection(self, cid, stream, peer):
        conn = RawConn(cid, stream, peer)
        with self._lock:
            self.conns.append(conn)
        stream.sock.settimeout(TIMEOUT)
        try:
            self.script(conn)
        except Exception as e:  # noqa: BLE001 - recorded for the test to inspect
            with self._lock:
                self.errors.append(e)


class SilentUpstream(RawUpstream):
    """Accepts, reads and discards, never answers (until stopped or the peer
    closes)."""

    def __init__(self):
        super().__init__(self._silence)

    def _silence(self, conn: RawConn):
        while not self._stopped and conn.drain(0.5):
            pass


# --------------------------------------------------------------------------
# Ports that refuse or hang


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connect: refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FullBacklogListener:
    """A listening socket that never accepts and whose accept queue is full,
    so new connects get no SYN-ACK and hang (an upstream connect timeout).
    Use as a context manager or call close()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        # Linux queues backlog + 1 connections; fill it, then check that a
        # further connect really hangs.
        for _ in range(8):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            try:
                f.connect((HOST, self.port))
            except BlockingIOError:
                pass
            self.fillers.append(f)
        time.sleep(0.05)

    def connect_hangs(self, timeout: float = 0.5) -> bool:
        """True when a fresh connect does not complete within ``timeout``."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((HOST, self.port))
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            s.close()
        return False

    def close(self):
        for f in self.fillers:
            f.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def full_backlog_listener() -> FullBacklogListener:
    return FullBacklogListener()


# --------------------------------------------------------------------------
# WebSocket (RFC 6455)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_accept_value(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def ws_handshake_request(path: str, host: str, key: Optional[str] = None, extra: Optional[Headers] = None) -> tuple:
    """Returns (request bytes, key) for a WebSocket opening handshake."""
    key = key or ws_new_key()
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s" % host,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
    ]
    for k, v in extra or []:
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def ws_encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    """One frame; clients mask (RFC 6455 5.3), servers do not."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _ws_mask(key, payload)


def _ws_mask(key: bytes, data: bytes) -> bytes:
    if not data:
        return b""
    k = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(len(data), "big")


@dataclass
class WSFrame:
    fin: bool
    opcode: int
    payload: bytes
    masked: bool


def ws_read_frame(stream: Stream) -> WSFrame:
    """Reads one frame (masked or not) and unmasks its payload."""
    b0, b1 = stream.read_exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", stream.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", stream.read_exact(8))[0]
    masked = bool(b1 & 0x80)
    key = stream.read_exact(4) if masked else b""
    payload = stream.read_exact(n)
    if masked:
        payload = _ws_mask(key, payload)
    return WSFrame(bool(b0 & 0x80), b0 & 0x0F, payload, masked)


def websocket_echo(stream: Stream, req: RecordedRequest, frames: Optional[list] = None) -> None:
    """Completes the server handshake for ``req`` and echoes frames until a
    close frame or EOF.  Received frames are appended to ``frames``."""
    key = req.header("Sec-WebSocket-Key")
    upgrade = (req.header("Upgrade") or "").lower()
    if upgrade != "websocket" or not key:
        stream.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return
    stream.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % ws_accept_value(key)
        ).encode()
    )
    while True:
        try:
            f = ws_read_frame(stream)
        except PeerClosed:
            return
        if frames is not None:
            frames.append(f)
        if not f.masked:  # RFC 6455 5.1: close on an unmasked client frame
            stream.send(ws_encode_frame(OP_CLOSE, struct.pack("!H", 1002), mask=False))
            return
        if f.opcode == OP_PING:
            stream.send(ws_encode_frame(OP_PONG, f.payload, mask=False))
        elif f.opcode == OP_CLOSE:
            stream.send(ws_encode_frame(OP_CLOSE, f.payload, mask=False))
            return
        elif f.opcode in (OP_CONT, OP_TEXT, OP_BINARY):
            stream.send(ws_encode_frame(f.opcode, f.payload, fin=f.fin, mask=False))


class WebSocketEchoServer(HTTPUpstream):
    """Every path answers the WebSocket handshake and echoes frames.

    ``requests`` holds the handshake requests; ``frames`` every frame the
    server received (unmasked payloads), across connections."""

    def __init__(self):
        super().__init__(default=lambda req: Hijack(lambda s, r: websocket_echo(s, r, self.frames)))
        self.frames: list = []


# --------------------------------------------------------------------------
# Client side


@dataclass
class HTTPResponse(HeaderAccess):
    """A response as the client received it.

    ``framing`` is "length", "chunked", "close" (read to EOF) or "none"
    (HEAD, 1xx, 204, 304).  ``interim`` holds the 1xx responses that came
    before it.  ``headers`` is the ordered list of (name, value)."""

    status: int
    reason: str
    version: str
    headers: Headers
    body: bytes = b""
    framing: str = "none"
    trailers: Headers = field(default_factory=list)
    chunk_sizes: list = field(default_factory=list)
    interim: list = field(default_factory=list)
    raw_head: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def connection_close(self) -> bool:
        """The response carries ``Connection: close``."""
        tokens = ",".join(self.header_all("Connection")).lower().split(",")
        return "close" in [t.strip() for t in tokens]


def parse_response(stream: Stream, method: str = "GET", skip_interim: bool = True) -> HTTPResponse:
    """Reads one response.  With ``skip_interim`` 1xx responses (other than
    101) are collected into ``.interim`` and the final one is returned."""
    interim = []
    while True:
        head = read_head(stream)
        lines = split_head(head)
        status_line = lines[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("bad status line %r" % status_line)
        resp = HTTPResponse(
            status=int(parts[1]),
            reason=parts[2] if len(parts) > 2 else "",
            version=parts[0],
            headers=parse_header_lines(lines[1:]),
            raw_head=head,
        )
        if 100 <= resp.status < 200 and resp.status != 101 and skip_interim:
            interim.append(resp)
            continue
        break
    resp.interim = interim
    if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
        resp.framing = "none"
    elif is_chunked(resp.headers):
        resp.framing = "chunked"
        resp.body, resp.trailers, resp.chunk_sizes = _read_chunked(stream)
    elif resp.header("Content-Length") is not None:
        resp.framing = "length"
        resp.body = stream.read_exact(int(resp.header("Content-Length")))
    else:
        resp.framing = "close"
        resp.body = stream.read_to_eof()
    return resp


class RawClient:
    """A client socket to 127.0.0.1:port for exact bytes.

    ::

        with RawClient(px.port) as c:
            c.send(b"GET /internal/ HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
            r = c.read_response()
            assert r.status == 200
            assert c.wait_closed() is False   # keep-alive
    """

    def __init__(self, port: int, host: str = HOST, timeout: float = TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)  # "::1" works too
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = Stream(self.sock)

    def send(self, data: Union[bytes, str]) -> "RawClient":
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)
        return self

    def request(self, method: str, target: str, headers: Optional[Headers] = None, body: bytes = b"", host: str = "www.example.com", version: str = "HTTP/1.1") -> "RawClient":
        """Sends a well-formed request; Host and Content-Length are added
        unless present in ``headers`` (pass host=None for no Host)."""
        hs = _norm_headers(headers)
        if host is not None and hget(hs, "Host") is None:
            hs.insert(0, ("Host", host))
        if body and hget(hs, "Content-Length") is None and hget(hs, "Transfer-Encoding") is None:
            hs.append(("Content-Length", str(len(body))))
        data = ("%s %s %s\r\n" % (method, target, version)).encode("latin-1")
        for k, v in hs:
            data += ("%s: %s\r\n" % (k, v)).encode("latin-1")
        return self.send(data + b"\r\n" + body)

    def read_response(self, method: str = "GET", skip_interim: bool = True) -> HTTPResponse:
        return parse_response(self.stream, method, skip_interim)

    def read_responses(self, n: int, methods: Optional[list] = None) -> list:
        """Reads ``n`` pipelined responses (``methods`` gives each request's
        method, for HEAD)."""
        methods = methods or ["GET"] * n
        return [self.read_response(m) for m in methods]

    def read_some(self) -> bytes:
        return self.stream.read_some()

    def read_to_eof(self) -> bytes:
        return self.stream.read_to_eof()

    def wait_closed(self, timeout: float = TIMEOUT) -> bool:
        """True when portico closes the connection within ``timeout``."""
        return self.stream.wait_closed(timeout)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_request(port: int, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None, host: str = HOST, timeout: float = TIMEOUT) -> HTTPResponse:
    """One request through http.client (a fresh connection each time).
    http.client adds Host (127.0.0.1:port unless ``headers`` has one) and
    Accept-Encoding: identity."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        framing = "chunked" if r.chunked else ("length" if r.getheader("Content-Length") is not None else "close")
        if method == "HEAD" or r.status in (204, 304):
            framing = "none"
        return HTTPResponse(
            status=r.status,
            reason=r.reason,
            version="HTTP/1.1" if r.version == 11 else "HTTP/1.0",
            headers=list(r.getheaders()),
            body=data,
            framing=framing,
        )
    finally:
        conn.close()
