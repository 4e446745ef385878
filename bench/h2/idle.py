"""Memory per idle connection: opens N connections to PORT (HTTP/2: preface,
SETTINGS and one request each, then nothing; HTTP/1.1: one keep-alive
request each, then nothing) and prints the growth of PID's resident memory
per connection, in KiB.

    idle.py PID PORT N h2|h1
"""
import socket
import sys
import time

pid, port, n, proto = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
H2 = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
      # HEADERS stream 1, END_STREAM|END_HEADERS: GET http /small.txt, :authority a (literal, no index)
      + bytes([0, 0, 17, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x04, 10]) + b"/small.txt" + bytes([0x01, 1]) + b"a")
H1 = b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n"


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settle():
    time.sleep(1.0)


socks = []
settle()
before = rss_kib()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(H2 if proto == "h2" else H1)
    socks.append(s)
deadline = time.time() + 30
answered = 0
for s in socks:  # every connection answered: the request is over, the connection idle
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        answered += len(s.recv(65536)) > 0
    except OSError:
        pass
settle()
after = rss_kib()
print("%s idle connections: %d (%d answered), RSS %d -> %d KiB, %.1f KiB per connection"
      % (proto, n, answered, before, after, (after - before) / n))
for s in socks:
    s.close()
