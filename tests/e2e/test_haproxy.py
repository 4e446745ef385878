"""Scale-out (SPEC section 13, README "Scale-out"): two portico instances
behind a real HAProxy in TCP mode with send-proxy-v2, health checked on each
instance's admin /healthz (check port: no PROXY header on checks).

Clients bind their socket to 127.0.0.2 or 127.0.0.3 so the address HAProxy
carries differs from its own (127.0.0.1, the only one in proxy_protocol)."""

import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (scripts/deps.sh installs it)")

PORTICO = """
listen:
  - address: "127.0.0.1:{port}"
    proxy_protocol: [127.0.0.1]
admin: {listen: "127.0.0.1:{admin}"}
access: [{deny: 127.0.0.3}, {allow: all}]
timeouts: {shutdown: 10s}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""

HAPROXY = """
global
  stats socket {sock} level admin
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  # Without it a check must be answered within inter (200 ms): a slow
  # moment on a loaded machine would take an instance out of the rotation.
  timeout check 5s
  retries 3
  option redispatch 1
frontend www
  bind 127.0.0.1:{front}
  default_backend portico
backend portico
  balance roundrobin
  option httpchk GET /healthz
  server a 127.0.0.1:{a} send-proxy-v2 check port {a_admin} inter 200ms fall 1 rise 1
  server b 127.0.0.1:{b} send-proxy-v2 check port {b_admin} inter 200ms fall 1 rise 1
"""


def get(port, path, source):
    """One GET through a socket bound to ``source``; the status, 0 when the
    connection closed without a response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(m.group(1)) if m else 0


def haproxy_cmd(sock, command):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(command.encode() + b"\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def server_states(sock):
    """{"a": "UP", "b": "DOWN"} from HAProxy's CSV statistics."""
    states = {}
    lines = haproxy_cmd(sock, "show stat").splitlines()
    cols = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(cols, line.split(",")))
        if row.get("pxname") == "portico" and row.get("svname") in ("a", "b"):
            states[row["svname"]] = row["status"]
    return states


def wait_states(sock, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = server_states(sock)
        except OSError as e:  # the socket not there yet
            got = e
        if got == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError("HAProxy servers %r, expected %r" % (got, want))
        time.sleep(0.05)


def served(px, source):
    """Access log lines of ``px`` for requests from ``source``."""
    return len(re.findall(r"^%s .*\"GET /internal/" % re.escape(source), px.stdout, re.M))


def wait_served(instances, source, total, timeout=10.0):
    """Waits until ``instances`` logged ``total`` requests from ``source``
    between them: a log line is written after its response is sent."""
    deadline = time.monotonic() + timeout
    while sum(served(px, source) for px in instances) < total and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def farm(portico, upstream, tmp_path):
    pa = portico(PORTICO, up=upstream, admin=free_port())
    pb = portico(PORTICO, up=upstream, admin=free_port())
    front = free_port()
    sock = tmp_path / "haproxy.sock"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        HAPROXY.replace("{sock}", str(sock))
        .replace("{front}", str(front))
        .replace("{a}", str(pa.port))
        .replace("{b}", str(pb.port))
        .replace("{a_admin}", str(pa.values["admin"]))
        .replace("{b_admin}", str(pb.values["admin"]))
    )
    log = open(tmp_path / "haproxy.stderr", "wb")
    hp = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_states(sock, {"a": "UP", "b": "UP"})
        yield front, sock, pa, pb
    finally:
        hp.terminate()
        try:
            hp.wait(10)
        except subprocess.TimeoutExpired:
            hp.kill()
            hp.wait(5)
        log.close()


def test_client_address_reaches_upstream_through_haproxy(farm, upstream):
    front, sock, pa, pb = farm
    for i in range(6):
        upstream.reset()
        assert get(front, "/internal/x%d" % i, "127.0.0.2") == 200
        req = upstream.wait_request()
        assert req.header("X-Forwarded-For") == "127.0.0.2"
        assert req.target == "/public/x%d" % i
    # Round robin: both instances served, and both logged the client's address.
    wait_served((pa, pb), "127.0.0.2", 6)
    assert served(pa, "127.0.0.2") == 3 and served(pb, "127.0.0.2") == 3, (pa.stdout, pb.stdout)
    assert served(pa, "127.0.0.1") == 0 and served(pb, "127.0.0.1") == 0


def test_access_rules_apply_to_the_carried_address(farm, upstream):
    front, sock, pa, pb = farm
    assert get(front, "/internal/x", "127.0.0.3") == 403
    assert get(front, "/internal/x", "127.0.0.3") == 403
    assert upstream.connections_accepted == 0
    wait_served((pa, pb), "127.0.0.3", 2)
    assert served(pa, "127.0.0.3") == 1 and served(pb, "127.0.0.3") == 1


def test_direct_connection_without_header_is_closed(farm, upstream):
    front, sock, pa, pb = farm
    # From the balancer's address, but without a header: missing.
    assert get(pa.port, "/internal/x", "127.0.0.1") == 0
    pa.wait_log(r"client 127\.0\.0\.1: PROXY protocol: missing header")
    # From anywhere else: refused.
    assert get(pb.port, "/internal/x", "127.0.0.2") == 0
    pb.wait_log(r"client 127\.0\.0\.2: PROXY protocol: peer not in proxy_protocol")
    assert upstream.connections_accepted == 0
    # The health checks (no header, on the admin listener) keep both up.
    wait_states(sock, {"a": "UP", "b": "UP"})


def test_stopping_one_instance_fails_no_request(farm, upstream):
    front, sock, pa, pb = farm
    results, stop = [], threading.Event()

    def load():
        while not stop.is_set():
            results.append(get(front, "/internal/x", "127.0.0.2"))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    def until_results(n):
        deadline = time.monotonic() + 20
        while len(results) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    try:
        until_results(6)
        before = len(results)
        pa.stop()  # SIGTERM; exits 0 once its connections are done
        wait_states(sock, {"a": "DOWN", "b": "UP"})
        after_stop = len(results)
        until_results(after_stop + 1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert before > 5 and len(results) > after_stop, (before, after_stop, len(results))
    assert set(results) == {200}, [r for r in results if r != 200]
    wait_served((pa, pb), "127.0.0.2", len(results))
    assert served(pa, "127.0.0.2") > 0 and served(pb, "127.0.0.2") > 0
    assert served(pa, "127.0.0.2") + served(pb, "127.0.0.2") == len(results)
