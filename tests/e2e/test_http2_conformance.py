"""HTTP/2 conformance with raw frames (the sections of h2spec: connection
preface, frame sizes and types, stream states, flow control, HPACK,
SETTINGS, PING, GOAWAY, RST_STREAM, malformed requests of RFC 9113 section
8.1.1), and the attacks of issue 12 (rapid reset, CONTINUATION flood,
SETTINGS/PING/empty-DATA floods, zero-window stalls), each with the error
code RFC 9113 requires and its counter in /metrics.
"""

from __future__ import annotations

import struct
import threading

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from helpers_h2 import (
    CANCEL,
    COMPRESSION_ERROR,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    NO_ERROR,
    PROTOCOL_ERROR,
    STREAM_CLOSED,
    H2Client,
    frame_bytes,
)
from test_http2 import h2c, held, metric, metrics
from upstreams import FullBacklogListener, Hijack, Response

REQ = [(":method", "GET"), (":scheme", "http"), (":path", "/internal/x"), (":authority", "www.example.com")]


@pytest.fixture
def px(portico, upstream):
    return h2c(portico, upstream)


def goaway_code(c: H2Client):
    g = c.wait_goaway()
    assert g is not None, "closed without GOAWAY"
    return g[0]


def still_serves(c: H2Client) -> bool:
    return c.response(c.request("GET", "/internal/alive")).status == 200


# --- one frame, a connection error: GOAWAY with the code the RFC section requires ---------


# RFC 9113 section, then what the frame is.
CONNECTION_ERRORS = {
    "5.1-data-on-an-idle-stream":
        (DataFrame(1, b"x").serialize(), PROTOCOL_ERROR),
    "5.1-rst-stream-on-an-idle-stream":
        (RstStreamFrame(1, error_code=CANCEL).serialize(), PROTOCOL_ERROR),
    "5.1-window-update-on-an-idle-stream":
        (WindowUpdateFrame(1, window_increment=1).serialize(), PROTOCOL_ERROR),
    "6.1-data-on-stream-0":
        (frame_bytes(0x0, 0x0, 0, b"x"), PROTOCOL_ERROR),
    "6.5-settings-ack-with-payload":
        (frame_bytes(0x4, 0x1, 0, b"\x00\x03\x00\x00\x00\x01"), FRAME_SIZE_ERROR),
    "6.5-settings-length-not-multiple-of-6":
        (frame_bytes(0x4, 0x0, 0, b"\x00\x03\x00\x00\x00"), FRAME_SIZE_ERROR),
    "6.5-settings-on-a-stream":
        (frame_bytes(0x4, 0x0, 1, b""), PROTOCOL_ERROR),
    "6.7-ping-of-wrong-length":
        (frame_bytes(0x6, 0x0, 0, b"1234567"), FRAME_SIZE_ERROR),
    "6.7-ping-on-a-stream":
        (frame_bytes(0x6, 0x0, 1, b"12345678"), PROTOCOL_ERROR),
    "6.9-window-update-of-wrong-length":
        (frame_bytes(0x8, 0x0, 0, b"\x00\x00\x01"), FRAME_SIZE_ERROR),
    "6.9-window-update-of-zero-on-the-connection":
        (frame_bytes(0x8, 0x0, 0, b"\x00\x00\x00\x00"), PROTOCOL_ERROR),
    "6.9.1-connection-window-overflow":
        (WindowUpdateFrame(0, window_increment=(1 << 31) - 1).serialize(), FLOW_CONTROL_ERROR),
}


@pytest.mark.parametrize("name", sorted(CONNECTION_ERRORS))
def test_frame_is_a_connection_error(px, name):
    frame, code = CONNECTION_ERRORS[name]
    c = H2Client(px.port)
    c.send_raw(frame)
    assert goaway_code(c) == code


# --- 3.4 connection preface, 6.5 SETTINGS ------------------------------------------------


