"""The driver of bench/exhaustion/run.sh (see there)."""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, ADMIN, UP = 18611, 18612, 18613
CONNS = int(os.environ.get("CONNS", "1000"))
NOFILE = int(os.environ.get("NOFILE", "256"))
SECONDS = float(os.environ.get("SECONDS", "10"))
# "start": portico starts under the limit (and caps its clients to fit);
# "running": the limit is lowered once it runs, so accept(2) meets EMFILE.
LOWER = os.environ.get("LOWER", "start")

CONFIG = """listen: ["127.0.0.1:%d"]
workers: 2
admin:
  listen: 127.0.0.1:%d
hosts: {up.example: 127.0.0.1}
timeouts: {client_header: 60s}
routes:
  - path: /
    pass: http://up.example:%d/
""" % (PORT, ADMIN, UP)


class Up(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"up\n")

    def log_message(self, *a):
        pass


def get(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except OSError as e:
        return type(e).__name__


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def main():
    binary = sys.argv[1]
    up = ThreadingHTTPServer(("127.0.0.1", UP), Up)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="portico-exhaustion.")
    conf = os.path.join(work, "portico.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG)
    err = open(os.path.join(work, "error.log"), "w+b")
    limit = ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE)]
    px = subprocess.Popen((limit if LOWER == "start" else []) + [binary, "-c", conf],
                          stdout=subprocess.DEVNULL, stderr=err)
    try:
        for _ in range(100):
            if get(ADMIN, "/healthz") == 200:
                break
            time.sleep(0.05)
        if LOWER != "start":
            subprocess.run(limit + ["--pid", str(px.pid)], check=True)
        socks = []
        for _ in range(CONNS):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", PORT))
            socks.append(s)
        time.sleep(1)  # the flood lands
        lines0 = sum(1 for _ in open(err.name, "rb"))
        t0, c0 = time.monotonic(), cpu_ticks(px.pid)
        time.sleep(SECONDS)
        t1, c1 = time.monotonic(), cpu_ticks(px.pid)
        lines1 = sum(1 for _ in open(err.name, "rb"))
        hz = os.sysconf("SC_CLK_TCK")
        cpu = (c1 - c0) / hz / (t1 - t0) * 100
        print("flood: %d connections, open-file limit %d (set at %s), measured over %.1f s" % (
            CONNS, NOFILE, LOWER, t1 - t0))
        print("cpu: %.1f %% of a core" % cpu)
        print("error log: %d lines (%.1f lines/s)" % (lines1 - lines0, (lines1 - lines0) / (t1 - t0)))
        print("during: /healthz -> %s" % get(ADMIN, "/healthz"))
        for s in socks:
            s.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (get(ADMIN, "/healthz") != 200 or get(PORT, "/x") != 200):
            time.sleep(0.1)
        print("after: /healthz -> %s, GET /x -> %s (%.1f s after the flood ended)" % (
            get(ADMIN, "/healthz"), get(PORT, "/x"), 10 - (deadline - time.monotonic())))
        print("error log total: %d bytes" % os.path.getsize(err.name))
    finally:
        px.terminate()
        px.wait(10)
        up.shutdown()


if __name__ == "__main__":
    main()
