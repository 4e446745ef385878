"""portico import, checked against Apache httpd itself.

For every case of tests/import/ that has a ``requests.txt``, the Apache
configuration is adapted to the test (its Listen ports become free local
ports, every upstream authority ``http://host[:port]`` becomes one local
upstream server, log, PID and document-root paths go to the test's
directory), then:

1. Debian's apache2 runs the adapted configuration and every request of
   ``requests.txt`` is sent to it;
2. ``portico import`` translates the same adapted configuration, portico
   runs the result on the same port, and the same requests are sent to it.

Each request must get the same answer from both: the status, which
upstream received which target (the upstream echoes it in
``X-Upstream``), and the ``Location`` and ``Set-Cookie`` headers, after the
rewriting on the way back.  The upstream answers ``?loc=URL`` with a 302 to
URL (``SELF`` in it is the Host it was sent) and ``?cookie=PATH`` with a
cookie for PATH, so that reverse mappings are compared too.

Without apache2 (``apt-get install apache2``) the tests are skipped with
that reason; they run as root (Apache's children then switch to nobody) and
as a normal user.  Cases whose import needs a feature the binary lacks
(``upstreams:`` groups, SPEC section 12) are skipped with that reason.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import SOURCE_DIR, free_port, portico_binary
from upstreams import HTTPUpstream, Response

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
CASES_DIR = SOURCE_DIR / "tests" / "import"
CASES = sorted(p.parent.name for p in CASES_DIR.glob("*/requests.txt"))
START_TIMEOUT = 10.0

pytestmark = pytest.mark.skipif(
    not (os.access(APACHE, os.X_OK) and MODULES.is_dir()),
    reason="apache2 is not installed (apt-get install apache2): the import is not compared with Apache",
)

PRELOAD = [
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_host_module", "mod_authz_host.so"),
    ("access_compat_module", "mod_access_compat.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
    ("xml2enc_module", "mod_xml2enc.so"),
    ("proxy_html_module", "mod_proxy_html.so"),
    ("slotmem_shm_module", "mod_slotmem_shm.so"),
    ("proxy_balancer_module", "mod_proxy_balancer.so"),
    ("lbmethod_byrequests_module", "mod_lbmethod_byrequests.so"),
    ("lbmethod_bybusyness_module", "mod_lbmethod_bybusyness.so"),
]

# Directives whose paths belong to the machine, not to the case: dropped.
MACHINE_DIRECTIVES = re.compile(r"^[ \t]*(ErrorLog|CustomLog|PidFile|User|Group|Mutex|DefaultRuntimeDir)\b", re.I | re.M)
URL = re.compile(r"\b(https?|wss?)://([A-Za-z0-9.-]+)(:\d+)?", re.I)


def read_requests(case: str) -> list:
    out = []
    for line in (CASES_DIR / case / "requests.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            host, path = line.split(None, 1)
            out.append((host, path))
    return out


def upstreams_supported(tmp_path: Path) -> bool:
    probe = tmp_path / "probe.yaml"
    probe.write_text(
        'listen: ["127.0.0.1:1"]\nupstreams:\n  probe:\n    servers: ["127.0.0.1:1"]\n'
        "routes:\n  - path: /\n    pass: http://probe/\n"
    )
    r = subprocess.run([portico_binary(), "-t", "-c", str(probe)], capture_output=True, text=True, timeout=10)
    return r.returncode == 0


class Adapted:
    """The case copied into tmp_path with its ports, upstreams and paths made local."""

    def __init__(self, case: str, tmp_path: Path, main_port: int):
        self.root = tmp_path / "apache"
        # Readable by Apache's children when they run as nobody (tmp_path is not).
        self.htdocs = tempfile.mkdtemp(prefix="portico-import-htdocs-")
        os.chmod(self.htdocs, 0o755)
        shutil.copytree(CASES_DIR / case, self.root, ignore=shutil.ignore_patterns("expected*", "requests.txt"))
        self.ports = {}  # original Listen port -> local port
        self.upstreams = {}  # original authority -> HTTPUpstream
        self.main_port = main_port
        for f in sorted(self.root.rglob("*")):
            if f.is_file() and f.suffix in (".conf", ""):
                f.write_text(self.adapt(f.read_text()))

    def port_for(self, original: str) -> int:
        if original not in self.ports:
            self.ports[original] = self.main_port if not self.ports else free_port()
        return self.ports[original]

    def upstream_for(self, authority: str) -> HTTPUpstream:
        if authority not in self.upstreams:
            self.upstreams[authority] = HTTPUpstream(default=echo(authority)).start()
        return self.upstreams[authority]

    def adapt(self, text: str) -> str:
        text = MACHINE_DIRECTIVES.sub(lambda m: "# (test) " + m.group(0), text)
        text = re.sub(r"^([ \t]*DocumentRoot)[ \t]+.*$", lambda m: '%s "%s"' % (m.group(1), self.htdocs), text, flags=re.M)
        text = re.sub(r"^([ \t]*ServerRoot)[ \t]+.*$", r'\1 "%s"' % self.root, text, flags=re.M)
        text = re.sub(
            r"^([ \t]*Listen)[ \t]+(?:\S+:)?(\d+)(.*)$",
            lambda m: "%s 127.0.0.1:%d%s" % (m.group(1), self.port_for(m.group(2)), m.group(3)),
            text,
            flags=re.M,
        )
        text = re.sub(r"<VirtualHost\s+([^>]+)>", self.vhost, text, flags=re.I)

        def url(m):
            scheme = "https" if m.group(1).lower() in ("https", "wss") else "http"
            default = "443" if scheme == "https" else "80"
            authority = m.group(2).lower() + ":" + (m.group(3) or ":" + default)[1:]
            return "%s://127.0.0.1:%d" % ("http" if scheme == "http" else "https", self.upstream_for(authority).port)

        return URL.sub(url, text)

    def vhost(self, m) -> str:
        addrs = []
        for a in m.group(1).split():
            port = a.rsplit(":", 1)[1] if ":" in a else "80"
            addrs.append("*:%d" % self.port_for(port))
        return "<VirtualHost %s>" % " ".join(addrs)

    def stop(self):
        for up in self.upstreams.values():
            up.stop()
        shutil.rmtree(self.htdocs, ignore_errors=True)


def echo(label: str):
    """The upstream: names itself and the target it got; ?loc= redirects, ?cookie= sets one."""

    def handler(req):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(req.target).query)
        headers = [("Content-Type", "text/plain"), ("X-Upstream", "%s %s" % (label, req.target))]
        status = 200
        if "loc" in q:
            status = 302
            headers.append(("Location", q["loc"][0].replace("SELF", req.header("Host") or "")))
        if "cookie" in q:
            headers.append(("Set-Cookie", "s=1; Path=%s" % q["cookie"][0]))
        return Response(status, headers, b"%s %s\n" % (label.encode(), req.target.encode()))

    return handler


class Apache:
    def __init__(self, tmp_path: Path, conf_dir: Path, port: int, htdocs: str):
        self.tmp = tmp_path
        self.htdocs = htdocs
        self.conf_dir = conf_dir
        self.port = port
        self.pre = tmp_path / "preload.conf"
        lines = ["LoadModule %s %s" % (name, MODULES / so) for name, so in PRELOAD]
        lines += [
            "PidFile %s" % (tmp_path / "apache.pid"),
            "ErrorLog %s" % (tmp_path / "apache-error.log"),
            "DefaultRuntimeDir %s" % tmp_path,
            "ServerName localhost",
            'DocumentRoot "%s"' % htdocs,
        ]
        if os.geteuid() == 0:
            lines += ["User nobody", "Group nogroup"]
        self.pre.write_text("\n".join(lines) + "\n")
        self.post = tmp_path / "postload.conf"
        self.post.write_text('<Directory "%s">\n    Require all granted\n</Directory>\n' % htdocs)
        self.log = open(tmp_path / "apache.out", "wb")
        self.proc = None

    def start(self):
        # What Debian's /etc/apache2/envvars would set, pointing into the test's directory.
        env = dict(os.environ)
        for name in ("APACHE_RUN_DIR", "APACHE_LOCK_DIR", "APACHE_LOG_DIR"):
            env[name] = str(self.tmp)
        env["APACHE_PID_FILE"] = str(self.tmp / "apache.pid")
        self.proc = subprocess.Popen(
            [
                APACHE,
                "-d",
                str(self.conf_dir),
                "-f",
                str(self.conf_dir / "apache2.conf"),
                "-C",
                "Include %s" % self.pre,
                # After the case: its empty document root answers 404, as portico does.
                "-c",
                "Include %s" % self.post,
                "-DFOREGROUND",
            ],
            stdin=subprocess.DEVNULL,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("apache2 exited with status %d:\n%s" % (self.proc.returncode, self.errors()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("apache2 did not accept on port %d:\n%s" % (self.port, self.errors()))

    def errors(self) -> str:
        out = (self.tmp / "apache.out").read_text(errors="replace")
        log = self.tmp / "apache-error.log"
        return out + (log.read_text(errors="replace") if log.exists() else "")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        # Until the port is free again: portico takes it next.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.05)
            except OSError:
                return


def ask(port: int, host: str, path: str) -> tuple:
    """One request on a fresh connection; what must be the same for Apache and portico."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "%s:%d" % (host, port)})
        r = conn.getresponse()
        r.read()
        return (r.status, r.getheader("X-Upstream"), r.getheader("Location"), r.getheader("Set-Cookie"))
    finally:
        conn.close()


