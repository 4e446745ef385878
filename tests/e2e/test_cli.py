"""The command line (SPEC section 1): -t, route, -V, -h, exit statuses 0, 1
and 2, and the output people read."""

import re
import socket
import subprocess

import pytest

from conftest import SOURCE_DIR, portico_binary

SEED_CONF = SOURCE_DIR / "conf" / "portico.yaml"

ROUTE_CONF = """\
listen: ["127.0.0.1:8080"]
hosts: {internal.example.com: 127.0.0.1}
access:
  - allow: 127.0.0.0/8
  - deny: all
routes:
  - path: /internal/excluded
    pass: off
  - match: '^/internal/(.*[.](jpeg|png))$'
    pass: http://internal.example.com:8081/public/$1
  - path: /internal
    pass: http://internal.example.com:8081/public
    name: internal
  - path: /
    pass: http://internal.example.com:8082/www/
    host: '*.example.org'
    access: [{allow: 10.0.0.0/8}]
"""


def output(r):
    return r.stdout + r.stderr


def write(tmp_path, text, name="portico.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def lines_starting(text, word):
    return [ln.strip() for ln in text.splitlines() if ln.strip().lower().startswith(word)]


# -- -V, -h


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(portico_cli, flag):
    r = portico_cli(flag)
    assert r.returncode == 0, output(r)
    out = output(r)
    assert re.search(r"portico\s+v?0\.1\.0", out), out
    for lib in ("libevent", "openssl", "pcre2", "yaml", "llhttp", "zlib"):
        assert lib in out.lower(), (lib, out)
    # each library with a version number
    assert len(re.findall(r"\d+\.\d+", out)) >= 6, out


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(portico_cli, flag):
    r = portico_cli(flag)
    assert r.returncode == 0, output(r)
    out = output(r)
    for word in ("-c", "-t", "route", "--host", "--method", "-V"):
        assert word in out, (word, out)


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["-x"],
        ["-c"],  # missing argument
        ["route"],  # missing target
        ["route", "-c"],
        ["frobnicate"],
        ["route", "--method"],
    ],
)
def test_usage_errors_exit_2(portico_cli, args):
    r = portico_cli(*args)
    assert r.returncode == 2, (args, r.returncode, output(r))
    assert r.stderr.strip(), "a usage error says something on stderr"


# -- -t


def test_check_ok(portico_cli, tmp_path):
    p = write(tmp_path, ROUTE_CONF)
    r = portico_cli("-t", "-c", p)
    assert r.returncode == 0, output(r)
    assert "%s: configuration OK" % p in output(r)
    assert "warning" not in output(r)


