"""Upstream groups (SPEC section 12): balancing by weight, least
connections across workers, consistent hashing, backups, failures counted
and retried on another server without the client noticing, 503 with
Retry-After when every server is down, the state kept across reloads,
reverse mapping of each server's own address, unix-socket upstreams, and
the operator's views (portico route, GET /upstreams, /metrics, log lines).
Active health checks are in test_upstream_health.py."""

import json
import re
import socketserver
import threading
import time
import http.server
from collections import Counter

from conftest import free_port, wait_for
from helpers_stream import connect, request_head
from upstreams import RawUpstream, Response, closed_port, http_request

ADMIN = """
admin:
  listen: 127.0.0.1:{admin}
"""


def named(up, name):
    """Every request to `up` answers its name (and its own address in Location for /loc)."""
    up.handle("/public/*", lambda req: Response(200, [("Content-Type", "text/plain")], name.encode()))
    return up


def served(ups):
    return [len(u.requests) for u in ups]


def upstreams_json(px):
    r = http_request(px.admin, "GET", "/upstreams")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    return json.loads(r.body)


def server_state(px, group, address):
    for g in upstreams_json(px)["groups"]:
        if g["name"] == group:
            for s in g["servers"]:
                if s["address"] == address:
                    return s
    raise AssertionError("no server %s in group %s" % (address, group))


def reload(px, text, generation, **kw):
    px.reload(text + ADMIN, admin=px.admin, **kw)
    px.wait_log(r"configuration reloaded generation=%d" % generation)


def start(portico, text, **kw):
    admin = free_port()
    px = portico(text + ADMIN, admin=admin, **kw)
    px.admin = admin
    return px


# --- balancing -----------------------------------------------------------------------


def test_weights_share_requests_exactly_across_workers(portico, upstream_factory):
    ups = [named(upstream_factory(), n) for n in "abc"]
    px = start(portico, """
workers: 2
upstreams:
  app:
    servers:
      - 127.0.0.1:{a}
      - {address: "127.0.0.1:{b}", weight: 2}
      - {address: "127.0.0.1:{c}", weight: 3}
routes:
  - path: /app
    pass: http://app/public
""", a=ups[0], b=ups[1], c=ups[2])
    bodies = Counter(px.get("/app/x").text for _ in range(300))
    # One shared round-robin position: exact shares, whatever worker took the connection.
    assert bodies == {"a": 50, "b": 100, "c": 150}
    assert served(ups) == [50, 100, 150]


def test_smooth_round_robin_interleaves(portico, upstream_factory):
    ups = [named(upstream_factory(), n) for n in "abc"]
    px = start(portico, """
workers: 1
upstreams:
  app:
    servers:
      - {address: "127.0.0.1:{a}", weight: 5}
      - 127.0.0.1:{b}
      - 127.0.0.1:{c}
routes:
  - path: /app
    pass: http://app/public
""", a=ups[0], b=ups[1], c=ups[2])
    seq = "".join(px.get("/app/x").text for _ in range(14))
    # nginx's smooth weighted round robin for 5, 1, 1: never five in a row.
    assert seq == "aabacaa" * 2


def test_least_conn_avoids_the_busy_server_across_workers(portico, upstream_factory):
    release = threading.Event()
    slow = upstream_factory()
    slow.handle("/public/*", lambda req: (release.wait(20), Response(200, body=b"slow"))[1])
    fast = named(upstream_factory(), "fast")
    px = start(portico, """
workers: 2
upstreams:
  app:
    servers: ["127.0.0.1:{slow}", {address: "127.0.0.1:{fast}", weight: 2}]
    balance: least_conn
routes:
  - path: /app
    pass: http://app/public
""", slow=slow, fast=fast)
    held = []
    try:
        # Requests until one is held by the slow server (the others come back at once).
        for i in range(1, 9):
            sock = connect(px.port, timeout=20)
            sock.sendall(request_head("GET", "/app/held", []))
            held.append(sock)
            wait_for(lambda: len(slow.requests) + len(fast.requests) >= i)
            if slow.requests:
                break
        assert len(slow.requests) == 1
        # The probes the fast server answered are over in the workers' counts too.
        fast_addr = "127.0.0.1:%d" % fast.port
        wait_for(lambda: server_state(px, "app", fast_addr)["active_connections"] == 0)
        fast_before = len(fast.requests)
        for _ in range(20):
            assert px.get("/app/x").text == "fast"
        # One request in flight on the slow server: every new one goes to the other,
        # which weighs twice as much (so even a request it has just answered, whose
        # end the worker may not have counted yet, leaves it the less busy).
        assert len(slow.requests) == 1
        assert len(fast.requests) == fast_before + 20
        state = server_state(px, "app", "127.0.0.1:%d" % slow.port)
        assert state["active_connections"] == 1
    finally:
        release.set()
        for s in held:
            s.close()