def answers(port: int, requests: list) -> list:
    return [ask(port, host, path) for host, path in requests]


def describe(requests, apache, portico) -> str:
    lines = []
    for (host, path), a, p in zip(requests, apache, portico):
        mark = "  " if a == p else "!!"
        lines.append("%s %s %s\n     apache:  %s\n     portico: %s" % (mark, host, path, a, p))
    return "\n".join(lines)


@pytest.mark.parametrize("case", CASES)
def test_import_routes_like_apache(case, tmp_path, portico, portico_cli):
    requests = read_requests(case)
    conf = (CASES_DIR / case / "apache2.conf").read_text()
    if "balancer://" in conf and not upstreams_supported(tmp_path):
        pytest.skip("portico -t does not accept upstreams: groups yet (SPEC section 12)")
    px = portico("routes: []\n", start=False)
    adapted = Adapted(case, tmp_path, px.port)
    try:
        apache = Apache(tmp_path, adapted.root, px.port, adapted.htdocs)
        apache.start()
        try:
            from_apache = answers(px.port, requests)
        finally:
            apache.stop()
        out = tmp_path / "imported.yaml"
        r = portico_cli("import", "-o", out, adapted.root / "apache2.conf")
        assert r.returncode == 0, r.stderr
        px.write_config(out.read_text())
        px.start()
        from_portico = answers(px.port, requests)
        px.stop()
    finally:
        adapted.stop()
    assert from_apache == from_portico, "%s: Apache and portico differ:\n%s" % (
        case,
        describe(requests, from_apache, from_portico),
    )
