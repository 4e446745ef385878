"""Fixtures for portico's end-to-end tests: the real binary, real sockets.

The binary is $PORTICO_BINARY (ctest sets it), else build/portico in the
source tree.  Upstream servers and the raw client live in ``upstreams.py``.

Fixtures
--------
``portico``  (factory)
    ``px = portico(yaml_text, up=upstream, other=4242, ...)`` writes the
    configuration into the test's tmp_path, picks a free port for the
    listener, starts ``portico -c FILE`` in the foreground and waits until
    the port accepts (10 s; the test fails with the binary's stderr
    otherwise).  Returns a ``Portico``.  Every instance still running at the
    end of the test is stopped with SIGTERM, and its exit status (0) and
    sanitizer reports are checked.

    Placeholders in the text are ``{name}`` for each keyword argument: an
    object with a ``.port`` (an upstream) or an int gives the port number.
    ``{port}`` is portico's listener port, ``{listen}`` is
    ``127.0.0.1:{port}``, ``{tmp}`` the test's tmp_path.  Other braces (YAML
    flow mappings such as ``{internal.example.com: 127.0.0.1}``) are left
    alone.  When the text has no top-level ``listen:`` key,
    ``listen: ["{listen}"]`` is added; with no top-level ``hosts:`` key,
    ``hosts: {internal.example.com: 127.0.0.1}`` is added, so upstream URLs
    read ``http://internal.example.com:{up}/public``.

    ``portico(text, start=False)`` only writes the file (``px.config_path``)
    and ``px.start()`` starts it later; ``wait=False`` skips waiting for the
    port (for configurations that must fail: check ``px.wait_exit()``).

``portico_cli``
    ``portico_cli("-t", "-c", path)`` runs the binary with arguments (10 s
    timeout) and returns subprocess.CompletedProcess with text stdout/stderr.

``upstream``             a started HTTPUpstream (stopped at teardown)
``upstream_factory``     ``upstream_factory(**kw)`` for more HTTPUpstreams
``raw_upstream``         ``raw_upstream(script)`` -> started RawUpstream
``raw_reply``            ``raw_reply(bytes, **kw)`` -> RawUpstream.reply(...), started
``silent_upstream``      a started SilentUpstream
``ws_upstream``          a started WebSocketEchoServer
``refused_port``         a port with nothing listening

The ``Portico`` object
----------------------
``.port``, ``.url(path)``, ``.pid``, ``.proc``, ``.config_path``,
``.stdout_path`` / ``.stderr_path`` and ``.stdout`` / ``.stderr`` (their
current text: access log on stdout, error log on stderr by default),
``.rss_kib()``, ``.request(method, path, body=None, headers=None)``
(http.client, returns upstreams.HTTPResponse), ``.get(path, **kw)``,
``.client()`` (a RawClient), ``.fetch(method, target, headers=None,
body=b"", host="www.example.com")`` (exact target, fresh connection),
``.send_raw(bytes)`` (exact bytes, one response), ``.wait_log(regex, timeout)``,
``.request_ids()`` (ids seen in the error log), ``.signal(sig)``,
``.reload(new_text=None, **placeholders)`` (rewrite the file and SIGHUP),
``.stop(expect_status=0)`` (SIGTERM, wait, assert exit status and no
sanitizer report), ``.wait_exit(timeout)``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

import upstreams
from upstreams import (
    HTTPUpstream,
    RawClient,
    RawUpstream,
    SilentUpstream,
    WebSocketEchoServer,
    closed_port,
    http_request,
    server_factory,
)

SOURCE_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 10.0
STOP_TIMEOUT = 40.0  # above the default shutdown drain of 30 s
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
DEFAULT_HOSTS = "hosts: {internal.example.com: 127.0.0.1}\n"


def portico_binary() -> str:
    return os.environ.get("PORTICO_BINARY") or str(SOURCE_DIR / "build" / "portico")


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that was free a moment ago."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout: float = 10.0) -> None:
    """Polls ``cond()`` until it is true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %.0f s" % timeout
        time.sleep(0.02)