HASH = """
workers: 2
upstreams:
  app:
    servers: [{servers}]
    balance: hash
    hash: header:X-User
routes:
  - path: /app
    pass: http://app/public
"""


def hash_map(px, keys):
    return {k: px.get("/app/x", headers={"X-User": k}).text for k in keys}


def test_hash_is_stable_and_removing_a_server_moves_about_a_quarter(portico, upstream_factory):
    ups = {n: named(upstream_factory(), n) for n in "abcd"}
    addr = {n: '"127.0.0.1:%d"' % u.port for n, u in ups.items()}
    px = start(portico, HASH, servers=", ".join(addr[n] for n in "abcd"))
    keys = ["user-%d" % i for i in range(400)]
    first = hash_map(px, keys)
    assert hash_map(px, keys) == first  # the same key, the same server
    share = Counter(first.values())
    assert set(share) == set("abcd")
    assert all(50 <= share[n] <= 160 for n in "abcd"), share
    # Without d: only d's keys move; the others stay where they were.
    reload(px, HASH, 2, servers=", ".join(addr[n] for n in "abc"))
    after = hash_map(px, keys)
    moved = [k for k in keys if after[k] != first[k]]
    assert all(first[k] == "d" for k in moved)
    assert len(moved) == share["d"]
    assert 0.12 <= len(moved) / len(keys) <= 0.40
    # A request without the key falls back to round robin.
    assert {px.get("/app/x").text for _ in range(6)} == set("abc")


def test_hash_on_cookie_and_client_ip(portico, upstream_factory):
    ups = [named(upstream_factory(), n) for n in "abc"]
    text = """
upstreams:
  app:
    servers: ["127.0.0.1:{a}", "127.0.0.1:{b}", "127.0.0.1:{c}"]
    balance: hash
    hash: {key}
routes:
  - path: /app
    pass: http://app/public
"""
    px = start(portico, text, a=ups[0], b=ups[1], c=ups[2], key="cookie:sid")
    seen = {}
    for i in range(60):
        sid = "s%d" % i
        got = {px.get("/app/x", headers={"Cookie": "theme=dark; sid=%s; x=1" % sid}).text for _ in range(3)}
        assert len(got) == 1
        seen[sid] = got.pop()
    assert set(seen.values()) == set("abc")
    px.stop()
    px = start(portico, text, a=ups[0], b=ups[1], c=ups[2], key="client_ip")
    assert len({px.get("/app/x").text for _ in range(10)}) == 1  # one client address


# --- backups, failures, retries ---------------------------------------------------------


def test_backup_only_when_every_primary_is_down(portico, upstream_factory):
    a, b, spare = (named(upstream_factory(), n) for n in ("a", "b", "spare"))
    px = start(portico, """
upstreams:
  app:
    servers:
      - 127.0.0.1:{a}
      - 127.0.0.1:{b}
      - {address: "127.0.0.1:{spare}", backup: true}
    retries: 2
    passive: {failures: 1, down: 1h}
routes:
  - path: /app
    pass: http://app/public
""", a=a, b=b, spare=spare)
    assert {px.get("/app/x").text for _ in range(20)} == {"a", "b"}
    assert len(spare.requests) == 0
    a.stop()
    assert {px.get("/app/x").text for _ in range(6)} == {"b"}
    b.stop()
    # Both primaries refuse: the request goes on to the backup; the client sees a 200.
    for _ in range(6):
        r = px.get("/app/x")
        assert (r.status, r.text) == (200, "spare")
    px.wait_log(r"upstream server down group=app server=127\.0\.0\.1:%d reason=" % b.port)
    assert server_state(px, "app", "127.0.0.1:%d" % a.port)["state"] == "down"


GROUP = """
timeouts: {upstream_read: 1s, upstream_connect: 1s}
upstreams:
  app:
    servers: ["127.0.0.1:{bad}", "127.0.0.1:{good}"]
    passive: {failures: 2, down: 1h}
routes:
  - path: /app
    pass: http://app/public
"""


def retries_then_down(px, bad, good):
    """The bad server is tried first (one round-robin turn), fails, the
    request moves to the good one; after two failures the bad one is down
    and gets nothing more."""
    for _ in range(6):
        r = px.get("/app/x")
        assert (r.status, r.text) == (200, "good")
    px.wait_log(r"retrying on another server group=app from=127\.0\.0\.1:%d to=127\.0\.0\.1:%d" % (bad, good.port))
    px.wait_log(r"upstream server down group=app server=127\.0\.0\.1:%d" % bad)
    s = server_state(px, "app", "127.0.0.1:%d" % bad)
    assert s["state"] == "down" and s["failures"] == 2 and s["last_failure"]


