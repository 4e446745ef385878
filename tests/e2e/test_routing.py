"""Routing over the network (SPEC section 3): what target the upstream sees
for each request, which rule wins, and the 4xx answers of routing."""

import pytest

from upstreams import RawClient, Response

SEED = """
routes:
  - path: /internal/excluded
    pass: off
  - match: '^/internal/(.*[.](jpeg|png))$'
    pass: http://internal.example.com:{up}/images/$1
  - path: /internal
    pass: http://internal.example.com:{up}/public
"""


@pytest.fixture
def seed(portico, upstream):
    return portico(SEED, up=upstream), upstream


def forwarded_target(px, up, target, host="www.example.com"):
    """Sends ``target``, expects a proxied 200 and returns the target the
    upstream received."""
    up.reset()
    r = px.fetch("GET", target, host=host)
    assert r.status == 200, (target, r.status, r.body[:300])
    reqs = up.wait_requests(1)
    assert len(reqs) == 1
    return reqs[0].target


def not_forwarded(px, up, target, status, host="www.example.com"):
    up.reset()
    r = px.fetch("GET", target, host=host)
    assert r.status == status, (target, r.status, r.body[:300])
    assert up.requests == [], "upstream got %r" % [q.target for q in up.requests]
    return r


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/internal", "/public"),
        ("/internal/", "/public/"),
        ("/internal/a", "/public/a"),
        ("/internal/status.cgi", "/public/status.cgi"),
        ("/internal/a/b/c.html", "/public/a/b/c.html"),
        ("/internal//a", "/public//a"),
    ],
)
def test_path_prefix_maps_to_pass(seed, target, expected):
    px, up = seed
    assert forwarded_target(px, up, target) == expected


def test_prefix_stops_at_segment_boundary(seed):
    px, up = seed
    not_forwarded(px, up, "/internalx", 404)
    not_forwarded(px, up, "/internal.html", 404)
    not_forwarded(px, up, "/", 404)
    not_forwarded(px, up, "/Internal/a", 404)  # case-sensitive


def test_no_rule_is_404(seed):
    px, up = seed
    r = not_forwarded(px, up, "/elsewhere/x", 404)
    assert b"404" in r.body


