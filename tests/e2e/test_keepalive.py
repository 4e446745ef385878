"""Persistent connections (SPEC sections 4 and 9, RFC 9112 section 9):
several requests per client connection, pipelining, the upstream pool,
an upstream that closes a pooled connection, the client_idle timeout,
HTTP/1.0 clients and Connection: close."""

import threading
import time

import pytest

from upstreams import Response

CONFIG = """
workers: 1
timeouts: {client_idle: {idle}}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


def start(portico, upstream, idle="60s"):
    return portico(CONFIG, up=upstream, idle=idle)


def test_several_requests_on_one_client_connection(portico, upstream):
    px = start(portico, upstream)
    with px.client() as c:
        for i in range(5):
            c.request("GET", "/internal/seq/%d" % i)
            r = c.read_response()
            assert r.status == 200
            assert r.body == b"GET /public/seq/%d\n" % i
            assert not r.connection_close
        body = b"x" * 1000
        c.request("POST", "/internal/post", body=body)
        r = c.read_response()
        assert r.status == 200 and r.body == b"POST /public/post\n" + body
        assert c.wait_closed(0.5) is False


def test_pipelined_requests_are_answered_in_order(portico, upstream):
    px = start(portico, upstream)
    body = b"pipelined body \x00\xff" * 100
    wire = (
        b"GET /internal/p1 HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
        b"POST /internal/p2 HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: %d\r\n\r\n%s"
        b"HEAD /internal/p3 HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
        b"POST /internal/p4 HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
        b"GET /internal/p5?q=1 HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
    ) % (len(body), body)
    with px.client() as c:
        c.send(wire)  # one write
        rs = c.read_responses(5, ["GET", "POST", "HEAD", "POST", "GET"])
        assert [r.status for r in rs] == [200] * 5
        assert rs[0].body == b"GET /public/p1\n"
        assert rs[1].body == b"POST /public/p2\n" + body
        assert rs[2].body == b""
        assert rs[3].body == b"POST /public/p4\nhello"
        assert rs[4].body == b"GET /public/p5?q=1\n"
        # nothing more than the five responses
        assert c.wait_closed(0.5) is False
        assert c.stream.buf == b""
    got = [r.target for r in upstream.wait_requests(5)]
    assert got == ["/public/p1", "/public/p2", "/public/p3", "/public/p4", "/public/p5?q=1"]


def test_pipelined_requests_in_one_write_with_slow_first_answer(portico, upstream):
    """The second request waits in portico's buffer while the first is slow;
    the responses still come back in request order."""
    upstream.handle("/public/slow", Response(200, [("Content-Type", "text/plain")], b"slow", delay=0.5))
    px = start(portico, upstream)
    with px.client() as c:
        c.send(
            b"GET /internal/slow HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /internal/fast HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /internal/fast2 HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        rs = c.read_responses(3)
        assert [r.body for r in rs] == [b"slow", b"GET /public/fast\n", b"GET /public/fast2\n"]


@pytest.mark.parametrize("fresh_clients", [False, True], ids=["one-client-connection", "new-client-connections"])
def test_upstream_connection_is_reused(portico, upstream, fresh_clients):
    px = start(portico, upstream)
    n = 6
    if fresh_clients:
        for i in range(n):
            r = px.fetch("GET", "/internal/reuse/%d" % i)
            assert r.status == 200
    else:
        with px.client() as c:
            for i in range(n):
                c.request("GET", "/internal/reuse/%d" % i)
                assert c.read_response().status == 200
    reqs = upstream.wait_requests(n)
    assert upstream.connections_accepted == 1, [(q.target, q.conn_id) for q in reqs]
    assert [q.index for q in reqs] == list(range(1, n + 1))


def _close_idle_upstream_connections(upstream, timeout=5.0):
    """Waits until the upstream's connection is back waiting for a request,
    then closes it (as an upstream whose keep-alive timeout expired)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if upstream.close_idle() > 0:
            return
        time.sleep(0.01)
    raise AssertionError("the upstream connection never became idle")


