"""Rewriting on the way back (SPEC sections 6.1 and 6.2): redirects and the
Location family, Refresh, Link and Set-Cookie."""

import pytest

from upstreams import Response

CONFIG = """
{server_name}
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
    cookies: {cookies}
  - match: '^/img/(.*)$'
    pass: http://internal.example.com:{up}/images/$1
  - path: /plain
    pass: http://internal.example.com:{up}/plain
    reverse: false
reverse:
  - path: /ext
    url: http://internal.example.com/public
"""


def start(portico, upstream, server_name="", cookies="false"):
    return portico(CONFIG, up=upstream, server_name=server_name, cookies=cookies)


@pytest.fixture
def px(portico, upstream):
    return start(portico, upstream)


def answer(up, path, status=200, headers=()):
    up.handle(path, Response(status, list(headers), b"body"))


def fetch(px, target, host="www.example.com"):
    r = px.fetch("GET", target, host=host)
    assert r.body == b"body", (r.status, r.body[:200])
    return r


def internal(up, path):
    return "http://internal.example.com:%d%s" % (up.port, path)


def test_redirect_location_is_rewritten_to_the_client_host(px, upstream):
    answer(upstream, "/public/old", 302, [("Location", internal(upstream, "/public/next"))])
    r = fetch(px, "/internal/old")
    assert r.status == 302
    assert r.header_all("Location") == ["http://www.example.com/internal/next"]


def test_location_keeps_the_client_host_port(px, upstream):
    answer(upstream, "/public/old", 301, [("Location", internal(upstream, "/public/next?a=1"))])
    r = fetch(px, "/internal/old", host="www.example.com:8080")
    assert r.header("Location") == "http://www.example.com:8080/internal/next?a=1"


def test_location_through_http_client_default_host(px, upstream):
    answer(upstream, "/public/old", 302, [("Location", internal(upstream, "/public/next"))])
    r = px.get("/internal/old")
    assert r.status == 302
    assert r.header("Location") == "http://127.0.0.1:%d/internal/next" % px.port


def test_server_name_is_used_for_the_public_host(portico, upstream):
    px = start(portico, upstream, server_name="server_name: www.example.com")
    answer(upstream, "/public/old", 302, [("Location", internal(upstream, "/public/next"))])
    r = fetch(px, "/internal/old", host="10.1.2.3:8080")
    assert r.header("Location") == "http://www.example.com/internal/next"


def test_scheme_and_host_compare_case_insensitively(px, upstream):
    loc = "HTTP://Internal.EXAMPLE.com:%d/public/x" % upstream.port
    answer(upstream, "/public/a", 302, [("Location", loc)])
    assert fetch(px, "/internal/a").header("Location") == "http://www.example.com/internal/x"


@pytest.mark.parametrize(
    "path",
    [
        "/Public/x",  # the path compares case-sensitively
        "/publicx",  # at a segment boundary only
        "/private/x",
    ],
)
def test_other_paths_on_the_upstream_are_untouched(px, upstream, path):
    loc = internal(upstream, path)
    answer(upstream, "/public/a", 302, [("Location", loc)])
    assert fetch(px, "/internal/a").header("Location") == loc


def test_exact_upstream_url_is_rewritten(px, upstream):
    answer(upstream, "/public/a", 302, [("Location", internal(upstream, "/public"))])
    assert fetch(px, "/internal/a").header("Location") == "http://www.example.com/internal"


def test_other_port_is_untouched(px, upstream):
    loc = "http://internal.example.com:%d/public/x" % (upstream.port + 1 if upstream.port < 65535 else 1)
    answer(upstream, "/public/a", 302, [("Location", loc)])
    assert fetch(px, "/internal/a").header("Location") == loc


@pytest.mark.parametrize(
    "loc",
    [
        "http://other.example.net/public/x",
        "https://www.example.org/",
        "/other/x",
        "relative/path",
        "mailto:someone@example.com",
        "https://internal.example.com:{port}/public/x",  # another scheme
        "//internal.example.com:{port}/public/x",  # scheme-relative: neither absolute nor a path
    ],
)
def test_foreign_urls_are_untouched(px, upstream, loc):
    loc = loc.replace("{port}", str(upstream.port))
    answer(upstream, "/public/a", 302, [("Location", loc)])
    assert fetch(px, "/internal/a").header("Location") == loc


def test_path_only_location_is_rewritten(px, upstream):
    answer(upstream, "/public/a", 302, [("Location", "/public/x")])
    # the matched prefix becomes scheme://host + public path (SPEC 6.1)
    assert fetch(px, "/internal/a").header("Location") == "http://www.example.com/internal/x"


@pytest.mark.parametrize("name", ["Content-Location", "URI", "Destination"])
def test_url_valued_headers_are_rewritten(px, upstream, name):
    answer(upstream, "/public/a", 200, [(name, internal(upstream, "/public/doc.html"))])
    r = fetch(px, "/internal/a")
    assert r.status == 200
    assert r.header_all(name) == ["http://www.example.com/internal/doc.html"]


