"""A raw HTTP/2 client for the end-to-end tests: frames built with hyperframe,
headers with hpack (python3-h2's companions), over a plain or TLS socket.

It does exactly what a test says, including what a correct client never
does (the conformance and attack tests), and reads back every frame, so a
test can assert on the frames portico sends: RST_STREAM and GOAWAY with
their error codes (RFC 9113 section 7), SETTINGS, HEADERS and DATA.

    c = H2Client(port)                      # preface + SETTINGS sent
    sid = c.request("GET", "/internal/x")   # HEADERS with END_STREAM
    r = c.response(sid)                     # r.status, r.headers, r.body
    code, last = c.wait_goaway()            # GOAWAY (or None: closed)
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from typing import Optional

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TIMEOUT = 10.0

# RFC 9113 section 7
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB


class Closed(Exception):
    """The server closed the connection."""


class H2Response:
    def __init__(self):
        self.status: Optional[int] = None
        self.headers: list = []
        self.interim: list = []  # (status, headers) of 1xx
        self.body = b""
        self.ended = False
        self.reset: Optional[int] = None  # RST_STREAM error code

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers:
            if k == name:
                return v
        return None


def tls_context(alpn=("h2", "http/1.1")) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


class H2Client:
    def __init__(self, port: int, tls: bool = False, settings: Optional[dict] = None,
                 preface: bool = True, auto_window: bool = True, timeout: float = TIMEOUT):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = tls_context().wrap_socket(raw, server_hostname="www.example.com") if tls else raw
        self.alpn = self.sock.selected_alpn_protocol() if tls else None
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.next_id = 1
        self.auto_window = auto_window
        self.responses: dict = {}
        self.frames: list = []  # every frame read, in order
        self.server_settings: dict = {}
        self.goaway: Optional[tuple] = None
        self.closed = False
        self.pings: list = []  # PING ACK payloads
        self._hblock = None  # (stream id, bytes) while CONTINUATION follows
        # Flow control toward the server: bytes sent, and WINDOW_UPDATE credit.
        self._sent: dict = {}
        self._stream_credit: dict = {}
        self._conn_sent = 0
        self._conn_credit = 0
        if preface:
            self.send_raw(PREFACE)
            self.send(SettingsFrame(0, settings=settings or {}))

    # -- sending

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send(self, *frames: Frame):
        self.send_raw(b"".join(f.serialize() for f in frames))

    def encode(self, headers) -> bytes:
        return self.enc.encode(headers)

    def headers_frame(self, sid: int, headers, end_stream=True, end_headers=True) -> HeadersFrame:
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        f = HeadersFrame(sid, self.encode(headers))
        f.flags = set(flags)
        return f

    def new_sid(self) -> int:
        """The next client stream id, taken."""
        sid = self.next_id
        self.next_id += 2
        return sid

    def request(self, method: str, path: str, headers=(), body: Optional[bytes] = None,
                authority: str = "www.example.com", end_stream: Optional[bool] = None,
                sid: Optional[int] = None) -> int:
        if sid is None:
            sid = self.new_sid()
        else:
            self.next_id = max(self.next_id, sid + 2)
        h = [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)]
        h += list(headers)
        end = (not body) if end_stream is None else end_stream
        self.send(self.headers_frame(sid, h, end_stream=end))
        if body:
            self.send_body(sid, body, end_stream=end_stream is None)
        return sid

    def send_body(self, sid: int, body: bytes, end_stream=True, frame_size=16384):
        """Sends the body in DATA frames, waiting for window as needed."""
        off = 0
        while off < len(body) or (off == 0 and not body):
            n = min(frame_size, len(body) - off)
            while n > 0 and self._window(sid) < n:
                self.read_frame()
            f = DataFrame(sid, body[off:off + n])
            off += n
            if end_stream and off >= len(body):
                f.flags.add("END_STREAM")
            self.send(f)
            self._sent[sid] = self._sent.get(sid, 0) + n
            self._conn_sent += n
            if not body:
                break

    def _window(self, sid: int) -> int:
        init = self.server_settings.get(SettingsFrame.INITIAL_WINDOW_SIZE, 65535)
        s = init + self._stream_credit.get(sid, 0) - self._sent.get(sid, 0)
        c = 65535 + self._conn_credit - self._conn_sent
        return min(s, c)

    # -- reading

    def _recv(self, n: int) -> bytes:
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                raise Closed()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self) -> Frame:
        head = self._recv(9)
        f, length = Frame.parse_frame_header(memoryview(head))
        f.parse_body(memoryview(self._recv(length)))
        self.frames.append(f)
        self._on_frame(f)
        return f

    def _resp(self, sid: int) -> H2Response:
        return self.responses.setdefault(sid, H2Response())

    def _on_headers(self, sid: int, block: bytes, end_stream: bool):
        r = self._resp(sid)
        fields = [(k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                  for k, v in self.dec.decode(block, raw=True)]
        status = int(dict(fields).get(":status", "0"))
        if 100 <= status < 200:
            r.interim.append((status, fields))
        elif r.status is None:
            r.status = status
            r.headers = fields
        if end_stream:
            r.ended = True

    def reply(self, *frames: Frame):
        """An automatic answer (SETTINGS ACK, WINDOW_UPDATE): a server that
        has already sent GOAWAY and closed may reset the connection first;
        the frames it sent before can still be read."""
        try:
            self.send(*frames)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _on_frame(self, f: Frame):
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.server_settings.update(f.settings)
            self.reply(SettingsFrame(0, flags=["ACK"]))
        elif isinstance(f, HeadersFrame):
            if "END_HEADERS" in f.flags:
                self._on_headers(f.stream_id, f.data, "END_STREAM" in f.flags)
            else:
                self._hblock = (f.stream_id, f.data, "END_STREAM" in f.flags)
        elif isinstance(f, ContinuationFrame) and self._hblock:
            sid, data, end = self._hblock
            data += f.data
            if "END_HEADERS" in f.flags:
                self._hblock = None
                self._on_headers(sid, data, end)
            else:
                self._hblock = (sid, data, end)
        elif isinstance(f, DataFrame):
            r = self._resp(f.stream_id)
            r.body += f.data
            if "END_STREAM" in f.flags:
                r.ended = True
            n = f.flow_controlled_length
            if self.auto_window and n > 0:
                self.reply(WindowUpdateFrame(0, window_increment=n))
                if not r.ended:
                    self.reply(WindowUpdateFrame(f.stream_id, window_increment=n))
        elif isinstance(f, RstStreamFrame):
            self._resp(f.stream_id).reset = f.error_code
        elif isinstance(f, GoAwayFrame):
            self.goaway = (f.error_code, f.last_stream_id)
        elif isinstance(f, PingFrame) and "ACK" in f.flags:
            self.pings.append(f.opaque_data)
        elif isinstance(f, WindowUpdateFrame):
            if f.stream_id == 0:
                self._conn_credit += f.window_increment
            else:
                self._stream_credit[f.stream_id] = self._stream_credit.get(f.stream_id, 0) + f.window_increment

    def until(self, pred, timeout: float = TIMEOUT) -> bool:
        """Reads frames until pred() holds; False when the server closed first."""
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError("no such frame within %.0f s; frames: %s" % (timeout, self.frames[-10:]))
            try:
                self.read_frame()
            except Closed:
                return pred()
            except socket.timeout:
                continue
        return True

    def response(self, sid: int, timeout: float = TIMEOUT) -> H2Response:
        self.until(lambda: self._resp(sid).ended or self._resp(sid).reset is not None, timeout)
        return self._resp(sid)

    def wait_reset(self, sid: int, timeout: float = TIMEOUT) -> Optional[int]:
        self.until(lambda: self._resp(sid).reset is not None or self.goaway is not None, timeout)
        return self._resp(sid).reset

    def wait_goaway(self, timeout: float = TIMEOUT) -> Optional[tuple]:
        """The GOAWAY (error code, last stream id), or None when the server
        closed without one."""
        self.until(lambda: self.goaway is not None, timeout)
        return self.goaway

    def wait_closed(self, timeout: float = TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.read_frame()
            except Closed:
                return True
            except socket.timeout:
                pass
        return False

    def ping(self, data: bytes = b"12345678") -> bytes:
        self.send(PingFrame(0, opaque_data=data))
        self.until(lambda: data in self.pings)
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame_bytes(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    """A frame from its parts, for frames hyperframe refuses to build."""
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload
