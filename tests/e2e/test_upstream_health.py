"""Active health checks of upstream groups (SPEC section 12): a server that
fails its checks is taken out and comes back after passing them, checks
run once per interval for the whole process however many workers there
are, and a reload keeps the state of servers that stay."""

import time

from conftest import wait_for
from test_upstream_groups import named, reload, server_state, start
from upstreams import Response

ACTIVE = """
workers: {workers}
upstreams:
  app:
    servers: ["127.0.0.1:{a}", "127.0.0.1:{b}"]
    host: internal.example.com
    active:
      path: /healthz
      interval: {interval}
      timeout: {timeout}
      expect: 200-299
      rise: 2
      fall: 3
routes:
  - path: /app
    pass: http://app/public
    name: {name}
"""


class Health:
    """A server's /healthz answers `status`; checks are counted."""

    def __init__(self, up, name):
        self.status = 200
        self.up = named(up, name)
        up.handle("/healthz", lambda req: Response(self.status, body=b"health"))

    def checks(self):
        return [r for r in self.up.requests if r.path == "/healthz"]

    def proxied(self):
        return [r for r in self.up.requests if r.path != "/healthz"]


def test_checks_take_a_server_out_and_back_in(portico, upstream_factory):
    a, b = Health(upstream_factory(), "a"), Health(upstream_factory(), "b")
    # Checks that time out on a loaded machine would be a second reason to
    # go down: one second leaves room for a slow moment.
    px = start(portico, ACTIVE, a=a.up, b=b.up, workers=2, interval="1s", timeout="1s", name="r")
    wait_for(lambda: len(a.checks()) >= 1)
    check = a.checks()[0]
    assert (check.method, check.header("Host"), check.header("Connection")) == ("GET", "internal.example.com", "close")
    assert {px.get("/app/x").text for _ in range(4)} == {"a", "b"}
    a.status = 503
    px.wait_log(r"upstream server down group=app server=127\.0\.0\.1:%d reason=health check: status 503 \(3 times\)" % a.up.port,
                timeout=15)
    assert server_state(px, "app", "127.0.0.1:%d" % a.up.port)["state"] == "down"
    before = len(a.proxied())
    assert {px.get("/app/x").text for _ in range(10)} == {"b"}
    assert len(a.proxied()) == before
    a.status = 204
    px.wait_log(r"upstream server up group=app server=127\.0\.0\.1:%d reason=health check passed 2 times" % a.up.port, timeout=15)
    assert {px.get("/app/x").text for _ in range(4)} == {"a", "b"}


def test_a_refused_check_is_a_failure_and_all_down_is_503(portico, upstream_factory):
    a, b = Health(upstream_factory(), "a"), Health(upstream_factory(), "b")
    px = start(portico, ACTIVE, a=a.up, b=b.up, workers=1, interval="100ms", timeout="100ms", name="r")
    a.status = b.status = 500
    for h in (a, b):
        px.wait_log(r"upstream server down group=app server=127\.0\.0\.1:%d" % h.up.port)
    r = px.get("/app/x")
    assert r.status == 503 and int(r.header("Retry-After")) >= 1
    b.up.stop()
    b.status = 200
    wait_for(lambda: "Connection refused" in (server_state(px, "app", "127.0.0.1:%d" % b.up.port)["last_failure"] or ""))


def test_checks_run_once_per_interval_with_several_workers(portico, upstream_factory):
    a, b = Health(upstream_factory(), "a"), Health(upstream_factory(), "b")
    start(portico, ACTIVE, a=a.up, b=b.up, workers=4, interval="300ms", timeout="300ms", name="r")
    wait_for(lambda: len(a.checks()) >= 1)
    n0, t0 = len(a.checks()), time.monotonic()
    wait_for(lambda: len(a.checks()) >= n0 + 6)
    n1, elapsed = len(a.checks()), time.monotonic() - t0
    # One checker for the process: at most about elapsed / interval checks
    # (a slow moment only makes fewer), where one checker per worker would
    # make six in a quarter of the time.
    assert n1 - n0 <= elapsed / 0.3 + 2, (n1 - n0, elapsed)


def test_reload_keeps_the_checked_state(portico, upstream_factory):
    a, b = Health(upstream_factory(), "a"), Health(upstream_factory(), "b")
    px = start(portico, ACTIVE, a=a.up, b=b.up, workers=2, interval="300ms", timeout="300ms", name="one")
    a.status = 500
    px.wait_log(r"upstream server down group=app server=127\.0\.0\.1:%d" % a.up.port)
    reload(px, ACTIVE, 2, a=a.up, b=b.up, workers=2, interval="300ms", timeout="300ms", name="two")
    # A fresh state would be up until three more checks failed.
    assert server_state(px, "app", "127.0.0.1:%d" % a.up.port)["state"] == "down"
    assert {px.get("/app/x").text for _ in range(6)} == {"b"}
    assert px.stderr.count("upstream server down group=app server=127.0.0.1:%d" % a.up.port) == 1
