"""Access control over the network (SPEC section 7).  The client is always
127.0.0.1."""

import time

import pytest

from upstreams import RawClient


def routes(access_global="", access_route=""):
    return """
{g}
routes:
  - path: /own
    pass: http://internal.example.com:{{up}}/public
{r}
  - path: /internal
    pass: http://internal.example.com:{{up}}/public
""".format(g=access_global, r=access_route)


def status_of(px, target="/internal/x"):
    return px.fetch("GET", target).status


@pytest.mark.parametrize(
    "rules, status",
    [
        ("[{deny: 127.0.0.0/8}]", 403),
        ("[{deny: all}]", 403),
        ("[{deny: 127.0.0.1}, {allow: all}]", 403),
        ("[{allow: 127.0.0.1}]", 200),
        ("[{allow: 127.0.0.1}, {deny: all}]", 200),
        ("[{allow: 127.0.0.0/8}, {deny: all}]", 200),
        ("[{allow: 0.0.0.0/0}, {deny: all}]", 200),
        ("[{allow: 10.0.0.0/8}, {deny: all}]", 403),
        ("[{allow: 10.0.0.0/8}]", 403),  # no rule matched in a non-empty list: denied
        ("[{deny: 10.0.0.0/8}]", 403),
        ("[{deny: 10.0.0.0/8}, {allow: all}]", 200),
        ('[{allow: "::1"}]', 403),  # IPv6 loopback is not 127.0.0.1
        ("[{allow: 127.0.0.2}, {deny: 127.0.0.1}, {allow: all}]", 403),  # first match decides
        ("[{allow: 127.0.0.1/32}, {deny: 127.0.0.1}]", 200),
    ],
)
def test_global_access_list(portico, upstream, rules, status):
    px = portico(routes("access: " + rules), up=upstream)
    assert status_of(px) == status
    if status == 403:
        assert upstream.requests == [] and upstream.connections_accepted == 0
    else:
        assert upstream.wait_request().target == "/public/x"


def test_no_access_list_allows(portico, upstream):
    px = portico(routes(), up=upstream)
    assert status_of(px) == 200


@pytest.mark.parametrize(
    "global_rules, route_rules, own_status, internal_status",
    [
        ("[{deny: all}]", "[{allow: 127.0.0.1}]", 200, 403),
        ("[{allow: all}]", "[{deny: 127.0.0.0/8}, {allow: all}]", 403, 200),
    ],
    ids=["replaces_the_global_one", "can_deny_what_the_global_one_allows"],
)
def test_route_list(portico, upstream, global_rules, route_rules, own_status, internal_status):
    px = portico(routes("access: " + global_rules, "    access: " + route_rules), up=upstream)
    assert status_of(px, "/own/x") == own_status
    assert status_of(px, "/internal/x") == internal_status
    # the one allowed request reached the upstream, the denied one did not
    assert [q.target for q in upstream.requests] == ["/public/x"]


def test_denied_page_is_html_with_the_status(portico, upstream):
    px = portico(routes("access: [{deny: all}]"), up=upstream)
    r = px.fetch("GET", "/internal/x")
    assert r.status == 403
    assert "text/html" in (r.header("Content-Type") or "")
    assert b"403" in r.body


def test_403_before_the_body_is_read(portico, upstream):
    px = portico(routes("access: [{deny: all}]"), up=upstream)
    with RawClient(px.port) as c:
        c.send(
            b"POST /internal/upload HTTP/1.1\r\nHost: www.example.com\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 1000000000\r\n\r\n"
        )
        t0 = time.monotonic()
        r = c.read_response()
        assert r.status == 403
        assert time.monotonic() - t0 < 4
        # the body was not read: the framing is unknown, the connection ends
        assert c.wait_closed()
    assert upstream.connections_accepted == 0


def test_403_without_100_continue(portico, upstream):
    px = portico(routes("access: [{deny: all}]"), up=upstream)
    with RawClient(px.port) as c:
        c.send(
            b"POST /internal/upload HTTP/1.1\r\nHost: www.example.com\r\n"
            b"Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n"
        )
        r = c.read_response(skip_interim=False)
    assert r.status == 403  # not 100: portico never invited the body
    assert upstream.connections_accepted == 0


def test_access_uses_the_normalized_path(portico, upstream):
    px = portico(
        routes("access: [{allow: all}]", "    access: [{deny: all}]"),
        up=upstream,
    )
    assert status_of(px, "/internal/../own/x") == 403
    assert status_of(px, "/%6Fwn/x") == 403
    assert upstream.requests == []


def test_access_applies_to_every_request_on_a_connection(portico, upstream):
    px = portico(
        routes("", "    access: [{deny: all}]"),
        up=upstream,
    )
    with RawClient(px.port) as c:
        c.request("GET", "/internal/a")
        assert c.read_response().status == 200
        c.request("GET", "/own/b")
        assert c.read_response().status == 403
        c.request("GET", "/internal/c")
        assert c.read_response().status == 200
    assert [q.target for q in upstream.requests] == ["/public/a", "/public/c"]


def test_forwarded_headers_cannot_fake_the_client_address(portico, upstream):
    px = portico(routes("access: [{allow: 10.0.0.0/8}, {deny: all}]"), up=upstream)
    r = px.fetch(
        "GET",
        "/internal/x",
        headers=[("X-Forwarded-For", "10.1.2.3"), ("Forwarded", "for=10.1.2.3"), ("X-Real-IP", "10.1.2.3")],
    )
    assert r.status == 403
    assert upstream.connections_accepted == 0


@pytest.mark.parametrize(
    "rules, status",
    [
        ('[{allow: "::1"}, {deny: all}]', 200),
        ('[{allow: "::/0"}, {deny: all}]', 200),
        ('[{deny: "::1/128"}, {allow: all}]', 403),
        ("[{allow: 127.0.0.0/8}, {deny: all}]", 403),  # an IPv6 client is not in an IPv4 block
    ],
)
def test_ipv6_client(portico, upstream, rules, status):
    px = portico(routes("access: " + rules), up=upstream, bind="::1")
    assert status_of(px) == status
    if status == 200:
        assert upstream.wait_request().header("X-Forwarded-For") == "::1"


@pytest.mark.parametrize(
    "rules, status",
    [
        ("[{allow: 127.0.0.1}, {deny: all}]", 200),
        ("[{deny: 127.0.0.0/8}, {allow: all}]", 403),
    ],
)
def test_ipv4_client_on_a_dual_stack_listener_matches_ipv4_rules(portico, upstream, rules, status):
    # "*:port" binds [::] with v6only off: IPv4 clients arrive as ::ffff:a.b.c.d
    px = portico(routes("access: " + rules), up=upstream, listen="*:{port}")
    assert status_of(px) == status
