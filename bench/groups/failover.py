#!/usr/bin/python3
"""How long clients see errors after a server of a group dies.

    bench/groups/failover.py [PORTICO_BINARY]     (default build-rel/portico)

Two upstreams (threaded Python HTTP servers) behind one group; a client
sends requests back to back on fresh connections; one server stops
listening (its port then refuses).  Printed for each case: the errors the
client saw and the time from the stop to the last of them.

  passive-get   GET, retries 1: the failed attempt moves to the other server
  passive-post  POST (never retried): errors until passive.failures (3) put it down
  active        retries 0, passive off, checks every 1s (timeout 500ms, fall 3)
"""
import http.client
import http.server
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-rel", "portico")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = reply

    def log_message(self, *a):
        pass


def server():
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


GROUP = """listen: ["127.0.0.1:{port}"]
workers: 2
log: {{access: off, level: warn}}
upstreams:
  app:
    servers: ["127.0.0.1:{a}", "127.0.0.1:{b}"]
{extra}
routes:
  - path: /
    pass: http://app/
"""

CASES = {
    "passive-get": ("GET", "    retries: 1\n    passive: {failures: 3, down: 30s}"),
    "passive-post": ("POST", "    retries: 1\n    passive: {failures: 3, down: 30s}"),
    "active": ("GET", "    retries: 0\n    passive: {failures: 0}\n"
                      "    active: {path: /, interval: 1s, timeout: 500ms, fall: 3, rise: 2}"),
}


def run(name, method, extra):
    a, b, port = server(), server(), free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(GROUP.format(port=port, a=a.server_port, b=b.server_port, extra=extra))
    px = subprocess.Popen([BIN, "-c", f.name], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(1.2)  # the first checks are in
        b.shutdown()
        b.server_close()
        t0, last, errors, total = time.monotonic(), None, 0, 0
        while time.monotonic() - t0 < 6:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request(method, "/x", body=b"data" if method == "POST" else None)
            status = c.getresponse().status
            c.close()
            total += 1
            if status != 200:
                errors += 1
                last = time.monotonic() - t0
        print("%-13s %4d errors in %5d requests; last error %s after the server died"
              % (name, errors, total, "%.2fs" % last if last is not None else "none"))
    finally:
        px.terminate()
        px.wait()
        a.shutdown()
        os.unlink(f.name)


for name, (method, extra) in CASES.items():
    run(name, method, extra)
