"""Running out of file descriptors (SPEC section 5): when accept(2) fails
with EMFILE, portico stops accepting for a while instead of retrying at
once, logs the failures at most once a second per listener owner, and
serves again as soon as descriptors are free; /healthz and /metrics answer
while the descriptors are all taken, from the ones the admin listener
keeps spare.

portico runs with an open-file limit of 64 (set on the running process
with prlimit, so its own start-up raise cannot undo it).  First exactly as
many idle connections as there are free descriptors fill the table: every
one is accepted, the next accept(2) fails, and nothing is left waiting for
a worker, so only the admin listener takes descriptors while its answers
are checked.  Then 200 more connections wait in the queue while the
workers retry.  The log is measured in lines, not time: a listener left
enabled would write hundreds of thousands of lines in the seconds the
flood lasts."""

import os
import resource
import socket
import time

from conftest import free_port, wait_for
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


def accept_lines(px, since=0):
    """The accept(2) failures logged from stderr line `since` on."""
    return [l for l in px.stderr.splitlines()[since:] if ": accept: " in l]


def open_fds(px):
    return len(os.listdir("/proc/%d/fd" % px.pid))


def queued(port):
    """Connections waiting in the accept queues of the listeners on port
    (for a listening socket, /proc/net/tcp's rx_queue is that count)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                n += int(fields[4].split(":")[1], 16)
    return n


def fill(px, conns, timeout=10.0):
    """Connections to px until its descriptor table is full, never more than
    it has room for: room is counted when none is waiting to be accepted,
    until it stays at zero (a connection of the start-up check may still be
    closing)."""
    deadline = time.monotonic() + timeout
    while True:
        wait_for(lambda: queued(px.port) == 0, max(deadline - time.monotonic(), 0.1))
        room = NOFILE - open_fds(px)
        assert 0 <= room < NOFILE
        if room == 0:
            time.sleep(0.3)
            if open_fds(px) == NOFILE and queued(px.port) == 0:
                return
        for _ in range(room):
            conns.append(socket.create_connection(("127.0.0.1", px.port), timeout=5))
        assert time.monotonic() < deadline, "%d descriptors open, not %d" % (open_fds(px), NOFILE)


def test_fd_exhaustion_pauses_accepting_and_recovers(portico, upstream):
    admin = free_port()
    px = portico(CONFIG, up=upstream, admin=admin)
    resource.prlimit(px.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    before = len(px.stderr.splitlines())
    t0 = time.monotonic()

    flood = []
    try:
        # the table filled to its last descriptor, with no connection waiting
        fill(px, flood)
        wait_for(lambda: accept_lines(px, before))

        # the admin listener answers all the same: a spare descriptor is given
        # up for each connection and taken back when it closes, also while
        # another admin connection holds one
        flood.append(socket.create_connection(("127.0.0.1", admin), timeout=5))
        for _ in range(5):
            r = http_request(admin, "GET", "/healthz", timeout=5)
            assert r.status == 200 and r.body == b"ok\n"
        r = http_request(admin, "GET", "/metrics", timeout=5)
        assert r.status == 200 and b"portico_reloads_total" in r.body
        assert open_fds(px) == NOFILE

        # far more connections than fit wait in the queue while the workers retry
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", px.port), timeout=5))
        time.sleep(FLOOD_SECONDS)
        assert px.running
        assert queued(px.port) > 0
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
    finally:
        for s in flood:
            s.close()

    r = retry(lambda: http_request(admin, "GET", "/healthz"))
    assert r.status == 200 and r.body == b"ok\n"
    r = retry(lambda: px.get("/internal/x"))
    assert r.status == 200
    px.stop()