def test_server_preface_is_settings_with_the_limits(px):
    c = H2Client(px.port)
    c.ping()
    s = c.server_settings
    assert s[SettingsFrame.MAX_CONCURRENT_STREAMS] == 128
    assert s[SettingsFrame.INITIAL_WINDOW_SIZE] == 65535
    assert s[SettingsFrame.HEADER_TABLE_SIZE] == 4096
    assert s[SettingsFrame.MAX_HEADER_LIST_SIZE] == 16384
    assert s.get(SettingsFrame.ENABLE_CONNECT_PROTOCOL, 0) == 0


def test_invalid_preface_is_a_connection_error(px):
    c = H2Client(px.port, preface=False)
    c.send_raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
    assert c.wait_closed()
    assert c.goaway is None or c.goaway[0] == PROTOCOL_ERROR


def test_first_frame_not_settings_is_protocol_error(px):
    c = H2Client(px.port, preface=False)
    c.send_raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    c.send(PingFrame(0, opaque_data=b"abcdefgh"))
    assert goaway_code(c) == PROTOCOL_ERROR


@pytest.mark.parametrize("ident,value,code", [
    (0x2, 2, PROTOCOL_ERROR),  # ENABLE_PUSH
    (0x4, 1 << 31, FLOW_CONTROL_ERROR),  # INITIAL_WINDOW_SIZE
    (0x5, 16383, PROTOCOL_ERROR),  # MAX_FRAME_SIZE
    (0x5, 1 << 24, PROTOCOL_ERROR),
])
def test_invalid_settings_values(px, ident, value, code):
    c = H2Client(px.port)
    c.send_raw(frame_bytes(0x4, 0x0, 0, struct.pack(">HI", ident, value)))
    assert goaway_code(c) == code


def test_unknown_setting_is_ignored(px):
    c = H2Client(px.port)
    c.send_raw(frame_bytes(0x4, 0x0, 0, struct.pack(">HI", 0xFF, 1)))
    assert still_serves(c)


# --- 4 frames: sizes and types -------------------------------------------------------------


def test_unknown_frame_type_is_ignored(px):
    c = H2Client(px.port)
    c.send_raw(frame_bytes(0xEE, 0x0, 0, b"whatever"))
    assert still_serves(c)


def test_frame_over_max_frame_size_is_frame_size_error(px):
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/x", end_stream=False)
    c.send_raw(frame_bytes(0x0, 0x0, sid, b"x" * 16385))
    assert goaway_code(c) == FRAME_SIZE_ERROR


def test_ping_is_answered_with_the_same_payload(px):
    c = H2Client(px.port)
    assert c.ping(b"portico!") == b"portico!"


def test_rst_stream_of_wrong_length_is_frame_size_error(px):
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/x", end_stream=False)
    c.send_raw(frame_bytes(0x3, 0x0, sid, b"\x00\x00\x00"))
    assert goaway_code(c) == FRAME_SIZE_ERROR


# --- 5.1 stream states and identifiers ------------------------------------------------------


def test_headers_on_an_even_stream_is_protocol_error(px):
    c = H2Client(px.port)
    c.send(c.headers_frame(2, REQ))
    assert goaway_code(c) == PROTOCOL_ERROR


def test_data_after_end_stream_is_stream_closed(px, upstream):
    release = held(upstream, "/public/hold", b"h", wait=10)
    c = H2Client(px.port)
    sid = c.request("GET", "/internal/hold")
    c.send(DataFrame(sid, b"late"))
    assert c.wait_reset(sid) == STREAM_CLOSED or goaway_code(c) == STREAM_CLOSED
    release.set()


def test_priority_is_accepted_on_any_stream(px):
    c = H2Client(px.port)
    c.send(PriorityFrame(7, depends_on=0, stream_weight=16))
    assert still_serves(c)


def test_streams_over_max_concurrent_are_a_protocol_error(px, upstream):
    # Once the client has acknowledged SETTINGS_MAX_CONCURRENT_STREAMS (the
    # PING answer follows the ACK), a 129th stream is a connection error.
    release = held(upstream, "/public/hold*", b"h", wait=20)
    c = H2Client(px.port)
    c.ping()
    for i in range(128):
        c.request("GET", "/internal/hold%d" % i)
    c.request("GET", "/internal/hold-extra")
    assert goaway_code(c) == PROTOCOL_ERROR
    release.set()