@pytest.mark.parametrize("pause", [0.0, 0.3], ids=["at-once", "after-pause"])
def test_upstream_closing_a_pooled_connection_is_survived(portico, upstream, pause):
    px = start(portico, upstream)
    with px.client() as c:
        for i in range(3):
            c.request("GET", "/internal/round/%d" % i)
            r = c.read_response()
            assert r.status == 200, (i, r.status, r.body[:300])
            assert r.body == b"GET /public/round/%d\n" % i
            _close_idle_upstream_connections(upstream)
            time.sleep(pause)
        c.request("GET", "/internal/last")
        r = c.read_response()
        assert r.status == 200 and r.body == b"GET /public/last\n"
    assert upstream.connections_accepted == 4


def test_client_idle_timeout_closes_the_connection(portico, upstream):
    px = start(portico, upstream, idle="1s")
    with px.client() as c:
        t0 = time.monotonic()  # before the response ends, when client_idle starts
        c.request("GET", "/internal/idle")
        assert c.read_response().status == 200
        assert c.wait_closed(8), "client_idle: 1s did not close an idle connection within 8 s"
        assert time.monotonic() - t0 >= 0.95, "closed before client_idle"
        assert c.stream.buf == b"", "bytes were sent on the idle connection: %r" % bytes(c.stream.buf)


def test_connection_in_use_outlives_client_idle(portico, upstream):
    """client_idle counts from the end of the last response: a connection
    that keeps sending requests stays open."""
    px = start(portico, upstream, idle="2s")
    with px.client() as c:
        for i in range(6):
            c.request("GET", "/internal/busy/%d" % i)
            assert c.read_response().status == 200
            time.sleep(0.5)
    assert upstream.connections_accepted == 1


def test_http10_client_without_keepalive_is_closed(portico, upstream):
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/old", version="HTTP/1.0")
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"GET /public/old\n"
        assert r.header("Transfer-Encoding") is None
        assert c.wait_closed(5), "HTTP/1.0 connection without keep-alive left open"


def test_connection_close_is_honoured(portico, upstream):
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/bye", headers=[("Connection", "close")])
        r = c.read_response()
        assert r.status == 200 and r.body == b"GET /public/bye\n"
        assert r.connection_close, r.raw_head
        assert c.wait_closed(5), "Connection: close not honoured"


