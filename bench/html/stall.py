#!/usr/bin/python3
"""Memory per rewriting connection.  An upstream that answers each request
with the head and the first half of the benchmark page (gzip when the
request accepts it), then holds the connection open; CONNS clients that
each start a request through the proxy and read what arrives.  Prints the
growth of the proxy's resident memory divided by CONNS.

  stall.py PAGE PROXY_PID PROXY_PORT UPSTREAM_PORT PATH CONNS [gzip]"""
import gzip
import os
import socket
import sys
import threading
import time

page_file, pid, port, up_port, path, conns = sys.argv[1:7]
pid, port, up_port, conns = int(pid), int(port), int(up_port), int(conns)
use_gzip = len(sys.argv) > 7 and sys.argv[7] == "gzip"
page = open(page_file, "rb").read()
body = gzip.compress(page, 6, mtime=0) if use_gzip else page


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def serve(lsock, held):
    while True:
        try:
            s, _ = lsock.accept()
        except OSError:
            return
        held.append(s)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                % len(body))
        if use_gzip:
            head += b"Content-Encoding: gzip\r\n"
        s.sendall(head + b"\r\n" + body[:len(body) // 2])


lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", up_port))
lsock.listen(1024)
held = []
threading.Thread(target=serve, args=(lsock, held), daemon=True).start()

clients = []


def start(n):
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n" +
                  (b"Accept-Encoding: gzip\r\n" if use_gzip else b"") + b"\r\n")
        clients.append(c)


def drain():
    deadline = time.time() + 3
    for c in clients:
        c.settimeout(max(0.05, deadline - time.time()))
        try:
            while c.recv(65536):
                pass
        except (socket.timeout, BlockingIOError):
            pass


start(4)  # the proxy's first connections allocate what every later one reuses
drain()
time.sleep(0.3)
before = rss_kib()
start(conns)
drain()
time.sleep(0.3)
after = rss_kib()
print(f"{(after - before) / conns:.1f}")
for c in clients + held:
    c.close()
lsock.close()