def test_run_of_slashes_in_rule_matches_run_in_request(portico, upstream):
    px = portico(
        """
routes:
  - path: /a//b
    pass: http://internal.example.com:{up}/x
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/a/b/c") == "/x/c"
    assert forwarded_target(px, upstream, "/a///b") == "/x"


def test_trailing_slash_rule_does_not_match_bare_path(portico, upstream):
    px = portico(
        """
routes:
  - path: /internal/
    pass: http://internal.example.com:{up}/public/
""",
        up=upstream,
    )
    not_forwarded(px, upstream, "/internal", 404)
    assert forwarded_target(px, upstream, "/internal/") == "/public/"
    assert forwarded_target(px, upstream, "/internal/logo.png") == "/public/logo.png"


def test_trailing_slash_mismatch_glues_segments(portico, upstream):
    # Apache's behaviour, which -t warns about.
    px = portico(
        """
routes:
  - path: /internal/
    pass: http://internal.example.com:{up}/public
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/internal/logo.png") == "/publiclogo.png"


def test_exclusion_is_404_and_never_proxied(seed):
    px, up = seed
    not_forwarded(px, up, "/internal/excluded", 404)
    not_forwarded(px, up, "/internal/excluded/", 404)
    not_forwarded(px, up, "/internal/excluded/page.html", 404)
    # an exclusion is a prefix rule too: it stops at a segment boundary
    assert forwarded_target(px, up, "/internal/excludedx") == "/public/excludedx"


def test_exclusion_after_the_general_rule_never_applies(portico, upstream):
    px = portico(
        """
routes:
  - path: /internal
    pass: http://internal.example.com:{up}/public
  - path: /internal/excluded
    pass: off
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/internal/excluded/x") == "/public/excluded/x"


def test_exclusion_beats_a_later_regex(seed):
    px, up = seed
    not_forwarded(px, up, "/internal/excluded/logo.png", 404)


def test_regex_rule_substitutes_captures(seed):
    px, up = seed
    assert forwarded_target(px, up, "/internal/logo.png") == "/images/logo.png"
    assert forwarded_target(px, up, "/internal/a/b/photo.jpeg") == "/images/a/b/photo.jpeg"
    # anchored with $: anything after the extension goes to the path rule
    assert forwarded_target(px, up, "/internal/logo.png.html") == "/public/logo.png.html"


def test_regex_rule_matches_the_path_without_query(seed):
    px, up = seed
    assert forwarded_target(px, up, "/internal/logo.png?v=2") == "/images/logo.png?v=2"


def test_regex_rule_without_reference_appends_whole_path(portico, upstream):
    px = portico(
        """
routes:
  - match: '^/static/.*[.]css$'
    pass: http://internal.example.com:{up}/assets
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/static/site.css") == "/assets/static/site.css"
    not_forwarded(px, upstream, "/static/site.js", 404)


def test_regex_numbered_captures(portico, upstream):
    px = portico(
        """
routes:
  - match: '^/u/([^/]+)/([^/]+)$'
    pass: http://internal.example.com:{up}/users/$2/of/$1
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/u/alice/photos") == "/users/photos/of/alice"


def test_captures_are_percent_encoded_at_the_upstream(seed):
    px, up = seed
    # '[', ']', '{', '}' and '"' are not pchar: encoded in the upstream target
    got = forwarded_target(px, up, '/internal/a[1]{x}".png')
    assert got == "/images/a%5B1%5D%7Bx%7D%22.png"


def test_path_rule_forwards_a_re_encoded_path(seed):
    px, up = seed
    got = forwarded_target(px, up, "/internal/a[1]|b")
    assert got == "/public/a%5B1%5D%7Cb"
    # an escape that is not an unreserved character stays encoded, with upper-case hex
    assert forwarded_target(px, up, "/internal/a%20b%3f") == "/public/a%20b%3F"


def test_captures_cannot_move_the_request_to_another_host(portico, upstream):
    px = portico(
        """
routes:
  - match: '^/h/(.*)$'
    pass: http://internal.example.com:{up}/$1
""",
        up=upstream,
    )
    for target, expected in [
        ("/h/@evil.test/x", "/@evil.test/x"),
        ("/h//evil.test/x", "//evil.test/x"),
        ("/h/:80/x", "/:80/x"),
    ]:
        assert forwarded_target(px, upstream, target) == expected
        assert upstream.last_request.header("Host") == "internal.example.com:%d" % upstream.port


def test_host_rules_exact_and_wildcard(portico, upstream_factory):
    www, wild, other = upstream_factory(), upstream_factory(), upstream_factory()
    px = portico(
        """
routes:
  - path: /
    pass: http://internal.example.com:{www}/www/
    host: www.example.com
  - path: /
    pass: http://internal.example.com:{wild}/wild/
    host: '*.example.org'
  - path: /
    pass: http://internal.example.com:{other}/other/
""",
        www=www,
        wild=wild,
        other=other,
    )
    cases = [
        ("www.example.com", www, "/www/p"),
        ("WWW.Example.COM", www, "/www/p"),
        ("www.example.com:8080", www, "/www/p"),
        ("a.example.org", wild, "/wild/p"),
        ("deep.a.example.org:81", wild, "/wild/p"),
        ("example.com", other, "/other/p"),
        ("wwwexample.com", other, "/other/p"),
        ("notexample.org", other, "/other/p"),
    ]
    for host, server, target in cases:
        for s in (www, wild, other):
            s.reset()
        r = px.fetch("GET", "/p", host=host)
        assert r.status == 200, host
        got = server.wait_request()
        assert got.target == target, host
        assert [s for s in (www, wild, other) if s.requests] == [server], host


def test_host_rule_without_fallback_is_404(portico, upstream):
    px = portico(
        """
routes:
  - path: /
    pass: http://internal.example.com:{up}/
    host: www.example.com
""",
        up=upstream,
    )
    not_forwarded(px, upstream, "/x", 404, host="other.example.com")
    assert forwarded_target(px, upstream, "/x") == "/x"


def test_first_matching_rule_wins(portico, upstream_factory):
    a, b, c = upstream_factory(), upstream_factory(), upstream_factory()
    px = portico(
        """
routes:
  - path: /app
    pass: http://internal.example.com:{a}/first
  - path: /app/admin
    pass: http://internal.example.com:{b}/second
  - match: '^/app/.*[.]png$'
    pass: http://internal.example.com:{c}/third
  - match: '^/img/(.*)$'
    pass: http://internal.example.com:{c}/img/$1
  - path: /img/special
    pass: http://internal.example.com:{b}/special
""",
        a=a,
        b=b,
        c=c,
    )
    assert forwarded_target(px, a, "/app/admin/x") == "/first/admin/x"
    assert forwarded_target(px, a, "/app/logo.png") == "/first/logo.png"
    assert forwarded_target(px, c, "/img/special/y") == "/img/special/y"
    assert b.requests == []


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/internal/q?x=1&y=2", "/public/q?x=1&y=2"),
        ("/internal?x=1", "/public?x=1"),
        ("/internal/q?a=%20b&c=/d", "/public/q?a=%20b&c=/d"),
        ("/internal/q?", "/public/q?"),  # an empty query stays (SPEC 3)
        # the query is not a path: escapes a path may not hold pass through
        ("/internal/q?path=a%2Fb&x=%00&y=..%5C", "/public/q?path=a%2Fb&x=%00&y=..%5C"),
        ("/internal/q?a=/../b", "/public/q?a=/../b"),
    ],
)
def test_query_string_is_forwarded(seed, target, expected):
    px, up = seed
    assert forwarded_target(px, up, target) == expected


def test_query_joined_with_ampersand_when_pass_has_one(portico, upstream):
    px = portico(
        """
routes:
  - path: /find
    pass: http://internal.example.com:{up}/search.cgi?site=internal
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/find?q=portico") == "/search.cgi?site=internal&q=portico"
    assert forwarded_target(px, upstream, "/find") == "/search.cgi?site=internal"


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/internal/a/../b/./c", "/public/b/c"),
        ("/internal/./a", "/public/a"),
        ("/other/../internal/x", "/public/x"),
        ("/intern%61l/x", "/public/x"),  # unreserved escapes decoded before matching
        ("/internal/%7Euser/%2D", "/public/~user/-"),
        ("/internal/a/b/..", "/public/a/"),
        ("/internal/a%252Fb", "/public/a%252Fb"),  # an encoded "%" stays encoded once
        ("/internal/x/../logo.png", "/images/logo.png"),  # the regex sees the normalized path
    ],
)
def test_path_is_normalized_before_matching(seed, target, expected):
    px, up = seed
    assert forwarded_target(px, up, target) == expected


def test_dot_segments_cannot_reach_an_excluded_path_or_escape_a_rule(seed):
    px, up = seed
    not_forwarded(px, up, "/internal/a/../excluded/x", 404)
    not_forwarded(px, up, "/internal/%2e%2e/secret", 404)


@pytest.mark.parametrize(
    "target",
    [
        "/internal/a%2Fb",
        "/internal/a%2fb",
        "/internal/a%5Cb",
        "/internal/a%00b",
        "/internal/a%zzb",
        "/internal/a%4",
        "/internal/../../x",
        "/..",
        "/internal/%2e%2e/%2e%2e/x",
    ],
)
def test_bad_paths_are_400(seed, target):
    px, up = seed
    not_forwarded(px, up, target, 400)


def test_absolute_form_is_routed_by_its_authority(portico, upstream_factory):
    www, other = upstream_factory(), upstream_factory()
    px = portico(
        """
routes:
  - path: /internal
    pass: http://internal.example.com:{www}/public
    host: www.example.com
  - path: /internal
    pass: http://internal.example.com:{other}/other/
""",
        www=www,
        other=other,
    )
    r = px.fetch("GET", "http://www.example.com/internal/a?b=1", host="elsewhere.example.net")
    assert r.status == 200
    got = www.wait_request()
    assert got.target == "/public/a?b=1"
    assert got.header("Host") == "internal.example.com:%d" % www.port
    # the authority is the request's Host from here on
    assert got.header("X-Forwarded-Host") == "www.example.com"
    assert other.requests == []


def test_absolute_form_never_makes_portico_a_forward_proxy(seed, upstream_factory):
    px, up = seed
    victim = upstream_factory()
    r = px.fetch("GET", "http://127.0.0.1:%d/internal/x" % victim.port, host="127.0.0.1:%d" % victim.port)
    # routed like any request: to the configured upstream, never to the named host
    assert r.status == 200
    assert up.wait_request().target == "/public/x"
    r = px.fetch("GET", "http://127.0.0.1:%d/secret" % victim.port, host="127.0.0.1:%d" % victim.port)
    assert r.status == 404
    assert victim.requests == [] and victim.connections_accepted == 0


def test_connect_is_405(seed):
    px, up = seed
    with RawClient(px.port) as c:
        c.send(b"CONNECT internal.example.com:443 HTTP/1.1\r\nHost: internal.example.com:443\r\n\r\n")
        r = c.read_response()
    assert r.status == 405
    assert up.requests == [] and up.connections_accepted == 0


def test_methods_are_forwarded(seed):
    px, up = seed
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"):
        up.reset()
        r = px.fetch(method, "/internal/m", body=b"x" if method in ("POST", "PUT", "PATCH") else b"")
        assert r.status == 200, method
        assert up.wait_request().method == method


def test_head_is_forwarded_and_has_no_body(seed):
    px, up = seed
    with RawClient(px.port) as c:
        c.request("HEAD", "/internal/h")
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        # the connection is still in step: a second request works
        c.request("GET", "/internal/g")
        assert c.read_response().body.startswith(b"GET /public/g")
    assert [q.method for q in up.requests] == ["HEAD", "GET"]


# --- routing details (issue: comparing with Apache httpd on random rule tables)


def test_empty_query_reaches_the_upstream(portico, upstream):
    px = portico(
        """
routes:
  - path: /a
    pass: http://internal.example.com:{up}/u
  - match: '^/m/(.*)$'
    pass: http://internal.example.com:{up}/m2/$1
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/a/x?") == "/u/x?"
    assert forwarded_target(px, upstream, "/a/x") == "/u/x"
    assert forwarded_target(px, upstream, "/m/y?") == "/m2/y?"


def test_captures_in_the_query_of_pass_cannot_add_parameters(portico, upstream):
    px = portico(
        """
routes:
  - match: '^/q/(.*)$'
    pass: http://internal.example.com:{up}/s?x=$1
  - path: /p
    pass: http://internal.example.com:{up}/s?from=
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/q/a&admin=1") == "/s?x=a%26admin%3D1"
    assert forwarded_target(px, upstream, "/q/a+b;c=d") == "/s?x=a%2Bb%3Bc%3Dd"
    assert forwarded_target(px, upstream, "/q/a%20b%23c") == "/s?x=a%20b%23c"
    assert forwarded_target(px, upstream, "/q/v?page=2") == "/s?x=v&page=2"
    assert forwarded_target(px, upstream, "/p/a&admin=1") == "/s?from=/a%26admin%3D1"


def test_rule_paths_are_normalized_like_requests(portico, upstream):
    px = portico(
        """
routes:
  - path: /t%7Eu
    pass: http://internal.example.com:{up}/tilde
  - path: /sp%61ce/%3a
    pass: http://internal.example.com:{up}/colon
""",
        up=upstream,
    )
    assert forwarded_target(px, upstream, "/t~u/x") == "/tilde/x"
    assert forwarded_target(px, upstream, "/t%7Eu/x") == "/tilde/x"
    assert forwarded_target(px, upstream, "/t%7eu") == "/tilde"
    assert forwarded_target(px, upstream, "/space/%3A/x") == "/colon/x"
    assert forwarded_target(px, upstream, "/space/%3a") == "/colon"


@pytest.mark.parametrize(
    "path, col",
    [("/a%2Fb", 13), ("/a/../b", 14), ("/a/%2e", 14), ('"/a b"', 14), ("/a#b", 13), ("/a?b", 13)],
)
def test_rule_path_that_can_never_match_is_an_error(portico_cli, tmp_path, path, col):
    conf = tmp_path / "p.yaml"
    conf.write_text("listen:\n  - 127.0.0.1:1\nroutes:\n  - path: %s\n    pass: http://h/\n" % path)
    r = portico_cli("-t", "-c", str(conf))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "p.yaml:4:%d: routes[0].path: can never match" % col in r.stderr, r.stderr


def test_reverse_round_trip_with_mismatched_slashes(portico, upstream):
    px = portico(
        """
routes:
  - path: /a
    pass: http://internal.example.com:{up}/u/
""",
        up=upstream,
    )
    base = "http://internal.example.com:%d" % upstream.port
    upstream.handle("/u//x/old", Response(302, [("Location", base + "/u//x/next")], b""))
    upstream.handle("/u//y", Response(302, [("Location", base + "/u/next")], b""))
    upstream.handle("/u/", Response(302, [("Location", "/u/")], b""))
    r = px.fetch("GET", "/a/x/old")
    assert r.status == 302
    assert r.header("Location") == "http://www.example.com/a/x/next"
    assert upstream.requests[-1].target == "/u//x/old"
    r = px.fetch("GET", "/a/y")
    assert r.header("Location") == "http://www.example.com/a/next"
    r = px.fetch("GET", "/a")
    assert r.header("Location") == "http://www.example.com/a"