# --- 6.9 flow control ------------------------------------------------------------------------


def test_window_update_of_zero_on_a_stream_is_protocol_error(px, upstream):
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/x", end_stream=False)
    c.send_raw(frame_bytes(0x8, 0x0, sid, b"\x00\x00\x00\x00"))
    # A stream error; nghttp2 makes it a connection error, which h2spec accepts too.
    code = c.wait_reset(sid)
    assert code == PROTOCOL_ERROR or c.goaway[0] == PROTOCOL_ERROR


def test_stream_window_overflow_is_a_stream_error(px, upstream):
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/x", end_stream=False)
    c.send(WindowUpdateFrame(sid, window_increment=(1 << 31) - 1))
    assert c.wait_reset(sid) == FLOW_CONTROL_ERROR


def test_data_beyond_the_stream_window_is_flow_control_error(portico, upstream):
    # The route's upstream never completes its connect, so portico can take
    # into the connection's output no more than STREAM_HIGH_WATER (256 KiB)
    # before it stops reading the stream, plus one 64 KiB window; it may
    # widen the window as it goes, but never by 512 KiB, wherever its reads
    # fall between the client's frames.
    with FullBacklogListener() as fb:
        if not fb.connect_hangs():
            pytest.skip("this kernel answers connects beyond the backlog")
        extra = "  - path: /hang\n    pass: http://127.0.0.1:{hang}/\n"
        px = h2c(portico, upstream, extra, hang=fb.port)
        c = H2Client(px.port)
        sid = c.request("POST", "/hang/sink", end_stream=False)
        try:
            for _ in range(32):
                c.send_raw(frame_bytes(0x0, 0x0, sid, b"x" * 16384))
        except OSError:
            pass  # closed on a connection error: the GOAWAY tells which
        code = c.wait_reset(sid)
        assert code == FLOW_CONTROL_ERROR or (c.goaway and c.goaway[0] == FLOW_CONTROL_ERROR)