def test_requests_pipelined_after_connection_close_are_not_answered(portico, upstream):
    px = start(portico, upstream)
    with px.client() as c:
        c.send(
            b"GET /internal/one HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            b"GET /internal/two HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        r = c.read_response()
        assert r.status == 200 and r.body == b"GET /public/one\n"
        assert c.wait_closed(5)
        assert c.stream.buf == b"", "a response after Connection: close: %r" % bytes(c.stream.buf[:200])
    assert [q.target for q in upstream.requests] == ["/public/one"]


def test_upstream_connection_close_does_not_close_the_client(portico, upstream):
    """An upstream that answers Connection: close is hop-by-hop: the client
    connection stays open for the next request."""
    upstream.handle("/public/closing", Response(200, [("Content-Type", "text/plain")], b"bye", close=True))
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/closing")
        r = c.read_response()
        assert r.status == 200 and r.body == b"bye"
        assert not r.connection_close, r.raw_head
        c.request("GET", "/internal/next")
        r = c.read_response()
        assert r.status == 200 and r.body == b"GET /public/next\n"
    assert upstream.connections_accepted == 2


def test_idle_pooled_connection_expires_after_upstream_idle(portico, upstream):
    px = portico(
        "workers: 1\ntimeouts: {upstream_idle: 1s}\nroutes:\n  - path: /internal\n    pass: http://internal.example.com:{up}/public\n",
        up=upstream,
    )
    assert px.fetch("GET", "/internal/one").status == 200
    deadline = time.monotonic() + 8
    while upstream.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.open_connections == 0, "the pooled connection outlived upstream_idle: 1s by 7 s"
    r = px.fetch("GET", "/internal/two")
    assert r.status == 200 and r.body == b"GET /public/two\n"
    assert upstream.connections_accepted == 2


def test_parallel_requests_use_parallel_connections_then_the_pool(portico, upstream):
    # No answer leaves until all four requests are at the upstream, so each
    # needs a connection of its own however the threads are scheduled.
    gate = threading.Barrier(4, timeout=10)

    def slow(req):
        gate.wait()
        return Response(200, [("Content-Type", "text/plain")], b"slow")

    upstream.handle("/public/slow", slow)
    px = start(portico, upstream)
    results = []

    def one():
        results.append(px.fetch("GET", "/internal/slow").status)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 4
    assert upstream.connections_accepted == 4
    for i in range(4):
        r = px.fetch("GET", "/internal/after/%d" % i)
        assert r.status == 200
    assert upstream.connections_accepted == 4, "pooled connections were not reused"


def test_many_pipelined_requests_in_one_write(portico, upstream):
    px = start(portico, upstream)
    n = 100
    wire = b"".join(b"GET /internal/many/%d HTTP/1.1\r\nHost: www.example.com\r\n\r\n" % i for i in range(n))
    with px.client(timeout=10) as c:
        c.send(wire)
        rs = c.read_responses(n)
    assert [r.body for r in rs] == [b"GET /public/many/%d\n" % i for i in range(n)]


def test_pipelined_large_responses_stay_in_order(portico, upstream):
    big = bytes(range(256)) * 4096  # 1 MiB
    upstream.handle("/public/big-length", Response(200, [("Content-Type", "application/octet-stream")], big))
    upstream.handle("/public/big-chunked", Response(200, [("Content-Type", "application/octet-stream")], iter([big[:300000], big[300000:]])))
    px = start(portico, upstream)
    with px.client(timeout=10) as c:
        c.send(
            b"GET /internal/big-length HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /internal/small HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /internal/big-chunked HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /internal/small2 HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        rs = c.read_responses(4)
    assert [r.status for r in rs] == [200] * 4
    assert rs[0].body == big and rs[2].body == big
    assert rs[1].body == b"GET /public/small\n" and rs[3].body == b"GET /public/small2\n"


def test_client_half_close_after_request_still_gets_the_response(portico, upstream):
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/half")
        c.shutdown_write()
        r = c.read_response()
        assert r.status == 200 and r.body == b"GET /public/half\n"
        assert c.wait_closed(5), "connection left open after the client's EOF and the response"


def test_post_after_upstream_closed_the_pooled_connection(portico, upstream):
    """Once the upstream has closed an idle pooled connection (and portico
    had time to see the FIN), a request with a body goes to a fresh
    connection rather than failing."""
    px = portico(CONFIG + "log: {level: debug}\n", up=upstream, idle="60s")
    with px.client() as c:
        c.request("GET", "/internal/first")
        assert c.read_response().status == 200
        _close_idle_upstream_connections(upstream)
        px.wait_log(r"upstream \S+ closed: closed while idle")
        c.request("POST", "/internal/post", body=b"payload")
        r = c.read_response()
        assert r.status == 200 and r.body == b"POST /public/post\npayload"


def test_client_abort_does_not_leave_a_pending_response_in_the_pool(portico, upstream):
    """A client that closes (FIN) while its response is pending: nothing of
    that response may ever reach another client connection, and the
    upstream connection that carried it does not hand it to the next
    request.  Several rounds, since the abort races with the answer."""
    upstream.handle("/public/slow", Response(200, [("Content-Type", "text/plain")], b"abandoned", delay=0.3))
    px = start(portico, upstream)
    for round_ in range(12):
        upstream.reset()
        with px.client() as c:
            c.request("GET", "/internal/slow")
            upstream.wait_requests(1)
        time.sleep(0.5)  # the abandoned answer has been written by now
        with px.client() as c:
            c.request("GET", "/internal/later/%d" % round_)
            r = c.read_response()
            assert r.status == 200, (round_, r.status)
            assert r.body == b"GET /public/later/%d\n" % round_, (round_, r.body)


def test_client_leaving_mid_response_does_not_disturb_the_next_clients(portico, upstream):
    """A client reads the start of a 10 MiB response and closes: the
    upstream connection in the middle of that body is not reused, and no
    byte of it reaches a later client."""
    big = bytes(range(256)) * (40 * 1024)  # 10 MiB
    upstream.handle("/public/big", Response(200, [("Content-Type", "application/octet-stream")], big))
    px = start(portico, upstream)
    for round_ in range(4):
        with px.client() as c:
            c.request("GET", "/internal/big")
            got = b""
            while len(got) < 100000:
                data = c.read_some()
                assert data, "closed early"
                got += data
        for i in range(3):
            r = px.fetch("GET", "/internal/after/%d/%d" % (round_, i))
            assert r.status == 200 and r.body == b"GET /public/after/%d/%d\n" % (round_, i), r.body[:100]


def test_many_sequential_requests_on_one_connection(portico, upstream):
    px = start(portico, upstream)
    with px.client() as c:
        for i in range(300):
            c.request("GET", "/internal/n/%d" % i)
            r = c.read_response()
            assert r.body == b"GET /public/n/%d\n" % i
    assert upstream.connections_accepted == 1


def test_pool_is_kept_per_upstream(portico, upstream_factory):
    a = upstream_factory()
    b = upstream_factory()
    px = portico(
        "workers: 1\nroutes:\n  - path: /a\n    pass: http://internal.example.com:{a}/public\n"
        "  - path: /b\n    pass: http://internal.example.com:{b}/public\n",
        a=a,
        b=b,
    )
    with px.client() as c:
        for i in range(4):
            for name in ("a", "b"):
                c.request("GET", "/%s/%d" % (name, i))
                r = c.read_response()
                assert r.status == 200 and r.body == b"GET /public/%d\n" % i
    assert len(a.requests) == 4 and len(b.requests) == 4
    assert a.connections_accepted == 1 and b.connections_accepted == 1


def test_post_racing_an_upstream_close_is_never_corrupted(portico, upstream):
    """A 1 MiB POST sent the moment the upstream closes the pooled
    connection: portico may retry it on a fresh connection or answer 502,
    but the upstream never records a body other than the one sent."""
    body = bytes(range(256)) * 4096
    px = start(portico, upstream)
    with px.client(timeout=5) as c:
        for i in range(5):
            c.request("GET", "/internal/warm/%d" % i)
            assert c.read_response().status == 200
            _close_idle_upstream_connections(upstream)
            c.request("POST", "/internal/race/%d" % i, body=body)
            r = c.read_response("POST")
            assert r.status in (200, 502), r.status
            if r.status == 200:
                assert r.body == b"POST /public/race/%d\n" % i + body
            if r.connection_close:
                break
    for q in upstream.requests:
        if q.method == "POST":
            assert q.body == body, (q.target, len(q.body))


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_large_bodies_to_fresh_upstream_connections_on_one_client_connection(portico, upstream, chunked):
    """Each 1 MiB POST needs a new upstream connection (the upstream closed
    the previous one with Connection: close): the body goes through every
    time, not only the first."""
    upstream.handle("/public/closing", Response(200, [("Content-Type", "text/plain")], b"closing", close=True))
    body = bytes(range(256)) * 4096
    px = start(portico, upstream)
    with px.client(timeout=5) as c:
        for i in range(3):
            c.request("GET", "/internal/closing")
            assert c.read_response().body == b"closing"
            time.sleep(0.1)  # portico has seen the upstream close
            if chunked:
                c.request("POST", "/internal/big/%d" % i, headers=[("Transfer-Encoding", "chunked")], body=b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            else:
                c.request("POST", "/internal/big/%d" % i, body=body)
            r = c.read_response("POST")
            assert r.status == 200, (i, r.status)
            assert r.body == b"POST /public/big/%d\n" % i + body