def test_refresh_url_part_is_rewritten(px, upstream):
    answer(upstream, "/public/a", 200, [("Refresh", "5; url=%s" % internal(upstream, "/public/r?x=1"))])
    r = fetch(px, "/internal/a")
    value = r.header("Refresh")
    assert value.startswith("5;")
    assert value.split("=", 1)[1] == "http://www.example.com/internal/r?x=1"


def test_refresh_without_url_is_untouched(px, upstream):
    answer(upstream, "/public/a", 200, [("Refresh", "30")])
    assert fetch(px, "/internal/a").header("Refresh") == "30"


def test_link_targets_are_each_rewritten(px, upstream):
    link = '<%s>; rel="next", </public/b.css>; rel=preload; as=style, <http://cdn.example.net/public/c>; rel=x' % internal(upstream, "/public/a")
    answer(upstream, "/public/a", 200, [("Link", link)])
    r = fetch(px, "/internal/a")
    assert r.header("Link") == (
        '<http://www.example.com/internal/a>; rel="next", '
        "<http://www.example.com/internal/b.css>; rel=preload; as=style, "
        "<http://cdn.example.net/public/c>; rel=x"
    )


def test_top_level_reverse_mapping_and_default_port(px, upstream):
    answer(upstream, "/public/a", 302, [("Location", "http://internal.example.com:80/public/y")])
    assert fetch(px, "/internal/a").header("Location") == "http://www.example.com/ext/y"
    answer(upstream, "/public/b", 302, [("Location", "http://internal.example.com/public/z")])
    assert fetch(px, "/internal/b").header("Location") == "http://www.example.com/ext/z"


def test_route_mappings_come_before_the_reverse_list(px, upstream):
    # "/public/x" matches both the route's path and the reverse list's path:
    # the route, first in order, applies
    answer(upstream, "/public/a", 302, [("Location", "/public/x")])
    assert fetch(px, "/internal/a").header("Location") == "http://www.example.com/internal/x"


def test_match_routes_do_not_reverse_by_default(px, upstream):
    loc = internal(upstream, "/images/next.png")
    answer(upstream, "/images/a.png", 302, [("Location", loc)])
    assert fetch(px, "/img/a.png").header("Location") == loc


def test_responses_of_any_route_use_every_mapping(px, upstream):
    # mappings apply to every response, as Apache's ProxyPassReverse does
    answer(upstream, "/images/a.png", 302, [("Location", internal(upstream, "/public/p"))])
    assert fetch(px, "/img/a.png").header("Location") == "http://www.example.com/internal/p"


def test_reverse_false_contributes_no_mapping(px, upstream):
    loc = internal(upstream, "/plain/next")
    answer(upstream, "/plain/a", 302, [("Location", loc)])
    assert fetch(px, "/plain/a").header("Location") == loc


def test_other_headers_are_untouched(px, upstream):
    url = internal(upstream, "/public/x")
    answer(upstream, "/public/a", 200, [("X-Url", url), ("Content-Type", "text/plain")])
    r = fetch(px, "/internal/a")
    assert r.header("X-Url") == url


# -- Set-Cookie (6.2)


def cookies_of(r):
    return r.header_all("Set-Cookie")


def test_cookie_path_and_domain_rewritten_when_enabled(portico, upstream):
    px = start(portico, upstream, cookies="true")
    answer(
        upstream,
        "/public/login",
        200,
        [
            ("Set-Cookie", "sid=abc; Path=/public/app; Domain=internal.example.com; HttpOnly"),
            ("Set-Cookie", "lang=en; path=/public; Max-Age=60"),
            ("Set-Cookie", "t=1; Domain=.internal.example.com; Secure"),
            ("Set-Cookie", "other=1; Path=/publicity; Domain=example.net"),
            ("Set-Cookie", "noattr=1"),
        ],
    )
    r = fetch(px, "/internal/login", host="www.example.com:8080")
    got = cookies_of(r)
    assert len(got) == 5
    assert got[0] == "sid=abc; Path=/internal/app; Domain=www.example.com; HttpOnly"
    assert got[1] == "lang=en; path=/internal; Max-Age=60"
    # leading dot or not, the domain becomes the public host without port
    assert got[2].replace("Domain=.", "Domain=") == "t=1; Domain=www.example.com; Secure"
    assert got[3] == "other=1; Path=/publicity; Domain=example.net"
    assert got[4] == "noattr=1"


def test_cookie_domain_uses_server_name(portico, upstream):
    px = start(portico, upstream, server_name="server_name: www.example.com:8443", cookies="true")
    answer(upstream, "/public/c", 200, [("Set-Cookie", "a=1; Domain=internal.example.com; Path=/public")])
    r = fetch(px, "/internal/c", host="10.0.0.1")
    assert cookies_of(r) == ["a=1; Domain=www.example.com; Path=/internal"]


def test_cookies_untouched_when_disabled(px, upstream):
    value = "sid=abc; Path=/public/app; Domain=internal.example.com"
    answer(upstream, "/public/c", 200, [("Set-Cookie", value)])
    assert cookies_of(fetch(px, "/internal/c")) == [value]