def test_refused_port_is_retried_and_put_down(portico, upstream_factory):
    good = named(upstream_factory(), "good")
    bad = closed_port()
    px = start(portico, GROUP, bad=bad, good=good)
    retries_then_down(px, bad, good)
    assert "Connection refused" in server_state(px, "app", "127.0.0.1:%d" % bad)["last_failure"]


def test_post_with_a_body_is_not_retried(portico, upstream_factory):
    good = named(upstream_factory(), "good")
    bad = closed_port()
    px = start(portico, GROUP, bad=bad, good=good)
    statuses = Counter(px.request("POST", "/app/x", body=b"payload").status for _ in range(2))
    # One of the two lands on the refusing server: a 502, never sent twice.
    assert statuses == {200: 1, 502: 1}
    assert [r.method for r in good.requests] == ["POST"]


def test_black_holed_server_is_a_read_timeout_retried(portico, upstream_factory, silent_upstream):
    good = named(upstream_factory(), "good")
    px = start(portico, GROUP, bad=silent_upstream, good=good)
    retries_then_down(px, silent_upstream.port, good)
    assert server_state(px, "app", "127.0.0.1:%d" % silent_upstream.port)["last_failure"] == "read timeout"


def test_black_holed_post_is_a_504(portico, upstream_factory, silent_upstream):
    good = named(upstream_factory(), "good")
    px = start(portico, GROUP, bad=silent_upstream, good=good)
    statuses = Counter(px.request("POST", "/app/x", body=b"payload").status for _ in range(2))
    assert statuses == {200: 1, 504: 1}


def reset_after_request(conn):
    conn.read_request()
    conn.reset()


def test_reset_after_reading_the_request_is_retried(portico, upstream_factory):
    good = named(upstream_factory(), "good")
    bad = RawUpstream(reset_after_request).start()
    try:
        px = start(portico, GROUP, bad=bad, good=good)
        retries_then_down(px, bad.port, good)
    finally:
        bad.stop()


def test_all_down_is_503_with_retry_after(portico):
    px = start(portico, """
upstreams:
  app:
    servers: ["127.0.0.1:{x}", "127.0.0.1:{y}"]
    passive: {failures: 1, down: 40s}
routes:
  - path: /app
    pass: http://app/public
""", x=closed_port(), y=closed_port())
    assert px.get("/app/x").status == 502  # both tried, both refused
    r = px.get("/app/x")
    assert r.status == 503
    assert 30 <= int(r.header("Retry-After")) <= 40
    px.wait_log(r"no server up in upstream group app route=0")
    metrics = http_request(px.admin, "GET", "/metrics").text
    up_lines = [l for l in metrics.splitlines() if l.startswith("portico_upstream_server_up{")]
    assert len(up_lines) == 2 and all(l.endswith("} 0") for l in up_lines)


# --- reloads, reverse mapping, unix sockets, reports ---------------------------------------


def test_state_kept_across_a_reload_for_unchanged_servers(portico, upstream_factory):
    good = named(upstream_factory(), "good")
    bad = closed_port()
    text = """
upstreams:
  app:
    servers: ["127.0.0.1:{bad}", "127.0.0.1:{good}"]
    passive: {failures: 1, down: 1h}
routes:
  - path: /app
    pass: http://app/public
    name: {name}
"""
    px = start(portico, text, bad=bad, good=good, name="one")
    for _ in range(2):
        assert px.get("/app/x").status == 200
    assert server_state(px, "app", "127.0.0.1:%d" % bad)["state"] == "down"
    good_requests = server_state(px, "app", "127.0.0.1:%d" % good.port)["requests"]
    reload(px, text, 2, bad=bad, good=good, name="two")
    s = server_state(px, "app", "127.0.0.1:%d" % bad)
    assert s["state"] == "down" and s["failures"] == 1
    assert server_state(px, "app", "127.0.0.1:%d" % good.port)["requests"] == good_requests
    for _ in range(4):
        assert px.get("/app/x").text == "good"
    # A server whose address changed starts afresh.
    other = closed_port()
    reload(px, text, 3, bad=other, good=good, name="three")
    assert server_state(px, "app", "127.0.0.1:%d" % other)["state"] == "up"


