"""The admin listener (SPEC sections 2 and 11): /healthz and /metrics on
admin.listen only, the counters moving with proxied requests, reloads and
connections, and the listener following admin.listen across reloads."""

import socket
import time

from conftest import free_port
from upstreams import http_request

CONFIG = """
workers: 2
admin:
  listen: 127.0.0.1:{admin}
timeouts: {upstream_idle: 1s}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
    name: internal
"""


def start(portico, upstream, admin=None):
    admin = admin or free_port()
    px = portico(CONFIG, up=upstream, admin=admin)
    px.admin = admin
    return px


def admin_get(px, path, method="GET", port=None):
    return http_request(port or px.admin, method, path)


def metrics(px, port=None):
    """The /metrics samples as {"name{labels}": value}."""
    r = admin_get(px, "/metrics", port=port)
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def wait_metric(px, key, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = metrics(px).get(key)
        except OSError as e:  # a re-bound listener not there yet
            got = e
        if got == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s is %r, expected %r" % (key, got, want))
        time.sleep(0.05)


def test_healthz(portico, upstream):
    px = start(portico, upstream)
    r = admin_get(px, "/healthz")
    assert r.status == 200 and r.body == b"ok\n"
    assert r.header("Connection") == "close"
    r = admin_get(px, "/healthz", method="HEAD")
    assert r.status == 200 and r.body == b""


def test_other_paths_and_methods(portico, upstream):
    px = start(portico, upstream)
    assert admin_get(px, "/").status == 404
    assert admin_get(px, "/metricsx").status == 404
    assert admin_get(px, "/internal/x").status == 404
    r = admin_get(px, "/metrics", method="POST")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    assert admin_get(px, "/healthz", method="DELETE").status == 405
    assert admin_get(px, "/metrics?x=1").status == 200


def test_bad_and_oversized_heads(portico, upstream):
    px = start(portico, upstream)
    with socket.create_connection(("127.0.0.1", px.admin), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\nHost: x\n\n")  # bare LF: strict parsing
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")
    with socket.create_connection(("127.0.0.1", px.admin), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 431 ")
    assert admin_get(px, "/healthz").status == 200


def test_requests_by_route_and_class(portico, upstream):
    px = start(portico, upstream)
    for i in range(3):
        assert px.get("/internal/%d" % i).status == 200
    assert px.get("/nowhere").status == 404
    # A request is counted when its exchange ends, which may come just after
    # the client has the response.
    wait_metric(px, 'portico_requests_total{route="internal",code="2xx"}', 3)
    wait_metric(px, 'portico_requests_total{route="",code="4xx"}', 1)
    m = metrics(px)
    assert m['portico_requests_total{route="internal",code="2xx"}'] == 3
    assert m['portico_requests_total{route="",code="4xx"}'] == 1
    total = sum(v for k, v in m.items() if k.startswith("portico_requests_total{"))
    assert total == 4
    assert m["portico_request_duration_seconds_count"] == total
    assert m['portico_request_duration_seconds_bucket{le="+Inf"}'] == total
    buckets = [v for k, v in m.items() if k.startswith("portico_request_duration_seconds_bucket")]
    assert buckets == sorted(buckets)
    assert m["portico_bytes_received_total"] > 0
    assert m["portico_bytes_sent_total"] > 0
    assert m["portico_upstream_connect_errors_total"] == 0
    assert m["portico_config_generation"] == 1


def test_metrics_not_served_on_public_listener(portico, upstream):
    px = start(portico, upstream)
    r = px.get("/metrics")
    assert r.status == 404
    assert b"portico_requests_total" not in r.body
    r = px.get("/healthz")
    assert r.status == 404
    wait_metric(px, 'portico_requests_total{route="",code="4xx"}', 2)


def test_reload_counters(portico, upstream):
    px = start(portico, upstream)
    m = metrics(px)
    assert m['portico_reloads_total{result="ok"}'] == 0
    assert m['portico_reloads_total{result="error"}'] == 0
    px.reload()
    wait_metric(px, 'portico_reloads_total{result="ok"}', 1)
    assert metrics(px)["portico_config_generation"] == 2
    px.config_path.write_text("routes: [\n")
    px.reload()
    wait_metric(px, 'portico_reloads_total{result="error"}', 1)
    m = metrics(px)
    assert m['portico_reloads_total{result="ok"}'] == 1
    assert m["portico_config_generation"] == 2
    assert px.get("/internal/after").status == 200


def test_admin_rebound_on_reload(portico, upstream):
    px = start(portico, upstream)
    old, new = px.admin, free_port()
    px.reload(CONFIG, up=upstream, admin=new)
    px.admin = new
    wait_metric(px, 'portico_reloads_total{result="ok"}', 1)
    try:
        http_request(old, "GET", "/healthz", timeout=1)
        raise AssertionError("the old admin address still answers")
    except OSError:
        pass


def test_connection_gauges_return_to_zero(portico, upstream):
    px = start(portico, upstream)
    with px.client() as c:
        c.request("GET", "/internal/a")
        assert c.read_response().status == 200
        # The readiness probe's connection may still be being freed.
        wait_metric(px, "portico_client_connections", 1)
        assert metrics(px)["portico_upstream_connections"] >= 1
    wait_metric(px, "portico_client_connections", 0)
    # The pooled upstream connection is idle, then closed after upstream_idle.
    m = metrics(px)
    assert m["portico_upstream_connections"] == m["portico_upstream_idle_connections"]
    wait_metric(px, "portico_upstream_connections", 0)
    wait_metric(px, "portico_upstream_idle_connections", 0)


def test_connect_errors_counted(portico, refused_port):
    admin = free_port()
    px = portico(CONFIG, up=refused_port, admin=admin)
    px.admin = admin
    assert px.get("/internal/x").status == 502
    # The worker frees the failed upstream connection just after the 502 is
    # on the wire: wait for the gauge instead of racing it.
    wait_metric(px, "portico_upstream_connections", 0)
    m = metrics(px)
    assert m["portico_upstream_connect_errors_total"] == 1
    assert m['portico_requests_total{route="internal",code="5xx"}'] == 1


def test_slow_head_cut_after_ten_seconds(portico, upstream):
    px = start(portico, upstream)
    with socket.create_connection(("127.0.0.1", px.admin), timeout=15) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        # A trickle of bytes does not extend the deadline.
        while time.monotonic() - t0 < 12:
            try:
                s.sendall(b"X")
            except OSError:
                break
            s.settimeout(1)
            try:
                if s.recv(1) == b"":
                    break
            except socket.timeout:
                pass
            except OSError:  # reset: a byte came as it closed
                break
        elapsed = time.monotonic() - t0
    assert 9 <= elapsed < 12
    assert admin_get(px, "/healthz").status == 200