def test_check_binds_nothing(portico_cli, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        p = write(tmp_path, ROUTE_CONF.replace("127.0.0.1:8080", "127.0.0.1:%d" % busy.getsockname()[1]))
        r = portico_cli("-t", "-c", p)
        assert r.returncode == 0, output(r)
    finally:
        busy.close()


def test_check_error_names_file_line_column(portico_cli, tmp_path):
    p = write(
        tmp_path,
        "listen:\n  - 127.0.0.1:8080\nroutes:\n  - path: /x\n    pass: http://a/\n  - path: /y\n    pass: htp://x\n",
    )
    r = portico_cli("-t", "-c", p)
    assert r.returncode == 1, output(r)
    assert re.search(r"portico\.yaml:7:11: routes\[1\]\.pass: .*got \"htp://x\"", output(r)), output(r)
    assert "configuration OK" not in output(r)


def test_check_unknown_key_suggestion(portico_cli, tmp_path):
    p = write(
        tmp_path,
        "listen:\n  - 127.0.0.1:8080\nroutes:\n  - path: /x\n    pass: http://a/\n    preserve_hosts: true\n",
    )
    r = portico_cli("-t", "-c", p)
    assert r.returncode == 1
    assert re.search(r"portico\.yaml:6:5: .*preserve_hosts.*did you mean \"preserve_host\"\?", output(r)), output(r)


def test_check_missing_file(portico_cli, tmp_path):
    r = portico_cli("-t", "-c", tmp_path / "nope.yaml")
    assert r.returncode == 1
    assert "nope.yaml" in output(r)


def test_check_bad_regex(portico_cli, tmp_path):
    p = write(tmp_path, "listen: [127.0.0.1:8080]\nroutes:\n  - match: '^/(a'\n    pass: http://a/\n")
    r = portico_cli("-t", "-c", p)
    assert r.returncode == 1
    assert "portico.yaml:3:" in output(r)


@pytest.mark.parametrize(
    "routes, listen, pattern",
    [
        # shadowed rule
        ("  - path: /\n    pass: http://a/\n  - path: /x\n    pass: http://b/\n", "127.0.0.1:8080", r"routes\[1\].*never match"),
        # trailing slashes disagree
        ("  - path: /internal/\n    pass: http://a/public\n", "127.0.0.1:8080", r"routes\[0\].*/"),
        # https upstream not verified
        ("  - path: /\n    pass: https://a/\n    tls: {verify: false}\n", "127.0.0.1:8080", r"verif"),
        # public listener, no access rules
        ("  - path: /\n    pass: http://a/\n", "0.0.0.0:8080", r"listen\[0\]"),
    ],
)
def test_check_warnings_keep_status_0(portico_cli, tmp_path, routes, listen, pattern):
    p = write(tmp_path, "listen: [\"%s\"]\nroutes:\n%s" % (listen, routes))
    r = portico_cli("-t", "-c", p)
    assert r.returncode == 0, output(r)
    warnings = [ln for ln in output(r).splitlines() if "warning" in ln]
    assert warnings, output(r)
    assert any(re.search(pattern, w) for w in warnings), warnings
    assert all(w.startswith("%s:" % p) for w in warnings), warnings
    assert "%s: configuration OK" % p in output(r)


def test_check_the_shipped_configuration(portico_cli):
    assert SEED_CONF.exists(), "conf/portico.yaml is shipped"
    r = portico_cli("-t", "-c", SEED_CONF)
    assert r.returncode == 0, output(r)
    assert "configuration OK" in output(r)


# -- route


def route(portico_cli, path, *args):
    r = portico_cli("route", "-c", path, *args)
    assert r.returncode == 0, output(r)
    return r.stdout


def fields(out):
    """The "key: value" lines of route's output, as key -> [values]."""
    d = {}
    for ln in out.splitlines():
        if ": " in ln:
            k, v = ln.split(": ", 1)
            d.setdefault(k.strip(), []).append(v.strip())
    return d


GOLDEN_LOGO = """\
request: GET /internal/a/logo.png
host: (none)
path: /internal/a/logo.png
query: (none)
rule: routes[1]
rule.line: 9
rule.kind: match
rule.match: ^/internal/(.*[.](jpeg|png))$
rule.name: 1
rule.pass: http://internal.example.com:8081/public/$1
access.list: global
access.rule: allow: 127.0.0.0/8
access.rule: deny: all
access: the first rule matching the client address decides; no match denies
upstream: http://internal.example.com:8081/public/a/logo.png
upstream.host: internal.example.com:8081
reverse: http://internal.example.com:8081/public -> /internal
reverse: http://internal.example.com:8082/www/ -> /
cookies: off
html: off
result: proxy
"""


def test_route_golden_regex_rule(portico_cli, tmp_path):
    p = write(tmp_path, ROUTE_CONF)
    out = route(portico_cli, p, "/internal/a/logo.png")
    lines = out.splitlines(keepends=True)
    assert lines[0] == "config: %s\n" % p
    assert "".join(lines[1:]) == GOLDEN_LOGO


def test_route_shipped_configuration_logo(portico_cli):
    assert SEED_CONF.exists(), "conf/portico.yaml is shipped"
    f = fields(route(portico_cli, SEED_CONF, "/internal/logo.png"))
    assert f["upstream"] == ["http://internal.example.com:8081/public/logo.png"]
    assert f["rule"] == ["routes[1]"] and f["rule.kind"] == ["match"] and f["rule.name"] == ["images"]
    assert f["result"] == ["proxy"]
    assert "deny: all" in f["access.rule"]


def test_route_path_rule_with_query(portico_cli, tmp_path):
    f = fields(route(portico_cli, write(tmp_path, ROUTE_CONF), "/internal/status.cgi?x=1"))
    assert f["upstream"] == ["http://internal.example.com:8081/public/status.cgi?x=1"]
    assert f["rule"] == ["routes[2]"] and f["rule.line"] == ["11"] and f["rule.kind"] == ["path"]
    assert f["rule.name"] == ["internal"]
    assert f["query"] == ["x=1"]
    assert "http://internal.example.com:8081/public -> /internal" in f["reverse"]
    assert f["access.list"] == ["global"]


def test_route_empty_query_is_kept(portico_cli, tmp_path):
    conf = write(tmp_path, ROUTE_CONF)
    f = fields(route(portico_cli, conf, "/internal/status.cgi?"))
    assert f["query"] == ['(empty, kept as "?")']
    assert f["upstream"] == ["http://internal.example.com:8081/public/status.cgi?"]
    f = fields(route(portico_cli, conf, "/internal/status.cgi"))
    assert f["query"] == ["(none)"]
    assert f["upstream"] == ["http://internal.example.com:8081/public/status.cgi"]


def test_route_exclusion(portico_cli, tmp_path):
    f = fields(route(portico_cli, write(tmp_path, ROUTE_CONF), "/internal/excluded/x"))
    assert f["rule"] == ["routes[0]"] and f["rule.line"] == ["7"] and f["rule.pass"] == ["off"]
    assert "upstream" not in f
    assert f["result"][0].startswith("404")


def test_route_no_match(portico_cli, tmp_path):
    f = fields(route(portico_cli, write(tmp_path, ROUTE_CONF), "/nothing/here"))
    assert f["rule"] == ["none"]
    assert "upstream" not in f
    assert f["result"][0].startswith("404")


def test_route_host_option(portico_cli, tmp_path):
    p = write(tmp_path, ROUTE_CONF)
    f = fields(route(portico_cli, p, "--host", "www.example.org", "/page"))
    assert f["upstream"] == ["http://internal.example.com:8082/www/page"]
    assert f["rule"] == ["routes[3]"] and f["host"] == ["www.example.org"]
    assert f["access.list"] == ["route"] and f["access.rule"] == ["allow: 10.0.0.0/8"]
    f = fields(route(portico_cli, p, "--host", "WWW.Example.ORG:8080", "/page"))
    assert f["rule"] == ["routes[3]"]
    f = fields(route(portico_cli, p, "/page"))
    assert f["result"][0].startswith("404")


def test_route_normalizes_like_the_proxy(portico_cli, tmp_path):
    f = fields(route(portico_cli, write(tmp_path, ROUTE_CONF), "/internal/a/../intern%61l.png"))
    assert f["path"] == ["/internal/internal.png"]
    assert f["upstream"] == ["http://internal.example.com:8081/public/internal.png"]


def test_route_bad_path_is_400(portico_cli, tmp_path):
    f = fields(route(portico_cli, write(tmp_path, ROUTE_CONF), "/internal/a%2Fb"))
    assert f["result"][0].startswith("400")


def test_route_method_connect(portico_cli, tmp_path):
    f = fields(route(portico_cli, write(tmp_path, ROUTE_CONF), "--method", "CONNECT", "/internal/x"))
    assert f["result"][0].startswith("405")


def test_route_invalid_configuration_exit_1(portico_cli, tmp_path):
    p = write(tmp_path, "listen: [127.0.0.1:8080]\nroutes:\n  - path: /x\n    pass: htp://x\n")
    r = portico_cli("route", "-c", p, "/x")
    assert r.returncode == 1
    assert "portico.yaml:4:11:" in output(r)


# -- running


def test_run_invalid_configuration_exit_1(portico_cli, tmp_path):
    p = write(tmp_path, "listen: [127.0.0.1:8080]\nroutes:\n  - path: /x\n    pass: htp://x\n")
    r = portico_cli("-c", p)
    assert r.returncode == 1
    assert "portico.yaml:4:11:" in output(r)


def test_run_listener_in_use_exit_1(tmp_path):
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        p = write(
            tmp_path,
            "listen: [127.0.0.1:%d]\nroutes:\n  - path: /x\n    pass: http://127.0.0.1:1/\n" % busy.getsockname()[1],
        )
        r = subprocess.run([portico_binary(), "-c", str(p)], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1, output(r)
        assert str(busy.getsockname()[1]) in output(r)
    finally:
        busy.close()


def test_sigterm_exits_0(portico, upstream):
    px = portico("routes:\n  - path: /\n    pass: http://internal.example.com:{up}/\n", up=upstream)
    assert px.get("/x").status == 200
    assert px.stop() == 0