def test_location_from_a_server_address_is_rewritten(portico, upstream_factory):
    ups = [upstream_factory(), upstream_factory()]
    for u in ups:
        u.handle("/public/old", Response(302, [("Location", "http://127.0.0.1:%d/public/new" % u.port)]))
        u.handle("/public/host", Response(302, [("Location", "http://internal.example.com/public/h")]))
    px = start(portico, """
server_name: www.example.com
upstreams:
  app:
    servers: ["127.0.0.1:{a}", "127.0.0.1:{b}"]
    host: internal.example.com
routes:
  - path: /app
    pass: http://app/public
""", a=ups[0], b=ups[1])
    for _ in range(4):
        r = px.get("/app/old")
        assert r.status == 302
        assert r.header("Location") == "http://www.example.com/app/new"
    assert px.get("/app/host").header("Location") == "http://www.example.com/app/h"
    assert all(req.header("Host") == "internal.example.com" for u in ups for req in u.requests)
    assert served(ups) == [3, 2] or served(ups) == [2, 3]


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def unix_server(path, name):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = ("%s %s %s" % (name, self.path, self.headers.get("Host"))).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = UnixHTTPServer(path, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_unix_socket_upstreams(portico, tmp_path, upstream_factory):
    sock = str(tmp_path / "app.sock")
    srv = unix_server(sock, "unix")
    tcp = named(upstream_factory(), "tcp")
    try:
        px = start(portico, """
upstreams:
  app:
    servers: ["unix:{sock}", "127.0.0.1:{tcp}"]
routes:
  - path: /direct
    pass: unix:{sock}|http://localhost/app
  - path: /group
    pass: http://app/public
""", sock=sock, tcp=tcp)
        r = px.get("/direct/x?q=1")
        assert (r.status, r.text) == (200, "unix /app/x?q=1 localhost")
        got = sorted(px.get("/group/y").text for _ in range(4))
        assert got == ["tcp", "tcp", "unix /public/y localhost", "unix /public/y localhost"]
        px.wait_log(re.escape("unix:%s" % sock), stream="stdout")  # the access log names the socket
    finally:
        srv.shutdown()
        srv.server_close()


def test_route_shows_the_group_and_upstreams_json(portico, portico_cli, upstream_factory):
    up = named(upstream_factory(), "a")
    px = start(portico, """
upstreams:
  app:
    servers:
      - 127.0.0.1:{a}
      - {address: "127.0.0.1:{b}", weight: 3, backup: true}
    balance: least_conn
routes:
  - path: /app
    pass: http://app/public
""", a=up, b=closed_port())
    out = portico_cli("route", "-c", px.config_path, "/app/x").stdout
    assert "group: app (upstreams.app, line" in out
    assert "group.balance: least_conn" in out
    assert "server: 127.0.0.1:%d weight 1\n" % up.port in out
    assert " weight 3 backup\n" in out
    assert "reverse: http://127.0.0.1:%d/public -> /app" % up.port in out
    assert px.get("/app/x").text == "a"
    doc = upstreams_json(px)
    g = doc["groups"][0]
    assert (g["name"], g["balance"], g["active_checks"]) == ("app", "least_conn", False)
    a, b = g["servers"]
    assert (a["state"], a["weight"], a["backup"], a["requests"], a["last_failure"]) == ("up", 1, False, 1, None)
    assert (b["weight"], b["backup"], b["requests"]) == (3, True, 0)
    metrics = http_request(px.admin, "GET", "/metrics").text
    assert 'portico_upstream_server_requests_total{group="app",server="127.0.0.1:%d"} 1\n' % up.port in metrics


def test_config_errors_for_groups(portico_cli, tmp_path):
    cases = {
        "routes:\n  - path: /a\n    pass: http://ap/x\nupstreams:\n  app:\n    servers: [\"127.0.0.1:1\"]\n":
            "did you mean \"app\"",
        "upstreams:\n  app:\n    servers: []\nroutes:\n  - path: /a\n    pass: http://app/x\n":
            "upstreams.app.servers: expected at least one item",
        "upstreams:\n  app:\n    servers: [\"10.0.0.1\"]\nroutes:\n  - path: /a\n    pass: http://app/x\n":
            "no port after the host",
        "upstreams:\n  app:\n    servers: [\"10.0.0.1:80\"]\nroutes:\n  - path: /a\n    pass: http://app:8080/x\n":
            "a group's servers have their own ports",
        "upstreams:\n  app:\n    servers: [\"10.0.0.1:80\"]\n    hash: client_ip\nroutes:\n  - path: /a\n    pass: http://app/x\n":
            "only with balance: hash",
        "routes:\n  - path: /a\n    pass: unix:relative|http://x/\n":
            "unix:/path|http://host/path",
    }
    for i, (body, want) in enumerate(cases.items()):
        path = tmp_path / ("c%d.yaml" % i)
        path.write_text('listen: ["127.0.0.1:1"]\n' + body)
        r = portico_cli("-t", "-c", str(path))
        assert r.returncode == 1, body
        assert want in r.stderr, r.stderr
