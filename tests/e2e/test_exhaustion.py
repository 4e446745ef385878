"""Running out of file descriptors (SPEC section 5): when accept(2) fails
with EMFILE, portico stops accepting for a while instead of retrying at
once, logs the failures at most once a second per listener owner, and
serves again as soon as descriptors are free; /healthz answers throughout,
from a descriptor the admin listener keeps spare.

portico runs with an open-file limit of 64 (set on the running process
with prlimit, so its own start-up raise cannot undo it) and receives 200
idle connections on its public listener, far more than fit.  The log is
measured in lines, not time: a listener left enabled would write hundreds
of thousands of lines in the seconds the flood lasts."""

import resource
import socket
import time

from conftest import free_port
from upstreams import http_request

CONFIG = """
workers: 2
admin:
  listen: 127.0.0.1:{admin}
timeouts: {client_header: 30s}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""

NOFILE = 64
FLOOD = 200
FLOOD_SECONDS = 3.0


def retry(what, timeout=10.0):
    """what() until it returns without raising OSError (or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return what()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def accept_lines(px):
    return [l for l in px.stderr.splitlines() if ": accept: " in l]


def test_fd_exhaustion_pauses_accepting_and_recovers(portico, upstream):
    admin = free_port()
    px = portico(CONFIG, up=upstream, admin=admin)
    resource.prlimit(px.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    before = len(px.stderr.splitlines())
    t0 = time.monotonic()

    flood = []
    try:
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", px.port), timeout=5))
        # the admin listener meets the same shortage
        try:
            flood.append(socket.create_connection(("127.0.0.1", admin), timeout=5))
        except OSError:
            pass
        time.sleep(FLOOD_SECONDS)
        assert px.running
        during = px.stderr.splitlines()[before:]
        refused = [l for l in during if ": accept: " in l]
        assert refused, "no accept failure logged:\n" + "\n".join(during[-20:])
        assert "Too many open files" in refused[0]
        # at most one line a second per owner (2 workers and the admin listener)
        elapsed = time.monotonic() - t0
        assert len(during) <= 3 * (elapsed + 2), "%d lines in %.0f s:\n%s" % (
            len(during),
            elapsed,
            "\n".join(during[:20]),
        )
        # the admin listener answers while the descriptors are all taken:
        # a spare one is given up for each connection, and taken back when
        # it closes (the flood holds an admin connection open too)
        for _ in range(5):
            r = http_request(admin, "GET", "/healthz", timeout=5)
            assert r.status == 200 and r.body == b"ok\n"
    finally:
        for s in flood:
            s.close()

    r = retry(lambda: http_request(admin, "GET", "/healthz"))
    assert r.status == 200 and r.body == b"ok\n"
    r = retry(lambda: px.get("/internal/x"))
    assert r.status == 200
    px.stop()