def substitute(text: str, values: dict) -> str:
    """Replaces ``{name}`` for each key of ``values`` and nothing else."""

    def repl(m):
        name = m.group(1)
        if name not in values:
            return m.group(0)
        v = values[name]
        return str(v.port) if hasattr(v, "port") else str(v)

    return re.sub(r"\{(\w+)\}", repl, text)


def _has_top_key(text: str, key: str) -> bool:
    return re.search(r"^%s\s*:" % re.escape(key), text, re.M) is not None


def sanitizer_report(text: str) -> Optional[str]:
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            return text[max(0, i - 200) : i + 2000]
    return None


class Portico:
    """One portico process started by the ``portico`` fixture."""

    def __init__(self, tmp_path: Path, text: str, values: dict, name: str, bind: str = "127.0.0.1"):
        self.tmp = tmp_path
        self.name = name
        self.host = bind
        self.port = free_port(bind)
        self.values = dict(values)
        self.config_path = tmp_path / ("%s.yaml" % name)
        self.stdout_path = tmp_path / ("%s.stdout" % name)
        self.stderr_path = tmp_path / ("%s.stderr" % name)
        self.proc: Optional[subprocess.Popen] = None
        self.stopped = False
        self.write_config(text, **values)

    # -- configuration

    def render(self, text: str, **values) -> str:
        v = dict(self.values)
        v.update(values)
        v.setdefault("port", self.port)
        v.setdefault("listen", ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.port))
        v.setdefault("tmp", str(self.tmp))
        if not _has_top_key(text, "listen"):
            text = 'listen: ["{listen}"]\n' + text
        if not _has_top_key(text, "hosts"):
            text = DEFAULT_HOSTS + text
        # twice: a value may itself use a placeholder (listen="*:{port}")
        return substitute(substitute(text, v), v)

    def write_config(self, text: str, **values) -> str:
        self.config_text = self.render(text, **values)
        self.config_path.write_text(self.config_text)
        return self.config_text

    # -- process

    def start(self, wait: bool = True) -> "Portico":
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [portico_binary(), "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            cwd=str(self.tmp),
        )
        self.stopped = False
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stopped = True
                self._close_files()
                pytest.fail(
                    "portico exited with status %d before accepting on port %d\n"
                    "config:\n%s\nstderr:\n%s" % (self.proc.returncode, self.port, self.config_text, self.stderr)
                )
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.kill()
        pytest.fail("portico did not accept on port %d within %.0f s\nstderr:\n%s" % (self.port, timeout, self.stderr))

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail("portico did not exit within %.0f s\nstderr:\n%s" % (timeout, self.stderr[-4000:]))
        self.stopped = True
        self._close_files()
        return rc

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()

    def signal(self, sig: int):
        self.proc.send_signal(sig)

    def reload(self, text: Optional[str] = None, **values):
        """Rewrites the configuration (when given) and sends SIGHUP."""
        if text is not None:
            self.write_config(text, **values)
        self.signal(signal.SIGHUP)

    def stop(self, expect_status: int = 0, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, check the exit status and the sanitizer reports."""
        if self.proc is None or self.stopped:
            return self.proc.returncode if self.proc else 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        report = sanitizer_report(self.stderr)
        assert report is None, "sanitizer report in portico's stderr:\n" + report
        assert rc == expect_status, "portico exited with %d, expected %d\nstderr:\n%s" % (rc, expect_status, self.stderr[-4000:])
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.stopped = True
        self._close_files()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- observation

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def rss_kib(self) -> int:
        """Resident set size of the process, from /proc/PID/status."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    def wait_log(self, pattern: str, timeout: float = 5.0, stream: str = "stderr") -> re.Match:
        """Waits until ``pattern`` (a regex) appears in stderr (or stdout)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while True:
            text = self.stderr if stream == "stderr" else self.stdout
            m = rx.search(text)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no %r in portico's %s within %.1f s:\n%s" % (pattern, stream, timeout, text[-3000:]))
            time.sleep(0.05)

    def request_ids(self) -> list:
        """Every request id of the error log (``id=...`` on request lines)."""
        return re.findall(r"\bid=([^\s\"]+)", self.stderr)

    # -- clients

    def url(self, path: str = "/") -> str:
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d%s" % (host, self.port, path)

    def request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None, timeout: float = 5.0):
        return http_request(self.port, method, path, body=body, headers=headers, host=self.host, timeout=timeout)

    def get(self, path: str, headers: Optional[dict] = None, **kw):
        return self.request("GET", path, headers=headers, **kw)

    def client(self, timeout: float = 5.0) -> RawClient:
        return RawClient(self.port, host=self.host, timeout=timeout)

    def fetch(self, method: str, target: str, headers=None, body: bytes = b"", host: Optional[str] = "www.example.com", version: str = "HTTP/1.1"):
        """One request with an exact target on a fresh connection (RawClient):
        Host is ``host`` (None: no Host) unless ``headers`` has one."""
        with self.client() as c:
            c.request(method, target, headers=headers, body=body, host=host, version=version)
            return c.read_response(method)

    def send_raw(self, data: bytes, method: str = "GET"):
        """Sends exact bytes on a fresh connection and reads one response."""
        with self.client() as c:
            c.send(data)
            return c.read_response(method)


# --------------------------------------------------------------------------
# Fixtures


def self_signed(directory, cn: str, san: Optional[str] = None):
    """A self-signed certificate and key for `cn` (and a subjectAltName) in `directory`."""
    cert, key = directory / (cn + ".pem"), directory / (cn + ".key")
    args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", "2", "-subj", "/CN=" + cn]
    if san:
        args += ["-addext", "subjectAltName=" + san]
    subprocess.run(args, check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="session")
def site_cert(tmp_path_factory):
    """A self-signed certificate for www.example.com: (cert, key)."""
    return self_signed(tmp_path_factory.mktemp("site"), "www.example.com")


@pytest.fixture(scope="session")
def portico_bin() -> str:
    path = portico_binary()
    if not os.access(path, os.X_OK):
        pytest.fail("portico binary %s not found; build it or set PORTICO_BINARY" % path)
    return path


@pytest.fixture
def portico(tmp_path, portico_bin):
    """Factory: ``portico(yaml_text, start=True, wait=True, bind="127.0.0.1",
    **placeholders)``; ``bind`` is the listener's address ("::1" for IPv6)."""
    instances = []

    def make(text: str, start: bool = True, wait: bool = True, bind: str = "127.0.0.1", **values) -> Portico:
        px = Portico(tmp_path, text, values, "portico%d" % (len(instances) + 1), bind=bind)
        instances.append(px)
        if start:
            px.start(wait=wait)
        return px

    yield make
    errors = []
    for px in instances:
        if px.proc is None or px.stopped:
            continue
        try:
            px.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            px.kill()
    if errors:
        pytest.fail("\n\n".join(errors))


@pytest.fixture
def portico_cli(portico_bin):
    def run(*args, timeout: float = 10.0, cwd=None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [portico_bin, *[str(a) for a in args]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )

    return run


@pytest.fixture
def upstream_factory():
    with server_factory(HTTPUpstream) as make:
        yield make


@pytest.fixture
def upstream(upstream_factory) -> HTTPUpstream:
    return upstream_factory()


@pytest.fixture
def raw_upstream():
    with server_factory(RawUpstream) as make:
        yield make


@pytest.fixture
def raw_reply():
    with server_factory(RawUpstream.reply) as make:
        yield make


@pytest.fixture
def silent_upstream():
    with SilentUpstream() as s:
        yield s


@pytest.fixture
def ws_upstream():
    with WebSocketEchoServer() as s:
        yield s


@pytest.fixture
def refused_port() -> int:
    return closed_port()


__all__ = ["Portico", "free_port", "substitute", "portico_binary", "upstreams"]