def test_initial_window_zero_then_update_lets_the_response_through(px):
    c = H2Client(px.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    sid = c.request("GET", "/internal/w")
    c.until(lambda: sid in c.responses and c.responses[sid].status == 200)
    assert c.responses[sid].body == b""
    c.send(WindowUpdateFrame(sid, window_increment=100))
    assert c.response(sid).body == b"GET /public/w\n"


# --- 4.3 HPACK ----------------------------------------------------------------------------------


def test_invalid_hpack_is_compression_error(px):
    c = H2Client(px.port)
    f = HeadersFrame(1, b"\xff\xff\xff\xff\xff\xff")  # an index far beyond any table
    f.flags = {"END_STREAM", "END_HEADERS"}
    c.send(f)
    assert goaway_code(c) == COMPRESSION_ERROR


def test_dynamic_table_size_update_over_the_limit_is_compression_error(px):
    c = H2Client(px.port)
    f = HeadersFrame(1, b"\x3f\xe1\x7f" + c.encode(REQ))  # table size update to 16384 > 4096
    f.flags = {"END_STREAM", "END_HEADERS"}
    c.send(f)
    assert goaway_code(c) == COMPRESSION_ERROR


def test_continuation_carries_the_header_block(px):
    c = H2Client(px.port)
    block = c.encode(REQ + [("x-long", "v" * 3000)])
    h = HeadersFrame(1, block[:100])
    h.flags = {"END_STREAM"}
    k = ContinuationFrame(1, block[100:])
    k.flags = {"END_HEADERS"}
    c.send(h, k)
    assert c.response(1).status == 200


def test_other_frame_between_headers_and_continuation_is_protocol_error(px):
    c = H2Client(px.port)
    block = c.encode(REQ)
    h = HeadersFrame(1, block[:5])
    h.flags = {"END_STREAM"}
    c.send(h, PingFrame(0, opaque_data=b"12345678"))
    assert goaway_code(c) == PROTOCOL_ERROR


# --- 8.1.1 malformed requests: RST_STREAM PROTOCOL_ERROR -----------------------------------------


MALFORMED = {
    "connection": REQ + [("connection", "keep-alive")],
    "keep-alive": REQ + [("keep-alive", "5")],
    "proxy-connection": REQ + [("proxy-connection", "x")],
    "transfer-encoding": REQ + [("transfer-encoding", "chunked")],
    "upgrade": REQ + [("upgrade", "websocket")],
    "te-gzip": REQ + [("te", "gzip")],
    "upper-case-name": REQ + [("X-Upper", "1")],
    "missing-path": REQ[:2] + REQ[3:],
    "missing-method": REQ[1:],
    "empty-path": [(":method", "GET"), (":scheme", "http"), (":path", ""), (":authority", "a")],
    "unknown-pseudo": REQ + [(":foo", "x")],
    "pseudo-after-regular": [REQ[0], ("x-a", "1")] + REQ[1:],
    "repeated-pseudo": REQ + [(":path", "/again")],
    "response-pseudo": REQ + [(":status", "200")],
    "authority-host-differ": REQ + [("host", "evil.example.com")],
    "value-with-newline": REQ + [("x-a", "a\nb")],
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_is_reset_with_protocol_error(px, upstream, name):
    c = H2Client(px.port)
    sid = c.new_sid()
    c.send(c.headers_frame(sid, MALFORMED[name]))
    assert c.wait_reset(sid) == PROTOCOL_ERROR
    assert still_serves(c)
    assert upstream.requests[:-1] == []
    assert metric(metrics(px), 'portico_http2_rst_stream_sent_total{error="PROTOCOL_ERROR"}') >= 1


def test_a_refused_stream_is_logged_once_with_its_reason(px):
    c = H2Client(px.port)
    sids = [c.new_sid(), c.new_sid()]
    for sid in sids:
        c.send(c.headers_frame(sid, MALFORMED["authority-host-differ"]))
        assert c.wait_reset(sid) == PROTOCOL_ERROR
    # Lines come in order: once the second stream's is there, all of the first's are.
    px.wait_log(r"HTTP/2 stream %d: malformed request: :authority and Host differ" % sids[1])
    assert px.stderr.count("HTTP/2 stream %d: malformed request" % sids[0]) == 1, px.stderr


def test_te_trailers_is_allowed(px):
    c = H2Client(px.port)
    sid = c.new_sid()
    c.send(c.headers_frame(sid, REQ + [("te", "trailers")]))
    assert c.response(sid).status == 200


def test_host_equal_to_authority_is_allowed(px, upstream):
    c = H2Client(px.port)
    sid = c.new_sid()
    c.send(c.headers_frame(sid, REQ + [("host", "WWW.example.com")]))
    assert c.response(sid).status == 200


def test_host_without_authority_is_used(px, upstream):
    c = H2Client(px.port)
    sid = c.new_sid()
    c.send(c.headers_frame(sid, REQ[:3] + [("host", "www.example.com")]))
    assert c.response(sid).status == 200
    assert upstream.wait_request().header("X-Forwarded-Host") == "www.example.com"


@pytest.mark.parametrize("declared,sent", [(10, 5), (3, 8)])
def test_content_length_must_match_the_data(px, upstream, declared, sent):
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/cl", headers=[("content-length", str(declared))], end_stream=False)
    c.send_body(sid, b"x" * sent)
    assert c.wait_reset(sid) == PROTOCOL_ERROR


# --- 6.8 GOAWAY and 6.4 RST_STREAM ---------------------------------------------------------------


def test_client_goaway_closes_the_connection_cleanly(px):
    c = H2Client(px.port)
    assert c.response(c.request("GET", "/internal/a")).status == 200
    c.send(GoAwayFrame(0, last_stream_id=0, error_code=NO_ERROR))
    assert c.wait_closed()


def test_protocol_error_goaway_names_the_last_stream(px):
    c = H2Client(px.port)
    c.response(c.request("GET", "/internal/a"))
    c.response(c.request("GET", "/internal/b"))
    c.send_raw(frame_bytes(0x0, 0x0, 0, b"x"))
    code, last = c.wait_goaway()
    assert code == PROTOCOL_ERROR and last == 3


# --- attacks --------------------------------------------------------------------------------------


def test_rapid_reset_gets_enhance_your_calm(px, upstream):
    """CVE-2023-44487: streams opened and reset at once, over and over."""
    c = H2Client(px.port)
    out = b""
    for i in range(400):
        sid = 1 + 2 * i
        out += c.headers_frame(sid, REQ).serialize() + RstStreamFrame(sid, error_code=CANCEL).serialize()
    c.send_raw(out)
    assert goaway_code(c) == ENHANCE_YOUR_CALM
    assert c.wait_closed()
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="rapid_reset"}') == 1
    assert metric(metrics(px), 'portico_http2_goaway_sent_total{error="ENHANCE_YOUR_CALM"}') == 1


def test_continuation_flood_is_cut(px):
    """CVE-2024-27316: a header block that never ends."""
    c = H2Client(px.port)
    h = HeadersFrame(1, c.encode(REQ))
    h.flags = {"END_STREAM"}
    frames = [h] + [ContinuationFrame(1, c.encode([("x-f%d" % i, "v" * 1000)])) for i in range(50)]
    try:
        c.send(*frames)
    except OSError:
        pass
    # nghttp2 (1.52.0-1+deb12u2 and later) stops at 8 CONTINUATION frames.
    assert goaway_code(c) == ENHANCE_YOUR_CALM
    assert c.wait_closed()
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="continuation"}') == 1


def test_continuation_within_bounds_but_over_header_size_is_431(portico, upstream):
    px = h2c(portico, upstream, "limits: {header_size: 4k}\n")
    c = H2Client(px.port)
    block = c.encode(REQ + [("x-f%d" % i, "v" * 900) for i in range(6)])
    h = HeadersFrame(1, block[:1000])
    h.flags = {"END_STREAM"}
    k = ContinuationFrame(1, block[1000:])
    k.flags = {"END_HEADERS"}
    c.send(h, k)
    assert c.response(1).status == 431


def test_ping_flood_gets_enhance_your_calm(px):
    c = H2Client(px.port)
    c.send_raw(b"".join(PingFrame(0, opaque_data=b"%08d" % i).serialize() for i in range(300)))
    assert goaway_code(c) == ENHANCE_YOUR_CALM
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="ping_flood"}') == 1


def test_settings_flood_gets_enhance_your_calm(px):
    c = H2Client(px.port)
    c.send_raw(b"".join(SettingsFrame(0, settings={0x3: 100}).serialize() for _ in range(300)))
    assert goaway_code(c) == ENHANCE_YOUR_CALM
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="settings_flood"}') == 1


def test_empty_data_flood_gets_enhance_your_calm(px, upstream):
    release = threading.Event()
    upstream.handle("/public/sink", Hijack(lambda s, r: release.wait(10)))
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/sink", end_stream=False)
    c.send_raw(b"".join(DataFrame(sid, b"").serialize() for _ in range(300)))
    assert goaway_code(c) == ENHANCE_YOUR_CALM
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="empty_data"}') == 1
    release.set()


def test_zero_window_stall_is_reset_after_client_body(portico, upstream):
    upstream.handle("/public/big", Response(200, {}, b"z" * 200000))
    px = h2c(portico, upstream, "timeouts: {client_body: 1s}\n")
    c = H2Client(px.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    sid = c.request("GET", "/internal/big")
    assert c.wait_reset(sid, timeout=15) == CANCEL
    assert metric(metrics(px), 'portico_http2_defenses_total{kind="stall"}') == 1
    px.wait_log(r'"GET /internal/big HTTP/2\.0" 200 ', stream="stdout")
    assert still_serves(c)


def test_request_body_that_stops_coming_is_408(portico, upstream):
    px = h2c(portico, upstream, "timeouts: {client_body: 1s}\n")
    c = H2Client(px.port)
    sid = c.request("POST", "/internal/slow", end_stream=False)
    c.send_body(sid, b"part", end_stream=False)
    r = c.response(sid, timeout=15)
    assert r.status == 408
    assert still_serves(c)
